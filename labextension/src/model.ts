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
  IShellModel,
  ISupportByProvider,
  JobState
} from './api';

/** Features the panel shows for a product (`extension`: time extension). */
export type Feature = 'terminal' | 'logs' | 'web' | 'vnc' | 'extension';

export const FEATURES: readonly Feature[] = [
  'terminal',
  'logs',
  'web',
  'vnc',
  'extension'
];

/** How each feature is named to a person. */
export const FEATURE_LABEL: Record<Feature, string> = {
  terminal: 'terminal',
  logs: 'logs',
  web: 'web',
  vnc: 'vnc',
  extension: 'time extension'
};

/** The backend flag of each feature (`features` keys use the feature's own name). */
const FEATURE_FLAG: Record<Feature, keyof IBackendSupport> = {
  terminal: 'terminal',
  logs: 'logs',
  web: 'web',
  vnc: 'vnc',
  extension: 'timeExtension'
};

/** A product with what it supports, flattened for display. */
export interface IProductInfo {
  reference: IProductReference;
  product: IComputeProduct;
  features: ReadonlySet<Feature>;
  /** The most nodes a job may have, when the provider states it (the embedded server does). */
  maxNodes: number | null;
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
      if (backend[FEATURE_FLAG[feature]]) {
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
      const max = support.product.maxReplicas;
      infos.push({
        reference: ref,
        product: support.product,
        features: supportedFeatures(support),
        maxNodes: typeof max === 'number' && max > 0 ? max : null
      });
    }
  }
  return infos;
}

export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** "up to 4 nodes", or "" when the provider does not say. */
export function describeMaxNodes(info: IProductInfo): string {
  return info.maxNodes ? `up to ${plural(info.maxNodes, 'node')}` : '';
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

/** When the job last changed: its latest update, else its creation (ms). */
export function lastActivity(job: IJob): number {
  let last = job.createdAt ?? 0;
  for (const update of job.updates ?? []) {
    if (update.timestamp > last) {
      last = update.timestamp;
    }
  }
  return last;
}

/**
 * Running jobs first, then the most recently active first, so a job that just ended comes
 * before jobs that ended long ago (jupyter_ucloud/client/naming.py `sort_jobs` is the twin).
 */
export function sortJobs(jobs: IJob[]): IJob[] {
  const running = (job: IJob) => (job.status.state === 'RUNNING' ? 0 : 1);
  return [...jobs].sort(
    (a, b) =>
      running(a) - running(b) ||
      lastActivity(b) - lastActivity(a) ||
      Number(b.id) - Number(a.id)
  );
}

/** The last status message UCloud recorded for the job (its `updates`), or `null`. */
export function lastStatus(job: IJob): string | null {
  const updates = job.updates ?? [];
  for (let i = updates.length - 1; i >= 0; i--) {
    const status = updates[i].status;
    if (status && status.trim()) {
      return status;
    }
  }
  return null;
}

export function isFinal(state: JobState | null | undefined): boolean {
  return !!state && FINAL_STATES.has(state);
}

/**
 * The one naming rule: the job's name if it has one, else "Job <id>"
 * (jupyter_ucloud/client/naming.py `job_title` is the twin).
 */
export function jobTitle(job: IJob): string {
  return job.specification.name?.trim() || `Job ${job.id}`;
}

/** The title with the id, for tooltips and pickers: "my job (job 3)", or "Job 3". */
export function jobTooltip(job: IJob): string {
  const title = jobTitle(job);
  return title === `Job ${job.id}` ? title : `${title} (job ${job.id})`;
}

export function jobRanks(job: IJob): number {
  return Math.max(1, job.specification.replicas ?? 1);
}

/** A shell as the tabs and the Running panel name it (`shellOrdinal` counts its siblings). */
export function shellTitle(
  jobLabel: string,
  rank: number,
  ordinal: number
): string {
  const base = `${jobLabel} · rank ${rank}`;
  return ordinal > 1 ? `${base} (${ordinal})` : base;
}

/**
 * The position (from 1) of shell `name` among the shells on its job and rank, oldest first,
 * so the second shell on a rank is titled "... · rank 0 (2)". 1 when it is not listed.
 */
export function shellOrdinal(
  shells: readonly IShellModel[],
  name: string
): number {
  const shell = shells.find(s => s.name === name);
  if (!shell) {
    return 1;
  }
  const siblings = shells
    .filter(s => s.jobId === shell.jobId && s.rank === shell.rank)
    .sort((a, b) => a.createdAt - b.createdAt || a.name.localeCompare(b.name));
  return siblings.findIndex(s => s.name === name) + 1;
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

/**
 * Why a terminal cannot be opened on this job, in a person's words, or `null` when it can
 * (jupyter_ucloud/widgets/job_picker.py `terminal_blocker` is the twin).
 */
export function terminalBlocker(
  job: IJob,
  product: IProductInfo | undefined
): string | null {
  switch (job.status.state) {
    case 'RUNNING':
      break;
    case 'IN_QUEUE':
      return 'The job is still waiting in the queue: terminals open once it runs.';
    case 'SUSPENDED':
      return 'The job is suspended: terminals open once it runs again.';
    case 'SUCCESS':
      return 'The job has completed, so it has no terminals any more.';
    case 'FAILURE':
      return 'The job has failed, so it has no terminals any more.';
    case 'EXPIRED':
      return "The job's time ran out, so it has no terminals any more.";
    default:
      return 'Terminals need a running job.';
  }
  if (product && !product.features.has('terminal')) {
    return `${product.reference.id} does not offer terminals, so this job has none.`;
  }
  return null;
}

/** Why a job cannot be terminated, in a person's words, or `null` when it can. */
export function terminateBlocker(job: IJob): string | null {
  switch (job.status.state) {
    case 'SUCCESS':
      return 'The job has already completed.';
    case 'FAILURE':
      return 'The job has already failed.';
    case 'EXPIRED':
      return "The job's time has already run out.";
    default:
      return null;
  }
}

/** The product of a job as the job itself carries it (`status.resolvedSupport`), if it does. */
export function productOfJob(job: IJob): IProductInfo | undefined {
  const support = job.status.resolvedSupport;
  if (!support?.product) {
    return undefined;
  }
  const max = support.product.maxReplicas;
  return {
    reference: job.specification.product,
    product: support.product,
    features: supportedFeatures(support),
    maxNodes: typeof max === 'number' && max > 0 ? max : null
  };
}

/** Why a job's time cannot be extended, in a person's words, or `null` when it can. */
export function extendBlocker(
  job: IJob,
  product: IProductInfo | undefined
): string | null {
  if (isFinal(job.status.state)) {
    return 'The job has ended: there is no time left to extend.';
  }
  if (product && !product.features.has('extension')) {
    return `${product.reference.id} does not offer time extension.`;
  }
  return null;
}

/** "1 h 30 min" for a `SimpleDuration`, "" when there is none. */
export function describeDuration(
  duration:
    { hours: number; minutes: number; seconds: number } | null | undefined
): string {
  if (!duration) {
    return '';
  }
  const parts: string[] = [];
  if (duration.hours) {
    parts.push(`${duration.hours} h`);
  }
  if (duration.minutes) {
    parts.push(`${duration.minutes} min`);
  }
  if (duration.seconds || !parts.length) {
    parts.push(`${duration.seconds} s`);
  }
  return parts.join(' ');
}
