/**
 * The Start dialog: product, application, every parameter the application declares (text,
 * integer, floating point, boolean, enumeration; required or optional, with defaults, titles and
 * descriptions), name, nodes and time. Values are checked before submitting; a refused
 * submission (ours or the server's) reopens the form with what was typed and why.
 */
import { Dialog, showDialog } from '@jupyterlab/apputils';
import { HTMLSelect, ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import {
  IApplication,
  IApplicationParameter,
  IJobSpecification,
  IParameterValue,
  UCloudAPI
} from './api';
import {
  describeMaxNodes,
  describeResources,
  FEATURE_LABEL,
  FEATURES,
  IProductInfo,
  plural,
  referenceKey
} from './model';

/** Parameter types the dialog can set. */
const SETTABLE = new Set([
  'text',
  'integer',
  'floating_point',
  'boolean',
  'enumeration'
]);

const CORRECT_FIELDS = 'Please correct the fields marked below.';

/** What the form holds (all as typed; parameters by name). */
export interface IStartJobValues {
  product: string;
  application: string;
  name: string;
  nodes: string;
  hours: string;
  minutes: string;
  parameters: Record<string, string>;
}

/** Why each field is wrong (keys: `nodes`, `time`, `param:<name>`, `form`). */
export type FieldErrors = Record<string, string>;

export function appKey(app: IApplication): string {
  return `${app.name}@${app.version}`;
}

function parametersOf(app: IApplication | undefined): IApplicationParameter[] {
  return (app?.parameters ?? []).filter(p => p && typeof p.name === 'string');
}

/** A parameter's default as the form shows it ("" for none). */
export function defaultText(parameter: IApplicationParameter): string {
  let value: unknown = parameter.defaultValue;
  if (value && typeof value === 'object' && 'value' in value) {
    value = value.value;
  }
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    default:
      return '';
  }
}

function hasDefault(parameter: IApplicationParameter): boolean {
  return defaultText(parameter) !== '';
}

function parameterTitle(parameter: IApplicationParameter): string {
  return parameter.title?.trim() || parameter.name;
}

/** The form's values for `app`: what was typed for it before, else the defaults. */
function withParameterDefaults(
  values: IStartJobValues,
  app: IApplication | undefined
): IStartJobValues {
  const parameters: Record<string, string> = {};
  for (const parameter of parametersOf(app)) {
    parameters[parameter.name] =
      values.parameters[parameter.name] ?? defaultText(parameter);
  }
  return { ...values, parameters };
}

const INTEGER = /^[+-]?\d+$/;

/** Check everything that can be checked here; the server checks the rest. */
export function validate(
  values: IStartJobValues,
  products: IProductInfo[],
  apps: IApplication[]
): FieldErrors {
  const errors: FieldErrors = {};
  const product = products.find(
    p => referenceKey(p.reference) === values.product
  );
  const app = apps.find(a => appKey(a) === values.application);
  if (!product) {
    errors.product = 'Choose a product.';
  }
  if (!app) {
    errors.application = 'Choose an application.';
  }
  const nodes = values.nodes.trim();
  if (!INTEGER.test(nodes) || Number(nodes) < 1) {
    errors.nodes = 'A job needs at least 1 node (a whole number).';
  } else if (product?.maxNodes && Number(nodes) > product.maxNodes) {
    errors.nodes = `${product.reference.id} allows at most ${plural(product.maxNodes, 'node')}.`;
  }
  const hours = values.hours.trim() || '0';
  const minutes = values.minutes.trim() || '0';
  if (!INTEGER.test(hours) || !INTEGER.test(minutes)) {
    errors.time = 'Hours and minutes are whole numbers.';
  } else if (Number(hours) < 0 || Number(minutes) < 0) {
    errors.time = 'Hours and minutes cannot be negative.';
  } else if (Number(hours) * 60 + Number(minutes) <= 0) {
    errors.time = 'Give the job some time: at least 1 minute.';
  }
  for (const parameter of parametersOf(app)) {
    const key = `param:${parameter.name}`;
    const text = (values.parameters[parameter.name] ?? '').trim();
    const required = !parameter.optional && !hasDefault(parameter);
    if (!SETTABLE.has(parameter.type)) {
      if (required) {
        errors[key] =
          `This dialog cannot set a ${parameter.type} parameter, which this application requires; start it from UCloud or Python instead.`;
      }
      continue;
    }
    if (text === '') {
      if (required) {
        errors[key] = `${parameterTitle(parameter)} is required.`;
      }
      continue;
    }
    if (parameter.type === 'integer' && !INTEGER.test(text)) {
      errors[key] = 'A whole number, e.g. 42.';
    } else if (
      parameter.type === 'floating_point' &&
      !Number.isFinite(Number(text))
    ) {
      errors[key] = 'A number, e.g. 0.5.';
    } else if (
      parameter.type === 'enumeration' &&
      !(parameter.options ?? []).some(o => o.value === text) &&
      text !== defaultText(parameter)
    ) {
      errors[key] = 'Choose one of the options.';
    }
  }
  return errors;
}

