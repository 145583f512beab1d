/**
 * The job page: a main-area tab with a job's facts, state and time left, its update timeline,
 * each rank's output (logview.ts), and the actions (terminal on a rank, extend, terminate),
 * all live from the job's follow stream (follow.ts).
 */
import { MainAreaWidget } from '@jupyterlab/apputils';
import {
  addIcon,
  HTMLSelect,
  ReactWidget,
  Toolbar,
  ToolbarButtonComponent,
  UseSignal
} from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import { Panel } from '@lumino/widgets';
import * as React from 'react';

import { IJob } from './api';
import { CommandIDs } from './commands';
import { FollowPhase } from './follow';
import { ucloudIcon, ucloudTerminalIcon } from './icons';
import { TerminateButton } from './jobcard';
import { JobPageModel } from './jobpagemodel';
import { LogView } from './logview';
import {
  describeDuration,
  extendBlocker,
  jobTitle,
  jobTooltip,
  plural,
  terminalBlocker,
  terminateBlocker,
  timeLeft
} from './model';

export const JOB_PAGE_CLASS = 'jp-UCloudJobPage';

export type JobPageWidget = MainAreaWidget<JobPage>;

const PHASE_LABEL: Record<FollowPhase, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  retrying: 'Reconnecting…',
  ended: 'Final',
  failed: 'Cannot follow'
};

function formatTime(ms: number | null | undefined): string {
  return ms ? new Date(ms).toLocaleString() : '';
}

