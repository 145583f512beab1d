/**
 * Job terminal tabs: the stock `@jupyterlab/terminal` widget on a `UCloudShellConnection`,
 * in a `MainAreaWidget` with a connection-state indicator and a reconnect button.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { ITerminal, Terminal } from '@jupyterlab/terminal';
import { ITranslator } from '@jupyterlab/translation';
import { refreshIcon, ToolbarButton } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { IShellModel, UCloudAPI } from './api';
import { TRACKER_NAMESPACE } from './commands';
import { terminalDisplay } from './display';
import { ucloudTerminalIcon } from './icons';
import { jobTitle, jobTooltip, shellOrdinal, shellTitle } from './model';
import {
  IPhaseChange,
  IProviderStatus,
  ShellPhase,
  UCloudShellConnection
} from './connection';

export const TERMINAL_CLASS = 'jp-UCloudTerminal';
const STATUS_CLASS = 'jp-UCloudTerminal-status';

export type UCloudTerminalWidget = MainAreaWidget<Terminal> & {
  readonly connection: UCloudShellConnection;
};

const PHASE_LABEL: Record<ShellPhase, string> = {
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
  lost: 'Connection lost',
  ended: 'Ended',
  gone: 'Shell gone'
};

/** The toolbar item that shows where the connection stands. */
class ConnectionIndicator extends Widget {
  constructor(connection: UCloudShellConnection) {
    super({ node: document.createElement('span') });
    this.addClass(STATUS_CLASS);
    this._connection = connection;
    this._show();
    connection.phaseChanged.connect(() => this._show(), this);
    connection.providerStatusChanged.connect(() => this._show(), this);
  }

  private _show(): void {
    const change: IPhaseChange = {
      phase: this._connection.phase,
      detail: this._connection.phaseDetail
    };
    const provider: IProviderStatus = this._connection.providerStatus;
    if (change.phase === 'open' && !provider.responsive) {
      this.node.dataset.phase = 'unresponsive';
      this.node.textContent = 'Provider not responding';
      this.node.title = provider.message;
      return;
    }
    this.node.dataset.phase = change.phase;
    this.node.textContent = PHASE_LABEL[change.phase];
    this.node.title = change.detail || PHASE_LABEL[change.phase];
  }

  private _connection: UCloudShellConnection;
}

/** Opens job terminal tabs and keeps them in the `ucloud-terminal` tracker. */
export class UCloudTerminals {
  constructor(options: UCloudTerminals.IOptions) {
    this._app = options.app;
    this._api = options.api;
    this._translator = options.translator;
    this.tracker = new WidgetTracker<UCloudTerminalWidget>({
      namespace: TRACKER_NAMESPACE
    });
  }

  readonly tracker: WidgetTracker<UCloudTerminalWidget>;

  /** The user's terminal settings (`@jupyterlab/terminal-extension:plugin`). */
  get options(): Partial<ITerminal.IOptions> {
    return this._options;
  }

  set options(options: Partial<ITerminal.IOptions>) {
    this._options = { ...options };
    this.tracker.forEach(widget => this._applyOptions(widget.content));
  }

  /** Re-apply an `inherit` theme after the JupyterLab theme changed. */
  refreshTheme(): void {
    this.tracker.forEach(widget => {
      if (widget.content.getOption('theme') === 'inherit') {
        widget.content.setOption('theme', 'inherit');
      }
    });
  }

  /** The open tab attached to this shell, if any. */
  find(name: string): UCloudTerminalWidget | undefined {
    return this.tracker.find(widget => widget.connection.name === name);
  }

  /**
   * Open a tab on a shell of `jobId`/`rank`: the named shell when `name` is given (a restored
   * tab, or a notebook button), a new shell otherwise.
   */
  async open(args: {
    jobId: string;
    rank: number;
    name?: string;
    activate?: boolean;
  }): Promise<UCloudTerminalWidget> {
    const { jobId, rank } = args;
    if (args.name) {
      const existing = this.find(args.name);
      if (existing) {
        if (args.activate !== false) {
          this._app.shell.activateById(existing.id);
        }
        return existing;
      }
    }
    const names = await this._jobNames(jobId);
    const jobName = names.tooltip;
    let connection: UCloudShellConnection;
    if (args.name) {
      const shell = await this._api.getShell(args.name).catch(() => undefined);
      connection = new UCloudShellConnection({
        api: this._api,
        name: args.name,
        jobId,
        rank,
        jobName,
        gone:
          shell === null
            ? `The shell ${args.name} no longer exists (the server was restarted or the shell was closed). Use Reconnect to open a new shell on this job and rank.`
            : undefined
      });
    } else {
      const shell: IShellModel = await this._api.createShell({ jobId, rank });
      connection = new UCloudShellConnection({
        api: this._api,
        name: shell.name,
        jobId,
        rank,
        jobName
      });
    }
    const widget = this._createWidget(connection, names);
    this._app.shell.add(widget, 'main', { type: 'UCloud Terminal' });
    await this.tracker.add(widget);
    if (args.activate !== false) {
      this._app.shell.activateById(widget.id);
    }
    return widget;
  }