/** The parameters as UCloud takes them; empty optional ones are left out (defaults apply). */
function parameterValues(
  values: IStartJobValues,
  app: IApplication | undefined
): Record<string, IParameterValue> {
  const result: Record<string, IParameterValue> = {};
  for (const parameter of parametersOf(app)) {
    const text = (values.parameters[parameter.name] ?? '').trim();
    if (text === '' || !SETTABLE.has(parameter.type)) {
      continue;
    }
    switch (parameter.type) {
      case 'integer':
        result[parameter.name] = { type: 'integer', value: Number(text) };
        break;
      case 'floating_point':
        result[parameter.name] = {
          type: 'floating_point',
          value: Number(text)
        };
        break;
      case 'boolean':
        result[parameter.name] = { type: 'boolean', value: text === 'true' };
        break;
      default:
        // text, and enumerations: UCloud takes the chosen option's value as text.
        result[parameter.name] = {
          type: 'text',
          value: values.parameters[parameter.name]
        };
    }
  }
  return result;
}

export function toSpecification(
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
    replicas: number(values.nodes),
    timeAllocation: {
      hours: number(values.hours),
      minutes: number(values.minutes),
      seconds: 0
    },
    parameters: parameterValues(values, app)
  };
  if (values.name.trim()) {
    spec.name = values.name.trim();
  }
  return spec;
}

function FieldError(props: { error?: string; id: string }) {
  return props.error ? (
    <div className="jp-UCloud-field-error" id={props.id} role="alert">
      {props.error}
    </div>
  ) : null;
}

