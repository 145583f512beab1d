/**
 * The UCloud sidebar: connection, products with what they support, jobs with actions.
 */
import { CommandRegistry } from '@lumino/commands';
import {
  ReactWidget,
  refreshIcon,
  ToolbarButtonComponent,
  UseSignal
} from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { CommandIDs } from './commands';
import { JobCard } from './jobcard';
import { JobFilter, UCloudPanelModel } from './panelmodel';
import { ProductCard } from './productcard';

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
        <button
          className="jp-Button jp-mod-styled jp-mod-accept jp-UCloud-start-job"
          disabled={!canStart}
          title={
            canStart
              ? 'Start a job'
              : 'Not connected to UCloud, or it lists no products'
          }
          onClick={() => void commands.execute(CommandIDs.startJob)}
        >
          Start job…
        </button>
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
            <JobCard
              key={job.id}
              job={job}
              product={model.productOf(job)}
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
              <ToolbarButtonComponent
                className="jp-UCloud-refresh"
                icon={refreshIcon}
                tooltip="Refresh products and jobs"
                onClick={() => void this._commands.execute(CommandIDs.refresh)}
              />
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
                    <ProductCard
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
