/**
 * The UCloud sidebar: connection, products with what they support, jobs with actions.
 */
import { CommandRegistry } from '@lumino/commands';
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { IJob } from './api';
import { CommandIDs } from './commands';
import {
  describeResources,
  FEATURES,
  IProductInfo,
  jobRanks,
  jobTitle,
  terminalBlocker,
  terminateBlocker,
  timeLeft
} from './model';
import { JobFilter, UCloudPanelModel } from './panelmodel';

function ConnectionSection(props: { model: UCloudPanelModel }) {
  const { status, error, loaded } = props.model;
  if (!loaded) {
    return <div className="jp-UCloud-connection">Connecting to UCloud…</div>;
  }
  return (
    <div
      className="jp-UCloud-connection"
      data-ok={status?.ok ? 'true' : 'false'}
    >
      {status && (
        <dl className="jp-UCloud-connection-facts">
          <dt>Mode</dt>
          <dd data-field="mode">
            {status.mode === 'embedded' ? 'embedded server' : 'remote UCloud'}
          </dd>
          <dt>Host</dt>
          <dd data-field="host">{status.host || '—'}</dd>
          <dt>User</dt>
          <dd data-field="user">{status.user || '—'}</dd>
          {status.project && (
            <>
              <dt>Project</dt>
              <dd data-field="project">{status.project}</dd>
            </>
          )}
        </dl>
      )}
      {error && (
        <div className="jp-UCloud-error" role="alert">
          {error}
        </div>
      )}
    </div>
  );
}

function ProductRow(props: { product: IProductInfo }) {
  const { product, reference, features } = props.product;
  return (
    <li
      className="jp-UCloud-product"
      data-product={reference.id}
      data-provider={reference.provider}
    >
      <div className="jp-UCloud-product-head">
        <span className="jp-UCloud-product-name">{product.name}</span>
        <span className="jp-UCloud-product-provider">{reference.provider}</span>
      </div>
      <div className="jp-UCloud-product-resources">
        {describeResources(product)}
      </div>
      <div className="jp-UCloud-features">
        {FEATURES.map(feature =>
          features.has(feature) ? (
            <span
              key={feature}
              className="jp-UCloud-feature"
              data-feature={feature}
              title={`Supports ${feature}`}
            >
              {feature}
            </span>
          ) : (
            <span
              key={feature}
              className="jp-UCloud-feature jp-mod-absent"
              data-feature-absent={feature}
              title={`No ${feature}`}
              aria-label={`no ${feature}`}
            >
              {feature}
            </span>
          )
        )}
      </div>
    </li>
  );
}

function JobRow(props: {
  job: IJob;
  model: UCloudPanelModel;
  commands: CommandRegistry;
  now: number;
}) {
  const { job, model, commands, now } = props;
  const [rank, setRank] = React.useState(0);
  const ranks = jobRanks(job);
  const product = model.productOf(job);
  const noTerminal = terminalBlocker(job, product);
  const noTerminate = terminateBlocker(job);
  const state = job.status.state;
  return (
    <li className="jp-UCloud-job" data-job-id={job.id} data-state={state}>
      <div className="jp-UCloud-job-head">
        <span className={`jp-UCloud-state jp-UCloud-state-${state}`}>
          {state.replace('_', ' ')}
        </span>
        <span className="jp-UCloud-job-name" title={`Job ${job.id}`}>
          {jobTitle(job)}
        </span>
      </div>
      <div className="jp-UCloud-job-facts">
        <span data-field="product">{job.specification.product.id}</span>
        <span data-field="ranks">
          {ranks} {ranks === 1 ? 'rank' : 'ranks'}
        </span>
        <span data-field="time-left">{timeLeft(job, now)}</span>
      </div>
      <div className="jp-UCloud-job-actions">
        <span title={noTerminal ?? ''}>
          <select
            className="jp-UCloud-rank"
            aria-label="Rank"
            value={rank}
            disabled={!!noTerminal}
            title={noTerminal ?? 'Rank to open a terminal on'}
            onChange={event => setRank(Number(event.target.value))}
          >
            {Array.from({ length: ranks }, (_, r) => (
              <option key={r} value={r}>
                rank {r}
              </option>
            ))}
          </select>
          <button
            className="jp-Button jp-mod-styled jp-mod-accept jp-UCloud-open-terminal"
            disabled={!!noTerminal}
            title={noTerminal ?? `Open a terminal on rank ${rank}`}
            onClick={() =>
              void commands.execute(CommandIDs.openTerminal, {
                jobId: job.id,
                rank
              })
            }
          >
            Terminal
          </button>
        </span>
        <span title={noTerminate ?? ''}>
          <button
            className="jp-Button jp-mod-styled jp-mod-warn jp-UCloud-terminate"
            disabled={!!noTerminate}
            title={noTerminate ?? 'Terminate this job'}
            onClick={() =>
              void commands.execute(CommandIDs.terminateJob, { jobId: job.id })
            }
          >
            Terminate
          </button>
        </span>
      </div>
    </li>
  );
}