class StartJobForm
  extends ReactWidget
  implements Dialog.IBodyWidget<IStartJobValues>
{
  constructor(
    private readonly _products: IProductInfo[],
    private readonly _apps: IApplication[],
    values: IStartJobValues,
    private _error: string | null,
    errors: FieldErrors
  ) {
    super();
    this._values = { ...values, parameters: { ...values.parameters } };
    this._errors = errors;
    this.addClass('jp-UCloud-startJob');
  }

  getValue(): IStartJobValues {
    return { ...this._values, parameters: { ...this._values.parameters } };
  }

  private _set(change: Partial<IStartJobValues>, touched: string[]): void {
    this._values = { ...this._values, ...change };
    if (change.application !== undefined) {
      const app = this._apps.find(a => appKey(a) === change.application);
      this._values = withParameterDefaults(this._values, app);
    }
    // Fields the user changed, and those already reported, say at once what is wrong.
    for (const key of touched) {
      this._touched.add(key);
    }
    const now = validate(this._values, this._products, this._apps);
    const shown: FieldErrors = {};
    for (const key of new Set([
      ...this._touched,
      ...Object.keys(this._errors)
    ])) {
      if (now[key]) {
        shown[key] = now[key];
      }
    }
    this._errors = shown;
    if (this._error === CORRECT_FIELDS && !Object.keys(shown).length) {
      this._error = null;
    }
    this.update();
  }

  private _setParameter(name: string, text: string): void {
    this._set({ parameters: { ...this._values.parameters, [name]: text } }, [
      `param:${name}`
    ]);
  }

  private _renderParameter(parameter: IApplicationParameter): JSX.Element {
    const v = this._values.parameters[parameter.name] ?? '';
    const key = `param:${parameter.name}`;
    const error = this._errors[key];
    const id = `jp-UCloud-param-${parameter.name}`;
    const required = !parameter.optional && !hasDefault(parameter);
    const common = {
      name: `param-${parameter.name}`,
      'aria-invalid': error ? true : undefined,
      'aria-describedby': error ? `${id}-error` : undefined
    };
    const unset = required ? 'Choose…' : 'Not set';
    let input: JSX.Element;
    switch (parameter.type) {
      case 'boolean':
        input = (
          <HTMLSelect
            {...common}
            value={v}
            onChange={e => this._setParameter(parameter.name, e.target.value)}
            options={[
              ...(hasDefault(parameter) ? [] : [{ value: '', label: unset }]),
              { value: 'true', label: 'Yes' },
              { value: 'false', label: 'No' }
            ]}
          />
        );
        break;
      case 'enumeration': {
        const options = parameter.options ?? [];
        const extra =
          hasDefault(parameter) &&
          !options.some(o => o.value === defaultText(parameter))
            ? [{ value: defaultText(parameter), label: defaultText(parameter) }]
            : [];
        input = (
          <HTMLSelect
            {...common}
            value={v}
            onChange={e => this._setParameter(parameter.name, e.target.value)}
            options={[
              ...(hasDefault(parameter) ? [] : [{ value: '', label: unset }]),
              ...extra,
              ...options.map(o => ({ value: o.value, label: o.name }))
            ]}
          />
        );
        break;
      }
      case 'integer':
      case 'floating_point':
        input = (
          <input
            {...common}
            className="jp-mod-styled"
            type="number"
            step={parameter.type === 'integer' ? 1 : 'any'}
            value={v}
            placeholder={required ? 'required' : 'optional'}
            onChange={e => this._setParameter(parameter.name, e.target.value)}
          />
        );
        break;
      case 'text':
        input = (
          <input
            {...common}
            className="jp-mod-styled"
            type="text"
            value={v}
            placeholder={required ? 'required' : 'optional'}
            onChange={e => this._setParameter(parameter.name, e.target.value)}
          />
        );
        break;
      default:
        input = (
          <div className="jp-UCloud-form-note">
            {`A ${parameter.type} parameter, which this dialog cannot set${required ? '' : '; it is left out'}.`}
          </div>
        );
    }
    return (
      <div
        className="jp-UCloud-field"
        key={parameter.name}
        data-parameter={parameter.name}
        data-type={parameter.type}
      >
        <label htmlFor={id}>
          {parameterTitle(parameter)}
          {required ? (
            <span className="jp-UCloud-required" title="required">
              {' '}
              *
            </span>
          ) : (
            <span className="jp-UCloud-optional"> (optional)</span>
          )}
        </label>
        {React.cloneElement(input, { id })}
        {parameter.description && (
          <div className="jp-UCloud-form-help">{parameter.description}</div>
        )}
        <FieldError error={error} id={`${id}-error`} />
      </div>
    );
  }

  protected render(): React.ReactElement {
    const v = this._values;
    const product = this._products.find(
      p => referenceKey(p.reference) === v.product
    );
    const app = this._apps.find(a => appKey(a) === v.application);
    const errors = this._errors;
    const parameters = parametersOf(app);
    const nodesHint = [
      'One rank per node',
      product?.maxNodes
        ? `${product.reference.id} allows ${describeMaxNodes(product)}`
        : ''
    ]
      .filter(Boolean)
      .join('; ');
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
        <div className="jp-UCloud-field">
          <label htmlFor="jp-UCloud-product">Product</label>
          <HTMLSelect
            id="jp-UCloud-product"
            name="product"
            value={v.product}
            onChange={e => this._set({ product: e.target.value }, ['product'])}
            options={this._products.map(p => ({
              value: referenceKey(p.reference),
              label: `${p.reference.id} (${p.reference.provider})${p.features.has('terminal') ? '' : ' - no terminal'}`
            }))}
          />
          {product && (
            <div className="jp-UCloud-form-help" data-field="product-summary">
              {[
                describeResources(product.product),
                describeMaxNodes(product),
                ...FEATURES.filter(f => product.features.has(f)).map(
                  f => FEATURE_LABEL[f]
                )
              ]
                .filter(Boolean)
                .join(' · ')}
            </div>
          )}
          {product && !product.features.has('terminal') && (
            <div className="jp-UCloud-form-warning" role="status">
              {`${product.reference.id} has no terminal support: you will not be able to open a terminal on this job.`}
            </div>
          )}
        </div>
        <div className="jp-UCloud-field">
          <label htmlFor="jp-UCloud-application">Application</label>
          <HTMLSelect
            id="jp-UCloud-application"
            name="application"
            value={v.application}
            onChange={e =>
              this._set({ application: e.target.value }, ['application'])
            }
            options={this._apps.map(a => ({
              value: appKey(a),
              label: `${a.title || a.name} ${a.version}`
            }))}
          />
          {app?.description && (
            <div className="jp-UCloud-form-help">{app.description}</div>
          )}
        </div>
        {parameters.length > 0 && (
          <fieldset className="jp-UCloud-parameters">
            <legend>Parameters</legend>
            {parameters.map(p => this._renderParameter(p))}
          </fieldset>
        )}
        <div className="jp-UCloud-field">
          <label htmlFor="jp-UCloud-name">
            Name<span className="jp-UCloud-optional"> (optional)</span>
          </label>
          <input
            id="jp-UCloud-name"
            name="name"
            className="jp-mod-styled"
            type="text"
            placeholder="optional"
            value={v.name}
            onChange={e => this._set({ name: e.target.value }, [])}
          />
        </div>
        <div className="jp-UCloud-field">
          <label htmlFor="jp-UCloud-nodes">Nodes</label>
          <input
            id="jp-UCloud-nodes"
            name="replicas"
            className="jp-mod-styled"
            type="number"
            step={1}
            min={1}
            max={product?.maxNodes ?? undefined}
            value={v.nodes}
            aria-invalid={errors.nodes ? true : undefined}
            onChange={e => this._set({ nodes: e.target.value }, ['nodes'])}
          />
          <div className="jp-UCloud-form-help">{nodesHint}</div>
          <FieldError error={errors.nodes} id="jp-UCloud-nodes-error" />
        </div>
        <fieldset className="jp-UCloud-time">
          <legend>Time allocation</legend>
          <label>
            <input
              name="hours"
              className="jp-mod-styled"
              type="number"
              step={1}
              min={0}
              value={v.hours}
              onChange={e => this._set({ hours: e.target.value }, ['time'])}
            />
            hours
          </label>
          <label>
            <input
              name="minutes"
              className="jp-mod-styled"
              type="number"
              step={1}
              min={0}
              value={v.minutes}
              onChange={e => this._set({ minutes: e.target.value }, ['time'])}
            />
            minutes
          </label>
          <FieldError error={errors.time} id="jp-UCloud-time-error" />
        </fieldset>
      </form>
    );
  }

  private _values: IStartJobValues;
  private _errors: FieldErrors;
  private _touched = new Set<string>();
}

