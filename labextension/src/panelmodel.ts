/**
 * State behind the sidebar panel: connection, products and jobs. The list comes from a slow
 * `Poll` of `jobs.browse` (with backoff, standing by while the panel or the page is hidden);
 * the state of every listed job that has not ended comes from pushes (the job's follow
 * stream, status only), so a change shows within a second.
 */
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { IConnectionStatus, IJob, UCloudAPI } from './api';
import { IJobFollow, JobFollowHub, JobStream } from './follow';
import {
  IProductInfo,
  isFinal,
  lastActivity,
  productInfos,
  referenceKey,
  sortJobs
} from './model';

export type JobFilter = 'running' | 'all';

/** Poll interval while visible, and the ceiling of its backoff after errors (ms). */
const INTERVAL = 30000;
const MAX_INTERVAL = 60000;

export class UCloudPanelModel {
  constructor(options: UCloudPanelModel.IOptions) {
    this._api = options.api;
    this._hub = options.hub;
    this.poll = new Poll({
      auto: false,
      factory: () => this._refresh(),
      frequency: { interval: INTERVAL, backoff: true, max: MAX_INTERVAL },
      name: 'jupyter-ucloud:jobs',
      standby: options.standby
    });
  }

  readonly poll: Poll;

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get status(): IConnectionStatus | null {
    return this._status;
  }

  /** Why the last refresh failed (the server's words), or `null`. */
  get error(): string | null {
    return this._error;
  }

  get products(): IProductInfo[] {
    return this._products;
  }

  get jobs(): IJob[] {
    return this._jobs;
  }

  get loaded(): boolean {
    return this._loaded;
  }

  get filter(): JobFilter {
    return this._filter;
  }

  set filter(filter: JobFilter) {
    this._filterChosen = true;
    if (filter !== this._filter) {
      this._filter = filter;
      this._jobs = [];
      this._changed.emit();
      void this.refresh();
    }
  }

  /** The product of a job, when the server listed it. */
  productOf(job: IJob): IProductInfo | undefined {
    return this._productsByKey.get(referenceKey(job.specification.product));
  }

  /** Refresh now (products too); resolves when the data is in. */
  async refresh(): Promise<void> {
    this._productsStale = true;
    await this.poll.refresh();
    await this.poll.tick;
  }

  /** Apply the panel settings (`refreshInterval` in seconds, `defaultJobFilter`). */
  configure(settings: {
    refreshInterval?: number;
    defaultJobFilter?: JobFilter;
  }): void {
    if (settings.refreshInterval && settings.refreshInterval > 0) {
      this.poll.frequency = {
        ...this.poll.frequency,
        interval: settings.refreshInterval * 1000
      };
    }
    if (settings.defaultJobFilter && !this._filterChosen) {
      this.filter = settings.defaultJobFilter;
      this._filterChosen = false;
    }
  }

  /** Start polling (first refresh right away). */
  start(): void {
    void this.poll.start();
  }

  dispose(): void {
    this.poll.dispose();
    for (const follow of this._follows.values()) {
      follow.dispose();
    }
    this._follows.clear();
    Signal.clearData(this);
  }

  private async _refresh(): Promise<void> {
    try {
      const status = await this._api.status();
      this._status = status;
      if (!status.ok) {
        this._error = status.error || 'UCloud is not reachable';
        this._products = [];
        this._jobs = [];
        return;
      }
      if (this._productsStale || !this._products.length) {
        this._products = productInfos(await this._api.retrieveProducts());
        this._productsByKey = new Map(
          this._products.map(p => [referenceKey(p.reference), p])
        );
        this._productsStale = false;
      }
      const page = await this._api.browseJobs({
        filterState: this._filter === 'running' ? 'RUNNING' : undefined
      });
      this._jobs = sortJobs(page.items.map(job => this._newest(job)));
      this._followLive();
      this._error = null;
    } catch (error) {
      this._error = error instanceof Error ? error.message : String(error);
      // Rejecting makes the poll back off until the server answers again.
      throw error;
    } finally {
      this._loaded = true;
      this._changed.emit();
    }
  }

  /** The listed job, or what its stream pushed when that is newer (a browse can lag). */
  private _newest(job: IJob): IJob {
    const pushed = this._hub.find(job.id)?.job;
    if (!pushed) {
      return job;
    }
    const ended = isFinal(pushed.status.state) && !isFinal(job.status.state);
    return ended || lastActivity(pushed) > lastActivity(job) ? pushed : job;
  }

  /** Follow the listed jobs that have not ended; let go of the others. */
  private _followLive(): void {
    const live = new Set(
      this._jobs.filter(job => !isFinal(job.status.state)).map(job => job.id)
    );
    for (const [id, follow] of this._follows) {
      if (!live.has(id)) {
        follow.dispose();
        this._follows.delete(id);
      }
    }
    for (const id of live) {
      if (!this._follows.has(id)) {
        const follow = this._hub.follow(id, { logs: false });
        follow.stream.changed.connect(this._onPush);
        this._follows.set(id, follow);
      }
    }
  }

  private _onPush = (stream: JobStream): void => {
    const pushed = stream.job;
    const index = this._jobs.findIndex(job => job.id === stream.jobId);
    if (!pushed || index < 0 || this._jobs[index] === pushed) {
      return;
    }
    const jobs = [...this._jobs];
    if (this._filter === 'running' && pushed.status.state !== 'RUNNING') {
      jobs.splice(index, 1);
    } else {
      jobs[index] = pushed;
    }
    this._jobs = sortJobs(jobs);
    this._changed.emit();
  };

  private _api: UCloudAPI;
  private _hub: JobFollowHub;
  private _follows = new Map<string, IJobFollow>();
  private _status: IConnectionStatus | null = null;
  private _error: string | null = null;
  private _products: IProductInfo[] = [];
  private _productsByKey = new Map<string, IProductInfo>();
  private _productsStale = true;
  private _jobs: IJob[] = [];
  private _filter: JobFilter = 'all';
  private _filterChosen = false;
  private _loaded = false;
  private _changed = new Signal<this, void>(this);
}

export namespace UCloudPanelModel {
  export interface IOptions {
    api: UCloudAPI;
    hub: JobFollowHub;
    standby: Poll.Standby | (() => boolean | Poll.Standby);
  }
}
