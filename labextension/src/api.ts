/**
 * Typed access to the jupyter_ucloud server extension (REST under `/ucloud/`).
 *
 * The JSON shapes are UCloud's own (see docs/architecture.md section 4); only the
 * fields the front end reads are declared.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** `GET /ucloud/api/status`. */
export interface IConnectionStatus {
  mode: 'embedded' | 'remote';
  host: string | null;
  user: string | null;
  project: string | null;
  ok: boolean;
  error: string | null;
}

export interface IProductReference {
  id: string;
  category: string;
  provider: string;
}

/** A compute product, in the current core shape or the older seed shape. */
export interface IComputeProduct {
  name: string;
  category: { name: string; provider: string };
  description?: string;
  cpu?: number | null;
  memoryInGigs?: number | null;
  gpu?: number | null;
  cpuModel?: string | null;
  gpuModel?: string | null;
  /** Only the embedded server states it: the most nodes a job may have. */
  maxReplicas?: number | null;
}

/** Flags of one backend (`docker`, `virtualMachine`, `native`); false flags are absent. */
export interface IBackendSupport {
  enabled?: boolean | null;
  web?: boolean | null;
  vnc?: boolean | null;
  logs?: boolean | null;
  terminal?: boolean | null;
  peers?: boolean | null;
  timeExtension?: boolean | null;
}

export interface IJobSupport {
  product: IProductReference;
  docker?: IBackendSupport | null;
  virtualMachine?: IBackendSupport | null;
  native?: IBackendSupport | null;
  queueStatus?: string | null;
}

export interface IResolvedSupport {
  product: IComputeProduct;
  support: IJobSupport;
  features?: string[] | null;
}

/** `GET /ucloud/api/jobs/retrieveProducts`. */
export interface ISupportByProvider {
  productsByProvider: Record<string, IResolvedSupport[]>;
}

export type JobState =
  'IN_QUEUE' | 'RUNNING' | 'SUCCESS' | 'FAILURE' | 'EXPIRED' | 'SUSPENDED';

export interface ISimpleDuration {
  hours: number;
  minutes: number;
  seconds: number;
}

export interface IJobSpecification {
  product: IProductReference;
  application: { name: string; version: string };
  name?: string | null;
  replicas?: number;
  timeAllocation?: ISimpleDuration | null;
  parameters?: Record<string, IParameterValue>;
}

export interface IJobStatus {
  state: JobState;
  startedAt?: number | null;
  expiresAt?: number | null;
  resolvedProduct?: IComputeProduct | null;
  resolvedSupport?: IResolvedSupport | null;
}

/** UCloud's `JobUpdate` (the fields the front end reads). */
export interface IJobUpdate {
  state?: JobState | null;
  status?: string | null;
  /** The new total time allocation (ms), when the update is an extension. */
  newTimeAllocation?: number | null;
  timestamp: number;
}

export interface IJob {
  id: string;
  createdAt: number;
  specification: IJobSpecification;
  status: IJobStatus;
  updates?: IJobUpdate[];
}

/** One entry of a follow message's `log`: exactly one of `stdout`/`stderr`, or `channel` data. */
export interface IJobLogEntry {
  rank: number;
  stdout?: string | null;
  stderr?: string | null;
  channel?: string | null;
}

/**
 * A frame of the follow websocket (docs/architecture.md section 4, "Job follow websocket"):
 * UCloud's `JobsFollowMessage`, or `{error}` before the server closes with 1011.
 */
export interface IJobsFollowMessage {
  updates?: IJobUpdate[] | null;
  log?: IJobLogEntry[] | null;
  newStatus?: IJobStatus | null;
  initialJob?: IJob | null;
  error?: string;
}

export interface IPage<T> {
  items: T[];
  itemsPerPage: number;
  next: string | null;
}

/** An application parameter, as UCloud declares it (`ApplicationParameter`). */
export interface IApplicationParameter {
  /** `text`, `integer`, `floating_point`, `boolean`, `enumeration`, or a type we cannot set. */
  type: string;
  name: string;
  optional?: boolean | null;
  /** An `AppParameterValue` (`{type, value}`), or a bare value. */
  defaultValue?: unknown;
  title?: string | null;
  description?: string | null;
  /** Enumerations: the choices (`name` shown, `value` sent). */
  options?: { name: string; value: string }[] | null;
}

/** `GET /ucloud/api/applications` (docs/architecture.md section 4). */
export interface IApplication {
  name: string;
  version: string;
  title?: string | null;
  description?: string | null;
  applicationType?: string | null;
  parameters?: IApplicationParameter[] | null;
}

/** A parameter value as UCloud takes it (`AppParameterValue`). */
export interface IParameterValue {
  type: 'text' | 'integer' | 'floating_point' | 'boolean';
  value: string | number | boolean;
}

export type ShellState = 'connecting' | 'open' | 'ended';

/** A server-side shell (`/ucloud/shells`). */
export interface IShellModel {
  name: string;
  jobId: string;
  rank: number;
  state: ShellState;
  reason: string | null;
  message: string | null;
  clients: number;
  createdAt: number;
  lastActivity: number;
  jobState: JobState | null;
}

/** An error answered by the server extension, carrying the server's own wording. */
export class UCloudRequestError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
    this.name = 'UCloudRequestError';
  }
}