/**
 * Ask for a job and submit it. A submission refused by the checks here or by the server
 * reopens the form with what was typed and why. Resolves to the new job id, or `null`.
 */
export async function startJobDialog(
  api: UCloudAPI,
  products: IProductInfo[]
): Promise<string | null> {
  const apps = await api.applications();
  const preferred =
    products.find(p => p.features.has('terminal')) ?? products[0];
  let values = withParameterDefaults(
    {
      product: preferred ? referenceKey(preferred.reference) : '',
      application: apps[0] ? appKey(apps[0]) : '',
      name: '',
      nodes: '1',
      hours: '1',
      minutes: '0',
      parameters: {}
    },
    apps[0]
  );
  let error: string | null = null;
  let errors: FieldErrors = {};
  for (;;) {
    const result = await showDialog({
      title: 'Start a UCloud job',
      body: new StartJobForm(products, apps, values, error, errors),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Start' })],
      focusNodeSelector: 'select'
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    values = result.value;
    errors = validate(values, products, apps);
    if (Object.keys(errors).length) {
      error = CORRECT_FIELDS;
      continue;
    }
    try {
      return await api.createJob(toSpecification(values, products, apps));
    } catch (reason) {
      error = reason instanceof Error ? reason.message : String(reason);
      errors = {};
    }
  }
}