function JobsSection(props: {
  model: UCloudPanelModel;
  commands: CommandRegistry;
}) {
  const { model, commands } = props;
  const now = Date.now();
  const setFilter = (filter: JobFilter) => {
    model.filter = filter;
  };
  const canStart = model.status?.ok === true && model.products.length > 0;
  return (
    <div className="jp-UCloud-jobs">
      <div className="jp-UCloud-jobs-toolbar">
        <div className="jp-UCloud-filter" role="radiogroup" aria-label="Jobs">
          {(['running', 'all'] as JobFilter[]).map(filter => (
            <label key={filter}>
              <input
                type="radio"
                name="jp-UCloud-filter"
                value={filter}
                checked={model.filter === filter}
                onChange={() => setFilter(filter)}
              />
              {filter === 'running' ? 'Running' : 'All'}
            </label>
          ))}
        </div>
        <span title={canStart ? '' : 'Not connected to UCloud'}>
          <button
            className="jp-Button jp-mod-styled jp-mod-accept jp-UCloud-start-job"
            disabled={!canStart}
            title={canStart ? 'Start a job' : 'Not connected to UCloud'}
            onClick={() => void commands.execute(CommandIDs.startJob)}
          >
            Start job…
          </button>
        </span>
      </div>
      {model.jobs.length === 0 ? (
        <div className="jp-UCloud-empty">
          {model.loaded
            ? model.filter === 'running'
              ? 'No running jobs.'
              : 'No jobs yet.'
            : 'Loading…'}
        </div>
      ) : (
        <ul className="jp-UCloud-job-list">
          {model.jobs.map(job => (
            <JobRow
              key={job.id}
              job={job}
              model={model}
              commands={commands}
              now={now}
            />
          ))}
        </ul>
      )}
    </div>
  );
}

/** The sidebar widget. */
export class UCloudPanel extends ReactWidget {
  constructor(options: { model: UCloudPanelModel; commands: CommandRegistry }) {
    super();
    this.model = options.model;
    this._commands = options.commands;
    this.addClass('jp-UCloudPanel');
  }

  readonly model: UCloudPanelModel;

  protected override onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    // Back from standby: do not wait for the next tick.
    void this.model.poll.refresh();
  }

  protected render(): React.ReactElement {
    return (
      <UseSignal signal={this.model.changed}>
        {() => (
          <div className="jp-UCloud-body">
            <header className="jp-UCloud-header">
              <h2>UCloud</h2>
              <button
                className="jp-Button jp-mod-minimal jp-UCloud-refresh"
                title="Refresh products and jobs"
                onClick={() => void this._commands.execute(CommandIDs.refresh)}
              >
                ↻
              </button>
            </header>
            <section className="jp-UCloud-section" aria-label="Connection">
              <h3>Connection</h3>
              <ConnectionSection model={this.model} />
            </section>
            <section className="jp-UCloud-section" aria-label="Products">
              <h3>Products</h3>
              {this.model.products.length ? (
                <ul className="jp-UCloud-product-list">
                  {this.model.products.map(product => (
                    <ProductRow
                      key={`${product.reference.provider}/${product.reference.id}`}
                      product={product}
                    />
                  ))}
                </ul>
              ) : (
                <div className="jp-UCloud-empty">
                  {this.model.loaded ? 'No products.' : 'Loading…'}
                </div>
              )}
            </section>
            <section className="jp-UCloud-section" aria-label="Jobs">
              <h3>Jobs</h3>
              <JobsSection model={this.model} commands={this._commands} />
            </section>
          </div>
        )}
      </UseSignal>
    );
  }

  private _commands: CommandRegistry;
}
