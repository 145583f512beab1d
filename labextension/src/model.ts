/**
 * Pure helpers over UCloud's product and job shapes (no DOM, no requests).
 */
import {
  FINAL_STATES,
  IBackendSupport,
  IComputeProduct,
  IJob,
  IProductReference,
  IResolvedSupport,
  ISupportByProvider,
  JobState
} from './api';

/** Interactive features the panel shows for a product. */
export type Feature = 'terminal' | 'logs' | 'web' | 'vnc';

export const FEATURES: readonly Feature[] = ['terminal', 'logs', 'web', 'vnc'];

/** A product with what it supports, flattened for display. */
export interface IProductInfo {
  reference: IProductReference;
  product: IComputeProduct;
  features: ReadonlySet<Feature>;
}

function backends(support: IResolvedSupport): IBackendSupport[] {
  const { docker, virtualMachine, native } = support.support;
  return [docker, virtualMachine, native].filter(
    (b): b is IBackendSupport => !!b
  );
}

/**
 * The features a product supports: from `features` keys (`jobs.<backend>.<flag>`) when
 * present, otherwise from the flags of every backend (false flags are absent on the wire).
 */
export function supportedFeatures(support: IResolvedSupport): Set<Feature> {
  const found = new Set<Feature>();
  if (Array.isArray(support.features)) {
    for (const key of support.features) {
      const flag = key.split('.').pop();
      if (flag && (FEATURES as readonly string[]).includes(flag)) {
        found.add(flag as Feature);
      }
    }
    return found;
  }
  for (const backend of backends(support)) {
    for (const feature of FEATURES) {
      if (backend[feature]) {
        found.add(feature);
      }
    }
  }
  return found;
}

export function referenceKey(ref: IProductReference): string {
  return `${ref.provider}/${ref.category}/${ref.id}`;
}

/** Every product of every provider, in the server's order. */
export function productInfos(products: ISupportByProvider): IProductInfo[] {
  const infos: IProductInfo[] = [];
  for (const [provider, supports] of Object.entries(
    products.productsByProvider ?? {}
  )) {
    for (const support of supports) {
      const ref = support.support?.product ?? {
        id: support.product.name,
        category: support.product.category.name,
        provider: support.product.category.provider ?? provider
      };
      infos.push({
        reference: ref,
        product: support.product,
        features: supportedFeatures(support)
      });
    }
  }
  return infos;
}

/** "2 CPU · 8 GB · 1 GPU", leaving out what the product does not state. */
export function describeResources(product: IComputeProduct): string {
  const parts: string[] = [];
  if (product.cpu) {
    parts.push(`${product.cpu} CPU`);
  }
  if (product.memoryInGigs) {
    parts.push(`${product.memoryInGigs} GB`);
  }
  if (product.gpu) {
    parts.push(`${product.gpu} GPU`);
  }
  return parts.join(' · ') || 'no resources stated';
}

const STATE_ORDER: Record<JobState, number> = {
  RUNNING: 0,
  IN_QUEUE: 1,
  SUSPENDED: 2,
  FAILURE: 3,
  EXPIRED: 4,
  SUCCESS: 5
};

/** Running jobs first, then queued, then the rest; newest first within a state. */
export function sortJobs(jobs: IJob[]): IJob[] {
  return [...jobs].sort(
    (a, b) =>
      (STATE_ORDER[a.status.state] ?? 9) - (STATE_ORDER[b.status.state] ?? 9) ||
      b.createdAt - a.createdAt
  );
}

export function isFinal(state: JobState | null | undefined): boolean {
  return !!state && FINAL_STATES.has(state);
}

export function jobTitle(job: IJob): string {
  return job.specification.name || `Job ${job.id}`;
}

export function jobRanks(job: IJob): number {
  return Math.max(1, job.specification.replicas ?? 1);
}

/** "1h 05m left", "expired", or "" when the job has no deadline. */
export function timeLeft(job: IJob, now: number): string {
  const expires = job.status.expiresAt;
  if (!expires || isFinal(job.status.state)) {
    return '';
  }
  const ms = expires - now;
  if (ms <= 0) {
    return 'time is up';
  }
  const minutes = Math.floor(ms / 60000);
  const hours = Math.floor(minutes / 60);
  if (hours > 0) {
    return `${hours}h ${String(minutes % 60).padStart(2, '0')}m left`;
  }
  if (minutes > 0) {
    return `${minutes}m left`;
  }
  return `${Math.floor(ms / 1000)}s left`;
}

/** The sentence UCloud's own shell shows when a job is over. */
export function jobEndedSentence(state: JobState | null | undefined): string {
  switch (state) {
    case 'SUCCESS':
      return 'The job has completed.';
    case 'FAILURE':
      return 'The job has failed.';
    case 'EXPIRED':
      return 'The job has expired.';
    default:
      return 'The job is no longer running.';
  }
}

/** Why a terminal cannot be opened on this job, or `null` when it can. */
export function terminalBlocker(
  job: IJob,
  product: IProductInfo | undefined
): string | null {
  if (job.status.state !== 'RUNNING') {
    return `The job is ${job.status.state.toLowerCase().replace('_', ' ')}, not running`;
  }
  if (product && !product.features.has('terminal')) {
    return `Product ${product.reference.id} does not support terminals`;
  }
  return null;
}

/** Why a job cannot be terminated, or `null` when it can. */
export function terminateBlocker(job: IJob): string | null {
  if (isFinal(job.status.state)) {
    return `The job has already ended (${job.status.state.toLowerCase()})`;
  }
  return null;
}