  private _createWidget(
    connection: UCloudShellConnection,
    names: { title: string; tooltip: string }
  ): UCloudTerminalWidget {
    const content = new Terminal(
      connection,
      { ...this._options, closeOnExit: false },
      this._translator
    );
    const main = new MainAreaWidget<Terminal>({
      content,
      reveal: content.ready
    });
    const widget = Object.assign(main, { connection });
    void content.ready.then(() =>
      connection.setDisplay(terminalDisplay(content))
    );
    widget.addClass(TERMINAL_CLASS);
    widget.id = `ucloud-terminal-${++UCloudTerminals._counter}`;

    // The tab names the job and the rank (model.ts `shellTitle`), with a counter when the
    // rank has several shells; the terminal widget's own retitling is undone.
    let label = shellTitle(names.title, connection.rank, 1);
    const describe = () => {
      widget.node.dataset.ucloudShell = connection.name;
      widget.node.dataset.jobId = connection.jobId;
      widget.node.dataset.rank = String(connection.rank);
      widget.node.dataset.phase = connection.phase;
      content.title.caption = `${names.tooltip}, rank ${connection.rank}\nShell ${connection.name}\n${connection.phaseDetail || PHASE_LABEL[connection.phase]}`;
    };
    const keepLabel = () => {
      if (content.title.label !== label) {
        content.title.label = label;
      }
    };
    const number = async () => {
      const shells = await this._api.listShells().catch(() => []);
      label = shellTitle(
        names.title,
        connection.rank,
        shellOrdinal(shells, connection.name)
      );
      keepLabel();
    };
    content.title.icon = ucloudTerminalIcon;
    content.title.label = label;
    content.title.changed.connect(keepLabel);
    describe();
    void number();

    const reconnect = new ToolbarButton({
      icon: refreshIcon,
      label: 'Reconnect',
      tooltip: 'Reconnect to this shell (a new shell if it is gone)',
      disabledTooltip: 'The job has ended: there is nothing to reconnect to',
      onClick: () => {
        void connection.reconnect();
      }
    });
    reconnect.addClass('jp-UCloudTerminal-reconnect');
    const showReconnect = () => {
      reconnect.enabled = connection.canReconnect;
    };
    showReconnect();
    widget.toolbar.addItem(
      'ucloud-status',
      new ConnectionIndicator(connection)
    );
    widget.toolbar.addItem('ucloud-reconnect', reconnect);

    connection.phaseChanged.connect(() => {
      describe();
      showReconnect();
    });
    connection.shellReplaced.connect(() => {
      describe();
      void number();
      void this.tracker.save(widget);
    });
    widget.disposed.connect(() => connection.dispose());
    return widget;
  }

  private _applyOptions(terminal: Terminal): void {
    for (const [key, value] of Object.entries(this._options)) {
      const option = key as keyof ITerminal.IOptions;
      if (option === 'closeOnExit' || option === 'initialCommand') {
        continue;
      }
      terminal.setOption(option, value);
    }
  }

  /** The job's title and tooltip by the naming rule (`Job <id>` when it cannot be read). */
  private async _jobNames(
    jobId: string
  ): Promise<{ title: string; tooltip: string }> {
    try {
      const job = await this._api.retrieveJob(jobId);
      return { title: jobTitle(job), tooltip: jobTooltip(job) };
    } catch {
      return { title: `Job ${jobId}`, tooltip: `Job ${jobId}` };
    }
  }

  private static _counter = 0;
  private _app: JupyterFrontEnd;
  private _api: UCloudAPI;
  private _translator: ITranslator | undefined;
  private _options: Partial<ITerminal.IOptions> = {};
}

export namespace UCloudTerminals {
  export interface IOptions {
    app: JupyterFrontEnd;
    api: UCloudAPI;
    translator?: ITranslator;
  }
}
