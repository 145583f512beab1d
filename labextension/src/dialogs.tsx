/**
 * Small dialogs: confirm termination, pick a job (and rank). The Start dialog is in
 * startdialog.tsx.
 */
import { Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';

import { IJob, ISimpleDuration } from './api';
import { jobRanks, jobTooltip } from './model';

export { startJobDialog } from './startdialog';

/** Ask before terminating; resolves to whether the user confirmed. */
export async function confirmTerminate(
  job: IJob | null,
  jobId: string
): Promise<boolean> {
  const label = job ? jobTooltip(job) : `job ${jobId}`;
  const result = await showDialog({
    title: 'Terminate job?',
    body: `Terminate ${label}? Its processes on every node are stopped and its shells end.`,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Terminate' })]
  });
  return result.button.accept;
}

/**
 * Let the user choose one of `jobs` (and a rank when `withRank`). Resolves to `null` when
 * cancelled.
 */
export async function pickJobDialog(
  title: string,
  jobs: IJob[],
  withRank: boolean
): Promise<{ jobId: string; rank: number } | null> {
  const choices: { label: string; jobId: string; rank: number }[] = [];
  for (const job of jobs) {
    const ranks = withRank ? jobRanks(job) : 1;
    for (let rank = 0; rank < ranks; rank++) {
      const label = withRank
        ? `${jobTooltip(job)} · rank ${rank}`
        : `${jobTooltip(job)} · ${job.status.state}`;
      choices.push({ label, jobId: job.id, rank });
    }
  }
  const result = await InputDialog.getItem({
    title,
    items: choices.map(choice => choice.label)
  });
  if (!result.button.accept || result.value === null) {
    return null;
  }
  const chosen = choices.find(choice => choice.label === result.value);
  return chosen ? { jobId: chosen.jobId, rank: chosen.rank } : null;
}

/** The extensions offered, in hours. */
const EXTENSION_HOURS = [1, 2, 4, 8, 24];

/** Ask how much more time a job should get; `null` when cancelled. */
export async function askExtension(
  job: IJob | null,
  jobId: string
): Promise<ISimpleDuration | null> {
  const label = job ? jobTooltip(job) : `job ${jobId}`;
  const items = EXTENSION_HOURS.map(h => `${h} hour${h === 1 ? '' : 's'}`);
  const result = await InputDialog.getItem({
    title: `Extend ${label} by`,
    items,
    current: 0,
    okLabel: 'Extend'
  });
  if (!result.button.accept || result.value === null) {
    return null;
  }
  const hours = EXTENSION_HOURS[items.indexOf(result.value)];
  return hours ? { hours, minutes: 0, seconds: 0 } : null;
}
