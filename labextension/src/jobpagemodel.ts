/**
 * State behind a job page: a hold (with logs) on the job's shared follow stream, and which
 * rank's output is shown.
 */
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { IJob } from './api';
import { FollowPhase, IJobFollow, JobFollowHub, JobStream } from './follow';
import { LogBuffer } from './logbuffer';
import { IProductInfo, jobRanks, productOfJob } from './model';

export class JobPageModel implements IDisposable {
  constructor(options: JobPageModel.IOptions) {
    this.jobId = options.jobId;
    this._productOf = options.productOf;
    this._follow = options.hub.follow(this.jobId, { logs: true });
    this.stream.changed.connect(this._onChanged);
    this.stream.logged.connect(this._onLogged);
  }

  readonly jobId: string;

  get stream(): JobStream {
    return this._follow.stream;
  }

  /** The job as of the last push; `null` until the first arrives. */
  get job(): IJob | null {
    return this.stream.job;
  }

  get phase(): FollowPhase {
    return this.stream.phase;
  }

  /** The job, its follow phase or the chosen rank changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Output came for the chosen rank (or every rank's output was replaced). */
  get logged(): ISignal<this, void> {
    return this._logged;
  }

  get ranks(): number {
    return this.job ? jobRanks(this.job) : 1;
  }

  /** The rank whose output is shown (and a terminal opens on). */
  get rank(): number {
    return this._rank;
  }

  set rank(rank: number) {
    if (rank !== this._rank) {
      this._rank = rank;
      this._changed.emit();
      this._logged.emit();
    }
  }

  /** The chosen rank's output. */
  get logs(): LogBuffer {
    return this.stream.logs(this._rank);
  }

  /** The job's product with what it supports (the job carries it; else the panel's list). */
  get product(): IProductInfo | undefined {
    const job = this.job;
    return job ? (productOfJob(job) ?? this._productOf(job)) : undefined;
  }

  get isDisposed(): boolean {
    return this._follow.isDisposed;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.stream.changed.disconnect(this._onChanged);
    this.stream.logged.disconnect(this._onLogged);
    this._follow.dispose();
    Signal.clearData(this);
  }

  private _onChanged = (): void => {
    this._changed.emit();
  };

  private _onLogged = (_: JobStream, ranks: number[] | null): void => {
    if (ranks === null || ranks.includes(this._rank)) {
      this._logged.emit();
    }
  };

  private _follow: IJobFollow;
  private _productOf: (job: IJob) => IProductInfo | undefined;
  private _rank = 0;
  private _changed = new Signal<this, void>(this);
  private _logged = new Signal<this, void>(this);
}

export namespace JobPageModel {
  export interface IOptions {
    jobId: string;
    hub: JobFollowHub;
    /** The product of a job from elsewhere (the panel's list), when the job does not carry it. */
    productOf: (job: IJob) => IProductInfo | undefined;
  }
}
