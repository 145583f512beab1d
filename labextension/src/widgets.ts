/**
 * Front end of the notebook widgets (`jupyter_ucloud.widgets`), Jupyter widget module
 * `jupyter-ucloud`:
 *
 * - `OpenTerminalButtonModel`/`View` (`job_id`, `rank`, `label`): a button that opens a
 *   JupyterLab terminal tab on the job's rank through `ucloud:open-terminal`.
 * - `InlineTerminalModel`/`View` (`shell_name`, `rows`): the stock terminal widget in the
 *   cell output, attached to `/ucloud/shells/<name>/websocket` by `UCloudShellConnection`.
 *
 * Views report back with custom messages `{event: "opened", name}` and
 * `{event: "error", message}`.
 */
import {
  DOMWidgetModel,
  DOMWidgetView,
  IJupyterWidgetRegistry
} from '@jupyter-widgets/base';
import { ITerminal, Terminal } from '@jupyterlab/terminal';
import { CommandRegistry } from '@lumino/commands';
import { MessageLoop } from '@lumino/messaging';
import { Panel, PanelLayout, Widget } from '@lumino/widgets';

import { UCloudAPI } from './api';
import { CommandIDs } from './commands';
import { UCloudShellConnection } from './connection';
import { terminalDisplay } from './display';

export const WIDGET_MODULE = 'jupyter-ucloud';
export const WIDGET_MODULE_VERSION = '0.1.0';

/** Row height used to size the inline terminal (px); xterm fits the rest. */
const ROW_PX = 17;

