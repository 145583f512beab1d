/**
 * Dialogs: start a job (validation errors shown as the server words them) and confirm
 * termination.
 */
import { Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import { IApplication, IJob, IJobSpecification, UCloudAPI } from './api';
import {
  describeResources,
  IProductInfo,
  jobTitle,
  referenceKey
} from './model';

/** What the start-job form holds. */
interface IStartJobValues {
  product: string;
  application: string;
  name: string;
  replicas: string;
  hours: string;
  minutes: string;
}

function appKey(app: IApplication): string {
  return `${app.name}@${app.version}`;
}

class StartJobForm
  extends ReactWidget
  implements Dialog.IBodyWidget<IStartJobValues>
{
  constructor(
    private readonly _products: IProductInfo[],
    private readonly _apps: IApplication[],
    values: IStartJobValues,
    private readonly _error: string | null
  ) {
    super();
    this._values = { ...values };
    this.addClass('jp-UCloud-startJob');
  }

  getValue(): IStartJobValues {
    return { ...this._values };
  }

  protected render(): React.ReactElement {
    const field =
      (key: keyof IStartJobValues) =>
      (event: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => {
        this._values[key] = event.target.value;
      };
    const v = this._values;
    return (
      <form
        className="jp-UCloud-form"
        onSubmit={event => event.preventDefault()}
      >
        {this._error && (
          <div className="jp-UCloud-error jp-UCloud-form-error" role="alert">
            {this._error}
          </div>
        )}
        <label>
          Product
          <select
            name="product"
            className="jp-mod-styled"
            defaultValue={v.product}
            onChange={field('product')}
          >
            {this._products.map(p => (
              <option
                key={referenceKey(p.reference)}
                value={referenceKey(p.reference)}
              >
                {p.reference.id} ({p.reference.provider},{' '}
                {describeResources(p.product)})
                {p.features.has('terminal') ? '' : ' - no terminal'}
              </option>
            ))}
          </select>
        </label>
        <label>
          Application
          <select
            name="application"
            className="jp-mod-styled"
            defaultValue={v.application}
            onChange={field('application')}
          >
            {this._apps.map(app => (
              <option
                key={appKey(app)}
                value={appKey(app)}
                title={app.description ?? ''}
              >
                {app.title || app.name} {app.version}
              </option>
            ))}
          </select>
        </label>
        <label>
          Name
          <input
            name="name"
            className="jp-mod-styled"
            type="text"
            placeholder="optional"
            defaultValue={v.name}
            onChange={field('name')}
          />
        </label>
        <label>
          Replicas (ranks)
          <input
            name="replicas"
            className="jp-mod-styled"
            type="number"
            step={1}
            defaultValue={v.replicas}
            onChange={field('replicas')}
          />
        </label>
        <fieldset className="jp-UCloud-time">
          <legend>Time allocation</legend>
          <label>
            <input
              name="hours"
              className="jp-mod-styled"
              type="number"
              step={1}
              defaultValue={v.hours}
              onChange={field('hours')}
            />
            hours
          </label>
          <label>
            <input
              name="minutes"
              className="jp-mod-styled"
              type="number"
              step={1}
              defaultValue={v.minutes}
              onChange={field('minutes')}
            />
            minutes
          </label>
        </fieldset>
      </form>
    );
  }

  private _values: IStartJobValues;
}

function toSpecification(
  values: IStartJobValues,
  products: IProductInfo[],
  apps: IApplication[]
): IJobSpecification {
  const product = products.find(
    p => referenceKey(p.reference) === values.product
  );
  const app = apps.find(a => appKey(a) === values.application);
  const number = (text: string) => (text.trim() === '' ? 0 : Number(text));
  const spec: IJobSpecification = {
    product: product?.reference ?? { id: '', category: '', provider: '' },
    application: app
      ? { name: app.name, version: app.version }
      : { name: '', version: '' },
    replicas: number(values.replicas),
    timeAllocation: {
      hours: number(values.hours),
      minutes: number(values.minutes),
      seconds: 0
    }
  };
  if (values.name.trim()) {
    spec.name = values.name.trim();
  }
  return spec;
}

/**
 * Ask for a job and submit it. A rejected submission reopens the form with what was typed
 * and the server's message. Resolves to the new job id, or `null` when cancelled.
 */
export async function startJobDialog(
  api: UCloudAPI,
  products: IProductInfo[]
): Promise<string | null> {
  const apps = await api.applications();
  const preferred =
    products.find(p => p.features.has('terminal')) ?? products[0];
  let values: IStartJobValues = {
    product: preferred ? referenceKey(preferred.reference) : '',
    application: apps[0] ? appKey(apps[0]) : '',
    name: '',
    replicas: '1',
    hours: '1',
    minutes: '0'
  };
  let error: string | null = null;
  for (;;) {
    const result = await showDialog({
      title: 'Start a UCloud job',
      body: new StartJobForm(products, apps, values, error),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Start' })],
      focusNodeSelector: 'select'
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    values = result.value;
    try {
      return await api.createJob(toSpecification(values, products, apps));
    } catch (reason) {
      error = reason instanceof Error ? reason.message : String(reason);
    }
  }
}

/** Ask before terminating; resolves to whether the user confirmed. */
export async function confirmTerminate(
  job: IJob | null,
  jobId: string
): Promise<boolean> {
  const label = job ? `${jobTitle(job)} (${jobId})` : `job ${jobId}`;
  const result = await showDialog({
    title: 'Terminate job?',
    body: `Terminate ${label}? Its processes on every rank are stopped and its shells end.`,
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
    const ranks = withRank ? Math.max(1, job.specification.replicas ?? 1) : 1;
    for (let rank = 0; rank < ranks; rank++) {
      const label = withRank
        ? `${jobTitle(job)} (${job.id}) · rank ${rank}`
        : `${jobTitle(job)} (${job.id}) · ${job.status.state}`;
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
