/**
 * Jobs followed through the extension's follow websocket (`/ucloud/api/jobs/follow?id=`,
 * docs/architecture.md section 4): one socket per job in this browser tab, shared by the panel
 * and the job pages that hold it.
 *
 * A `JobStream` keeps the job as the pushes leave it (`initialJob`, then its updates and new
 * statuses applied) and, while a holder wants logs, each rank's output in a bounded
 * `LogBuffer`. Holders that only want the state (the panel) make the socket ask for no log
 * output (`&logs=0`); the first holder that wants logs reopens it with logs, and the history
 * comes with the new `initialJob`. A socket that drops before the job ended is opened again
 * with backoff; one that cannot be opened is explained by `jobs.retrieve` (a job that does not
 * exist is not retried).
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import {
  IJob,
  IJobStatus,
  IJobsFollowMessage,
  IJobUpdate,
  UCloudAPI,
  UCloudRequestError
} from './api';
import { LogBuffer } from './logbuffer';
import { isFinal } from './model';

/** Characters of output kept per rank (stdout and stderr together). */
export const LOG_CHARS = 1024 * 1024;
/** A stream nobody holds closes this long after (ms), so a page reopened at once finds it. */
const LINGER = 5000;
const RETRY_FIRST = 1000;
const RETRY_MAX = 30000;

/**
 * `connecting`: no job yet; `live`: the socket is open and the job known; `retrying`: the
 * socket dropped before the job ended and is opened again soon; `ended`: the job ended and
 * its stream is complete; `failed`: the job cannot be followed (`detail` says why).
 */
export type FollowPhase =
  'connecting' | 'live' | 'retrying' | 'ended' | 'failed';

function durationOf(ms: number): {
  hours: number;
  minutes: number;
  seconds: number;
} {
  const total = Math.round(ms / 1000);
  return {
    hours: Math.floor(total / 3600),
    minutes: Math.floor((total % 3600) / 60),
    seconds: total % 60
  };
}

/** The job after a follow frame's updates and new status (a new object; `job` is not changed). */
export function applyUpdates(
  job: IJob,
  updates: readonly IJobUpdate[],
  newStatus: IJobStatus | null | undefined
): IJob {
  const next: IJob = {
    ...job,
    specification: { ...job.specification },
    status: { ...job.status },
    updates: [...(job.updates ?? []), ...updates]
  };
  for (const update of updates) {
    if (update.newTimeAllocation) {
      next.specification.timeAllocation = durationOf(update.newTimeAllocation);
      if (next.status.startedAt) {
        next.status.expiresAt =
          next.status.startedAt + update.newTimeAllocation;
      }
    }
    if (update.state && !newStatus && !isFinal(next.status.state)) {
      next.status.state = update.state;
    }
  }
  if (newStatus) {
    next.status = {
      ...next.status,
      ...newStatus,
      resolvedProduct: newStatus.resolvedProduct ?? next.status.resolvedProduct,
      resolvedSupport: newStatus.resolvedSupport ?? next.status.resolvedSupport
    };
  }
  return next;
}

/** One job's follow socket and what it has told (module docstring). */
export class JobStream {
  constructor(
    readonly jobId: string,
    private _api: UCloudAPI
  ) {}

  /** The job as of the last push, `null` before the first. */
  get job(): IJob | null {
    return this._job;
  }

  get phase(): FollowPhase {
    return this._phase;
  }

  /** Why the stream is retrying or failed, in the server's words; `''` otherwise. */
  get detail(): string {
    return this._detail;
  }

  /** The job or the phase changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Output came for these ranks; `null`: every rank's output was replaced (a new socket). */
  get logged(): ISignal<this, number[] | null> {
    return this._logged;
  }

  /** Whether log output is asked for (some holder wants it). */
  get withLogs(): boolean {
    return this._logHolders > 0;
  }

  /** The output of `rank` (empty until some arrives). */
  logs(rank: number): LogBuffer {
    let buffer = this._logs.get(rank);
    if (!buffer) {
      buffer = new LogBuffer(LOG_CHARS);
      this._logs.set(rank, buffer);
    }
    return buffer;
  }

  /** Count a holder (`logs`: whether it wants output); opens or reopens the socket. */
  hold(logs: boolean): void {
    this._holders++;
    if (logs && this._logHolders++ === 0 && (this._socket || this._retry)) {
      this._reopen(); // the socket asks for the state only
      return;
    }
    if (!this._socket && this._retry === null && this._canConnect()) {
      this._connect();
    }
  }

  /** The opposite of `hold`; true when nobody holds the stream any more. */
  release(logs: boolean): boolean {
    this._holders--;
    if (logs && --this._logHolders === 0 && this._socket) {
      this._reopen(); // nobody reads the output any more: ask for the state only
    }
    return this._holders <= 0;
  }

  close(): void {
    this._closed = true;
    this._cancelRetry();
    this._drop();
    Signal.clearData(this);
  }

  /** Not closed, not failed, and not ended unless a holder wants the output it ended without. */
  private _canConnect(): boolean {
    if (this._closed || this._phase === 'failed') {
      return false;
    }
    return this._phase !== 'ended' || (this.withLogs && !this._socketLogs);
  }

  private _cancelRetry(): void {
    if (this._retry !== null) {
      clearTimeout(this._retry);
      this._retry = null;
    }
  }

  private _reopen(): void {
    this._cancelRetry();
    this._drop();
    if (this._canConnect()) {
      this._connect();
    }
  }

