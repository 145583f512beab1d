/**
 * A job in the panel: state (with the last status message), name, facts, and its actions.
 * A click on the card (not on its controls), or Enter on its name, opens the job page.
 */
import { CommandRegistry } from '@lumino/commands';
import {
  HTMLSelect,
  stopIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { IJob } from './api';
import { CommandIDs } from './commands';
import { ucloudTerminalIcon } from './icons';
import {
  IProductInfo,
  jobRanks,
  jobTitle,
  jobTooltip,
  lastStatus,
  plural,
  terminalBlocker,
  terminateBlocker,
  timeLeft
} from './model';

export interface IJobCardProps {
  job: IJob;
  product: IProductInfo | undefined;
  commands: CommandRegistry;
  now: number;
}

/**
 * Terminate (asks first), disabled with `blocker` as the reason when the job cannot be
 * terminated: the job card's and the job page's.
 */
export function TerminateButton(props: {
  className: string;
  commands: CommandRegistry;
  jobId: string;
  blocker: string | null;
}): JSX.Element {
  return (
    <ToolbarButtonComponent
      className={props.className}
      icon={stopIcon}
      label="Terminate"
      enabled={!props.blocker}
      tooltip="Terminate this job (asks first)"
      disabledTooltip={props.blocker ?? ''}
      onClick={() =>
        void props.commands.execute(CommandIDs.terminateJob, {
          jobId: props.jobId
        })
      }
    />
  );
}

export function JobCard(props: IJobCardProps): JSX.Element {
  const { job, product, commands, now } = props;
  const [rank, setRank] = React.useState(0);
  const ranks = jobRanks(job);
  const noTerminal = terminalBlocker(job, product);
  const noTerminate = terminateBlocker(job);
  const state = job.status.state;
  const status = lastStatus(job);
  const stateText = state.replace('_', ' ');
  return (
    <li
      className="jp-UCloud-job"
      data-job-id={job.id}
      data-state={state}
      title={`${jobTooltip(job)}: click to open its page (state, updates, output)`}
      onClick={event => {
        const target = event.target as HTMLElement;
        if (!target.closest('button, select, jp-button, .jp-HTMLSelect')) {
          void commands.execute(CommandIDs.openJob, { jobId: job.id });
        }
      }}
    >
      <div className="jp-UCloud-job-head">
        <span
          className={`jp-UCloud-state jp-UCloud-state-${state}`}
          title={status ? `${stateText}: ${status}` : stateText}
        >
          {stateText}
        </span>
        <span
          className="jp-UCloud-job-name"
          title={jobTooltip(job)}
          role="link"
          tabIndex={0}
          onKeyDown={event => {
            if (event.key === 'Enter') {
              void commands.execute(CommandIDs.openJob, { jobId: job.id });
            }
          }}
        >
          {jobTitle(job)}
        </span>
      </div>
      <div className="jp-UCloud-job-facts">
        <span data-field="product">{job.specification.product.id}</span>
        <span data-field="ranks">{plural(ranks, 'node')}</span>
        <span data-field="time-left">{timeLeft(job, now)}</span>
      </div>
      {status && (
        <div
          className="jp-UCloud-job-status"
          data-field="status"
          title={status}
        >
          {status}
        </div>
      )}
      <div className="jp-UCloud-job-actions">
        {ranks > 1 && (
          <HTMLSelect
            className="jp-UCloud-rank"
            aria-label="Rank"
            value={rank}
            disabled={!!noTerminal}
            title={noTerminal ?? 'Rank to open a terminal on'}
            onChange={event => setRank(Number(event.currentTarget.value))}
            options={Array.from({ length: ranks }, (_, r) => ({
              value: r,
              label: `rank ${r}`
            }))}
          />
        )}
        <ToolbarButtonComponent
          className="jp-UCloud-open-terminal"
          icon={ucloudTerminalIcon}
          label="Terminal"
          enabled={!noTerminal}
          tooltip={`Open a terminal on rank ${rank}`}
          disabledTooltip={noTerminal ?? ''}
          onClick={() =>
            void commands.execute(CommandIDs.openTerminal, {
              jobId: job.id,
              rank
            })
          }
        />
        <TerminateButton
          className="jp-UCloud-terminate"
          commands={commands}
          jobId={job.id}
          blocker={noTerminate}
        />
      </div>
      {noTerminal && (
        <div className="jp-UCloud-job-note" data-field="why-no-terminal">
          {noTerminal}
        </div>
      )}
    </li>
  );
}