interface IWidgetContext {
  api: UCloudAPI;
  commands: CommandRegistry;
  terminalOptions: () => Partial<ITerminal.IOptions>;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Register the widget module with the widget manager. */
export function registerWidgets(
  registry: IJupyterWidgetRegistry,
  context: IWidgetContext
): void {
  class OpenTerminalButtonModel extends DOMWidgetModel {
    override defaults() {
      return {
        ...super.defaults(),
        _model_name: 'OpenTerminalButtonModel',
        _model_module: WIDGET_MODULE,
        _model_module_version: WIDGET_MODULE_VERSION,
        _view_name: 'OpenTerminalButtonView',
        _view_module: WIDGET_MODULE,
        _view_module_version: WIDGET_MODULE_VERSION,
        job_id: '',
        rank: 0,
        label: 'Open terminal',
        disabled: false
      };
    }
  }

  class OpenTerminalButtonView extends DOMWidgetView {
    override render(): void {
      this.el.classList.add('jp-UCloud-openTerminalButton');
      const button = document.createElement('button');
      button.className = 'jupyter-button widget-button jp-UCloud-widget-button';
      this._button = button;
      button.addEventListener('click', () => void this._open());
      this.el.appendChild(button);
      this._update();
      this.listenTo(this.model, 'change', () => this._update());
    }

    /** ipywidgets' own version reads a `description` this widget does not have. */
    override updateTooltip(): void {
      this._update();
    }

    private _update(): void {
      if (!this._button) {
        return;
      }
      const jobId = String(this.model.get('job_id') ?? '');
      const rank = Number(this.model.get('rank') ?? 0);
      this._button.textContent = String(
        this.model.get('label') || 'Open terminal'
      );
      const tooltip = String(this.model.get('tooltip') ?? '');
      this._button.disabled = !jobId || this.model.get('disabled') === true;
      this._button.title =
        tooltip ||
        (jobId
          ? `Open a terminal tab on job ${jobId}, rank ${rank}`
          : 'No job chosen');
    }

    private async _open(): Promise<void> {
      const jobId = String(this.model.get('job_id') ?? '');
      const rank = Number(this.model.get('rank') ?? 0);
      try {
        const widget: unknown = await context.commands.execute(
          CommandIDs.openTerminal,
          {
            jobId,
            rank
          }
        );
        const name =
          widget instanceof Widget
            ? (widget.node.dataset.ucloudShell ?? '')
            : '';
        this.send({ event: 'opened', name });
      } catch (error) {
        this.send({ event: 'error', message: message(error) });
      }
    }

    private _button: HTMLButtonElement | null = null;
  }

  class InlineTerminalModel extends DOMWidgetModel {
    override defaults() {
      return {
        ...super.defaults(),
        _model_name: 'InlineTerminalModel',
        _model_module: WIDGET_MODULE,
        _model_module_version: WIDGET_MODULE_VERSION,
        _view_name: 'InlineTerminalView',
        _view_module: WIDGET_MODULE,
        _view_module_version: WIDGET_MODULE_VERSION,
        shell_name: '',
        rows: 16
      };
    }
  }

  class InlineTerminalView extends DOMWidgetView {
    override render(): void {
      this.el.classList.add('jp-UCloud-inlineTerminal');
      // The terminal is a Lumino child of the view's own widget (not attached by hand), so
      // clearing or re-running the cell detaches and disposes it in order, whatever happens
      // to the DOM first.
      const layout = new PanelLayout();
      this.luminoWidget.layout = layout;
      this._host.addClass('jp-UCloud-inlineTerminal-host');
      layout.addWidget(this._host);
      this._resize();
      this.listenTo(this.model, 'change:rows', () => this._resize());
      this.listenTo(this.model, 'change:shell_name', () => void this._attach());
      void this.displayed.then(() => this._attach());
      this._onWindowResize = () => this._fit();
      window.addEventListener('resize', this._onWindowResize);
    }

    override remove(): void {
      if (this._onWindowResize) {
        window.removeEventListener('resize', this._onWindowResize);
        this._onWindowResize = null;
      }
      this._detach();
      super.remove();
    }

    private _resize(): void {
      const rows = Math.max(2, Number(this.model.get('rows') ?? 16));
      this._host.node.style.height = `${rows * ROW_PX + 8}px`;
      this._fit();
    }

    private _fit(): void {
      if (this._terminal?.isAttached) {
        MessageLoop.sendMessage(
          this._terminal,
          Widget.ResizeMessage.UnknownSize
        );
      }
    }

    /** Drop the terminal and its connection; the shell lives on (the kernel closes it). */
    private _detach(): void {
      const terminal = this._terminal;
      this._terminal = null;
      if (terminal) {
        const connection = terminal.session;
        if (!terminal.isDisposed) {
          terminal.dispose();
        }
        connection.dispose();
      }
    }

    private _note(text: string, className: string): void {
      const note = document.createElement('div');
      note.className = className;
      note.textContent = text;
      this._host.node.appendChild(note);
    }

    private async _attach(): Promise<void> {
      this._detach();
      this._host.node.textContent = '';
      const name = String(this.model.get('shell_name') ?? '');
      delete this.el.dataset.ucloudShell;
      if (!name) {
        this._note('No shell to show.', 'jp-UCloud-inlineTerminal-note');
        return;
      }
      let shell;
      try {
        shell = await context.api.getShell(name);
      } catch (error) {
        this._fail(`Cannot reach the shell ${name}: ${message(error)}`);
        return;
      }
      if (!shell) {
        this._fail(`The shell ${name} does not exist (any more).`);
        return;
      }
      if (this._host.isDisposed || name !== this.model.get('shell_name')) {
        return; // the view went away, or another shell was chosen meanwhile
      }
      const connection = new UCloudShellConnection({
        api: context.api,
        name,
        jobId: shell.jobId,
        rank: shell.rank
      });
      const terminal = new Terminal(connection, {
        ...context.terminalOptions(),
        closeOnExit: false,
        shutdownOnClose: false
      });
      terminal.addClass('jp-UCloud-inlineTerminal-xterm');
      this._terminal = terminal;
      this.el.dataset.ucloudShell = name;
      this._host.addWidget(terminal);
      await terminal.ready;
      connection.setDisplay(terminalDisplay(terminal));
      this._fit();
    }

    private _fail(text: string): void {
      this._note(text, 'jp-UCloud-error');
      this.send({ event: 'error', message: text });
    }

    private _host = new Panel();
    private _terminal: Terminal | null = null;
    private _onWindowResize: (() => void) | null = null;
  }

  registry.registerWidget({
    name: WIDGET_MODULE,
    version: WIDGET_MODULE_VERSION,
    exports: {
      OpenTerminalButtonModel,
      OpenTerminalButtonView,
      InlineTerminalModel,
      InlineTerminalView
    }
  });
}