/** A clock for the time left: re-renders every second while mounted. */
function useNow(): number {
  const [now, setNow] = React.useState(Date.now());
  React.useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

function Timeline(props: { job: IJob }): JSX.Element {
  const updates = props.job.updates ?? [];
  if (!updates.length) {
    return <div className="jp-UCloud-empty">No updates yet.</div>;
  }
  return (
    <ol className="jp-UCloudJobPage-timeline" aria-label="Updates">
      {updates.map((update, index) => {
        const allocation = update.newTimeAllocation
          ? `Time allocation now ${describeDuration({
              hours: Math.floor(update.newTimeAllocation / 3600000),
              minutes: Math.floor((update.newTimeAllocation % 3600000) / 60000),
              seconds: Math.floor((update.newTimeAllocation % 60000) / 1000)
            })}`
          : '';
        return (
          <li key={index} data-state={update.state ?? ''}>
            <time dateTime={new Date(update.timestamp).toISOString()}>
              {formatTime(update.timestamp)}
            </time>
            {update.state && (
              <span
                className={`jp-UCloud-state jp-UCloud-state-${update.state}`}
              >
                {update.state.replace('_', ' ')}
              </span>
            )}
            <span className="jp-UCloudJobPage-update-text">
              {[update.status, allocation].filter(Boolean).join(' · ')}
            </span>
          </li>
        );
      })}
    </ol>
  );
}

function Summary(props: { model: JobPageModel }): JSX.Element {
  const { model } = props;
  const now = useNow();
  const job = model.job;
  const phase = model.phase;
  const detail = model.stream.detail;
  if (!job) {
    return (
      <div className="jp-UCloudJobPage-summary">
        <h2 data-field="name">Job {model.jobId}</h2>
        {phase === 'failed' ? (
          <div className="jp-UCloud-error" role="alert">
            {detail}
          </div>
        ) : (
          <div className="jp-UCloud-empty">{detail || 'Loading…'}</div>
        )}
      </div>
    );
  }
  const state = job.status.state;
  const product = model.product;
  const left = timeLeft(job, now);
  const spec = job.specification;
  return (
    <div className="jp-UCloudJobPage-summary">
      <div className="jp-UCloudJobPage-head">
        <h2 data-field="name" title={jobTooltip(job)}>
          {jobTitle(job)}
        </h2>
        <span
          className={`jp-UCloud-state jp-UCloud-state-${state}`}
          data-field="state"
        >
          {state.replace('_', ' ')}
        </span>
        {left && <span data-field="time-left">{left}</span>}
        <span
          className="jp-UCloudJobPage-phase"
          data-field="phase"
          data-phase={phase}
          title={detail || PHASE_LABEL[phase]}
        >
          {PHASE_LABEL[phase]}
        </span>
      </div>
      {detail && phase !== 'live' && phase !== 'ended' && (
        <div className="jp-UCloud-job-note" data-field="detail">
          {detail}
        </div>
      )}
      <dl className="jp-UCloudJobPage-facts">
        <dt>ID</dt>
        <dd data-field="id">{job.id}</dd>
        <dt>Application</dt>
        <dd data-field="application">
          {spec.application.name} {spec.application.version}
        </dd>
        <dt>Product</dt>
        <dd data-field="product">
          {spec.product.id}
          {product ? ` (${spec.product.provider})` : ''}
        </dd>
        <dt>Ranks</dt>
        <dd data-field="ranks">{plural(model.ranks, 'node')}</dd>
        <dt>Time allocation</dt>
        <dd data-field="allocation">
          {describeDuration(spec.timeAllocation) || 'none'}
        </dd>
        {job.status.startedAt ? (
          <>
            <dt>Started</dt>
            <dd data-field="started">{formatTime(job.status.startedAt)}</dd>
          </>
        ) : null}
      </dl>
      <h3>Updates</h3>
      <Timeline job={job} />
    </div>
  );
}

/** Above the output: which rank, what the colours mean, and back to the tail. */
function LogHeader(props: { model: JobPageModel; view: LogView }): JSX.Element {
  const { model, view } = props;
  return (
    <div className="jp-UCloudJobPage-logHeader">
      <h3>Output</h3>
      {model.ranks > 1 ? (
        <HTMLSelect
          className="jp-UCloudJobPage-rank"
          aria-label="Rank"
          value={model.rank}
          onChange={event => {
            model.rank = Number(event.currentTarget.value);
          }}
          options={Array.from({ length: model.ranks }, (_, r) => ({
            value: r,
            label: `rank ${r}`
          }))}
        />
      ) : (
        <span className="jp-UCloudJobPage-rankLabel">rank 0</span>
      )}
      <span className="jp-UCloudJobPage-legend">
        <span className="jp-UCloudLog-stdout">stdout</span>
        <span className="jp-UCloudLog-stderr">stderr</span>
      </span>
      <ToolbarButtonComponent
        className="jp-UCloudJobPage-follow"
        label="Follow output"
        tooltip="Scroll to the end and follow new output"
        onClick={() => view.scrollToEnd()}
      />
    </div>
  );
}

/** The page's content (the `MainAreaWidget` adds the toolbar). */
export class JobPage extends Panel {
  constructor(readonly model: JobPageModel) {
    super();
    this.addClass(JOB_PAGE_CLASS);
    this.node.dataset.jobId = model.jobId;
    const summary = ReactWidget.create(
      <UseSignal signal={model.changed}>
        {() => <Summary model={model} />}
      </UseSignal>
    );
    summary.addClass('jp-UCloudJobPage-summaryPane');
    this.logView = new LogView();
    const header = ReactWidget.create(
      <UseSignal signal={model.changed}>
        {() => <LogHeader model={model} view={this.logView} />}
      </UseSignal>
    );
    header.addClass('jp-UCloudJobPage-logHeaderPane');
    this.addWidget(summary);
    this.addWidget(header);
    this.addWidget(this.logView);
    this._showRank();
    model.logged.connect(() => this.logView.refresh(), this);
    model.changed.connect(this._onChanged);
    this._onChanged();
  }

  readonly logView: LogView;

  override dispose(): void {
    this.model.dispose();
    super.dispose();
  }

  protected override onActivateRequest(msg: Message): void {
    this.logView.node.focus();
  }

  private _onChanged = (): void => {
    const job = this.model.job;
    this.node.dataset.state = job?.status.state ?? '';
    this.node.dataset.phase = this.model.phase;
    this.node.dataset.rank = String(this.model.rank);
    if (this._shownRank !== this.model.rank) {
      this._showRank();
    }
  };

  private _showRank(): void {
    this._shownRank = this.model.rank;
    this.logView.node.dataset.rank = String(this.model.rank);
    this.logView.setBuffer(this.model.logs);
  }

  private _shownRank = -1;
}

/** The page's actions, enabled or not (with the reason) as the job stands. */
function Actions(props: {
  model: JobPageModel;
  commands: CommandRegistry;
  which: 'start' | 'end';
}): JSX.Element {
  const { model, commands } = props;
  const job = model.job;
  const product = model.product;
  if (props.which === 'end') {
    const noTerminate = job ? terminateBlocker(job) : 'Loading…';
    return (
      <TerminateButton
        className="jp-UCloudJobPage-terminate"
        commands={commands}
        jobId={model.jobId}
        blocker={noTerminate}
      />
    );
  }
  const noTerminal = job ? terminalBlocker(job, product) : 'Loading…';
  const noExtend = job ? extendBlocker(job, product) : 'Loading…';
  return (
    <>
      <ToolbarButtonComponent
        className="jp-UCloudJobPage-terminal"
        icon={ucloudTerminalIcon}
        label="Terminal"
        enabled={!noTerminal}
        tooltip={`Open a terminal on rank ${model.rank} of this job`}
        disabledTooltip={noTerminal ?? ''}
        onClick={() =>
          void commands.execute(CommandIDs.openTerminal, {
            jobId: model.jobId,
            rank: model.rank
          })
        }
      />
      <ToolbarButtonComponent
        className="jp-UCloudJobPage-extend"
        icon={addIcon}
        label="Extend time…"
        enabled={!noExtend}
        tooltip="Ask for more time for this job"
        disabledTooltip={noExtend ?? ''}
        onClick={() =>
          void commands.execute(CommandIDs.extendJob, { jobId: model.jobId })
        }
      />
    </>
  );
}

/** A job page in a main-area tab, with its toolbar. */
export function createJobPage(
  model: JobPageModel,
  commands: CommandRegistry
): JobPageWidget {
  const content = new JobPage(model);
  const widget = new MainAreaWidget({ content });
  widget.id = `ucloud-job-${model.jobId}`;
  widget.addClass('jp-UCloudJobPage-tab');
  widget.title.icon = ucloudIcon;
  widget.title.closable = true;
  for (const which of ['start', 'end'] as const) {
    if (which === 'end') {
      widget.toolbar.addItem('spacer', Toolbar.createSpacerItem());
    }
    const actions = ReactWidget.create(
      <UseSignal signal={model.changed}>
        {() => <Actions model={model} commands={commands} which={which} />}
      </UseSignal>
    );
    actions.addClass('jp-UCloudJobPage-actions');
    widget.toolbar.addItem(`ucloud-actions-${which}`, actions);
  }
  const retitle = () => {
    const job = model.job;
    widget.title.label = job ? jobTitle(job) : `Job ${model.jobId}`;
    widget.title.caption = job
      ? `${jobTooltip(job)}: ${job.status.state}`
      : `Job ${model.jobId}`;
  };
  model.changed.connect(retitle);
  retitle();
  return widget;
}