  private _drop(): void {
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
      socket.close(1000);
    }
  }

  private _connect(): void {
    let url = this._api.followWebSocketUrl(this.jobId);
    if (!this.withLogs) {
      url += '&logs=0';
    }
    const socket = new WebSocket(url);
    this._socket = socket;
    this._socketLogs = this.withLogs;
    let opened = false;
    socket.onopen = () => {
      opened = true;
    };
    socket.onmessage = event => {
      if (typeof event.data === 'string') {
        this._onFrame(JSON.parse(event.data) as IJobsFollowMessage);
      }
    };
    socket.onclose = event => {
      if (this._socket !== socket) {
        return;
      }
      this._socket = null;
      if (event.code === 1000 && this._job && isFinal(this._job.status.state)) {
        this._setPhase('ended', '');
        return;
      }
      if (!opened) {
        void this._explainRefusal();
      } else {
        this._scheduleRetry(
          this._detail || 'The connection to the job dropped.'
        );
      }
    };
  }

  /** The upgrade was refused or failed: a job that does not exist is not asked for again. */
  private async _explainRefusal(): Promise<void> {
    try {
      const job = await this._api.retrieveJob(this.jobId);
      if (!this._job) {
        this._job = job;
      }
      this._scheduleRetry('Cannot follow the job right now.');
    } catch (error) {
      if (
        error instanceof UCloudRequestError &&
        (error.status === 404 || error.status === 403 || error.status === 400)
      ) {
        this._setPhase('failed', error.message);
      } else {
        this._scheduleRetry(
          error instanceof Error ? error.message : String(error)
        );
      }
    }
  }

  private _scheduleRetry(why: string): void {
    if (!this._canConnect() || this._retry !== null) {
      return;
    }
    this._setPhase(this._job ? 'retrying' : 'connecting', why);
    const delay = this._delay;
    this._delay = Math.min(this._delay * 2, RETRY_MAX);
    this._retry = setTimeout(() => {
      this._retry = null;
      if (this._canConnect() && !this._socket) {
        this._connect();
      }
    }, delay);
  }

  private _onFrame(message: IJobsFollowMessage): void {
    if (typeof message.error === 'string') {
      this._detail = message.error; // the close (1011) that follows retries
      return;
    }
    if (message.initialJob) {
      this._job = message.initialJob;
      this._delay = RETRY_FIRST;
      for (const buffer of this._logs.values()) {
        buffer.clear();
      }
      this._setPhase('live', '');
      this._logged.emit(null);
      return;
    }
    const updates = message.updates ?? [];
    if (this._job && (updates.length || message.newStatus)) {
      this._job = applyUpdates(this._job, updates, message.newStatus);
      this._changed.emit();
    }
    const ranks: number[] = [];
    for (const entry of message.log ?? []) {
      const buffer = this.logs(entry.rank);
      if (entry.stdout) {
        buffer.append('stdout', entry.stdout);
      } else if (entry.stderr) {
        buffer.append('stderr', entry.stderr);
      } else {
        continue; // other provider data (`channel`), or an empty entry
      }
      if (!ranks.includes(entry.rank)) {
        ranks.push(entry.rank);
      }
    }
    if (ranks.length) {
      this._logged.emit(ranks);
    }
  }

  private _setPhase(phase: FollowPhase, detail: string): void {
    this._phase = phase;
    this._detail = detail;
    this._changed.emit();
  }

  private _job: IJob | null = null;
  private _phase: FollowPhase = 'connecting';
  private _detail = '';
  private _socket: WebSocket | null = null;
  /** Whether the current (or last) socket asked for log output. */
  private _socketLogs = false;
  private _retry: ReturnType<typeof setTimeout> | null = null;
  private _delay = RETRY_FIRST;
  private _closed = false;
  private _holders = 0;
  private _logHolders = 0;
  private _logs = new Map<number, LogBuffer>();
  private _changed = new Signal<this, void>(this);
  private _logged = new Signal<this, number[] | null>(this);
}

/** Every job this browser tab follows; `follow()` hands out shared streams. */
export class JobFollowHub {
  constructor(private _api: UCloudAPI) {}

  /** Hold the stream of `jobId` until the returned handle is disposed. */
  follow(jobId: string, options: { logs: boolean }): IJobFollow {
    let stream = this._streams.get(jobId);
    if (!stream) {
      stream = new JobStream(jobId, this._api);
      this._streams.set(jobId, stream);
    }
    const timer = this._lingering.get(jobId);
    if (timer !== undefined) {
      clearTimeout(timer);
      this._lingering.delete(jobId);
    }
    stream.hold(options.logs);
    const held = stream;
    let disposed = false;
    return {
      stream: held,
      get isDisposed() {
        return disposed;
      },
      dispose: () => {
        if (disposed) {
          return;
        }
        disposed = true;
        if (held.release(options.logs)) {
          this._linger(held);
        }
      }
    };
  }

  /** The stream of `jobId` if some holder has it open. */
  find(jobId: string): JobStream | undefined {
    return this._streams.get(jobId);
  }

  private _linger(stream: JobStream): void {
    this._lingering.set(
      stream.jobId,
      setTimeout(() => {
        this._lingering.delete(stream.jobId);
        if (this._streams.get(stream.jobId) === stream) {
          this._streams.delete(stream.jobId);
        }
        stream.close();
      }, LINGER)
    );
  }

  private _streams = new Map<string, JobStream>();
  private _lingering = new Map<string, ReturnType<typeof setTimeout>>();
}

/** A hold on a job's stream. */
export interface IJobFollow extends IDisposable {
  readonly stream: JobStream;
}