/** Job states after which a job never runs again. */
export const FINAL_STATES: ReadonlySet<JobState> = new Set<JobState>([
  'SUCCESS',
  'FAILURE',
  'EXPIRED'
]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Pull the human message out of a Jupyter or UCloud error body. */
function errorMessage(body: unknown, fallback: string): string {
  if (isRecord(body)) {
    for (const key of ['message', 'why', 'reason']) {
      const value = body[key];
      if (typeof value === 'string' && value.trim()) {
        return value;
      }
    }
  }
  return fallback;
}

/** Thin client of the server extension; one instance per application. */
export class UCloudAPI {
  constructor(readonly serverSettings: ServerConnection.ISettings) {}

  status(): Promise<IConnectionStatus> {
    return this._request<IConnectionStatus>('ucloud/api/status');
  }

  retrieveProducts(): Promise<ISupportByProvider> {
    return this._request<ISupportByProvider>(
      'ucloud/api/jobs/retrieveProducts'
    );
  }

  browseJobs(query: {
    filterState?: JobState;
    itemsPerPage?: number;
  }): Promise<IPage<IJob>> {
    const params = new URLSearchParams({
      itemsPerPage: String(query.itemsPerPage ?? 100),
      includeProduct: 'true',
      includeUpdates: 'true',
      sortBy: 'createdAt',
      sortDirection: 'descending'
    });
    if (query.filterState) {
      params.set('filterState', query.filterState);
    }
    return this._request<IPage<IJob>>(`ucloud/api/jobs/browse?${params}`);
  }

  retrieveJob(id: string): Promise<IJob> {
    const params = new URLSearchParams({ id });
    return this._request<IJob>(`ucloud/api/jobs/retrieve?${params}`);
  }

  async createJob(spec: IJobSpecification): Promise<string> {
    const body = {
      items: [{ resources: [], ...spec, parameters: spec.parameters ?? {} }]
    };
    const answer = await this._request<{ responses?: { id: string }[] }>(
      'ucloud/api/jobs',
      { method: 'POST', body: JSON.stringify(body) }
    );
    const id = answer.responses?.[0]?.id;
    if (!id) {
      throw new UCloudRequestError(500, 'The server did not return a job id');
    }
    return id;
  }

  async terminateJob(id: string): Promise<void> {
    await this._request<unknown>('ucloud/api/jobs/terminate', {
      method: 'POST',
      body: JSON.stringify({ items: [{ id }] })
    });
  }

  /** Ask for `duration` more time (UCloud's `jobs.extend`). */
  async extendJob(id: string, duration: ISimpleDuration): Promise<void> {
    await this._request<unknown>('ucloud/api/jobs/extend', {
      method: 'POST',
      body: JSON.stringify({ items: [{ jobId: id, requestedTime: duration }] })
    });
  }

  async applications(): Promise<IApplication[]> {
    const answer = await this._request<{ items: IApplication[] }>(
      'ucloud/api/applications'
    );
    return answer.items;
  }

  createShell(options: {
    jobId: string;
    rank: number;
    cols?: number;
    rows?: number;
  }): Promise<IShellModel> {
    return this._request<IShellModel>('ucloud/shells', {
      method: 'POST',
      body: JSON.stringify(options)
    });
  }

  listShells(): Promise<IShellModel[]> {
    return this._request<IShellModel[]>('ucloud/shells');
  }

  /** The shell, or `null` when the server does not know it (any more). */
  async getShell(name: string): Promise<IShellModel | null> {
    try {
      return await this._request<IShellModel>(
        `ucloud/shells/${encodeURIComponent(name)}`
      );
    } catch (error) {
      if (error instanceof UCloudRequestError && error.status === 404) {
        return null;
      }
      throw error;
    }
  }

  async deleteShell(name: string): Promise<void> {
    try {
      await this._request<unknown>(
        `ucloud/shells/${encodeURIComponent(name)}`,
        { method: 'DELETE' }
      );
    } catch (error) {
      if (!(error instanceof UCloudRequestError && error.status === 404)) {
        throw error;
      }
    }
  }

  /** The websocket URL of a shell, with `?since=` when resuming. */
  shellWebSocketUrl(name: string, since: number | null): string {
    const params = new URLSearchParams();
    if (since !== null) {
      params.set('since', String(since));
    }
    return this._wsUrl(
      ['ucloud', 'shells', encodeURIComponent(name), 'websocket'],
      params
    );
  }

  /** The websocket URL that follows a job (`/ucloud/api/jobs/follow?id=`). */
  followWebSocketUrl(jobId: string): string {
    return this._wsUrl(
      ['ucloud', 'api', 'jobs', 'follow'],
      new URLSearchParams({ id: jobId })
    );
  }

  private _wsUrl(parts: string[], params: URLSearchParams): string {
    const settings = this.serverSettings;
    let url = URLExt.join(settings.wsUrl, ...parts);
    if (settings.appendToken && settings.token) {
      params.set('token', settings.token);
    }
    const query = params.toString();
    if (query) {
      url += `?${query}`;
    }
    return url;
  }

  private async _request<T>(path: string, init: RequestInit = {}): Promise<T> {
    const url = URLExt.join(this.serverSettings.baseUrl, path);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(
        url,
        init,
        this.serverSettings
      );
    } catch (error) {
      throw new UCloudRequestError(
        0,
        `Cannot reach the Jupyter server: ${String(error)}`
      );
    }
    const text = await response.text();
    let body: unknown = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
    }
    if (!response.ok) {
      throw new UCloudRequestError(
        response.status,
        errorMessage(body, `${response.status} ${response.statusText}`)
      );
    }
    return body as T;
  }
}
