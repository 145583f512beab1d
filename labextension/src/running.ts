/**
 * The "UCloud Shells" section of the Running panel: open shells on the server, with open
 * and shut down.
 */
import { IRunningSessions } from '@jupyterlab/running';
import { CommandRegistry } from '@lumino/commands';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { IShellModel, UCloudAPI } from './api';
import { CommandIDs } from './commands';
import { ucloudTerminalIcon } from './icons';
import { jobTitle, jobTooltip, shellOrdinal, shellTitle } from './model';

export class UCloudShellsManager implements IRunningSessions.IManager {
  constructor(
    private readonly _api: UCloudAPI,
    private readonly _commands: CommandRegistry
  ) {
    this._poll = new Poll({
      factory: () => this._refresh(),
      frequency: { interval: 10000, backoff: true, max: 120000 },
      name: 'jupyter-ucloud:shells',
      standby: 'when-hidden'
    });
  }

  readonly name = 'UCloud Shells';
  readonly shutdownLabel = 'Shut Down Shell';
  readonly shutdownAllLabel = 'Shut Down All';
  readonly shutdownAllConfirmationText =
    'Are you sure you want to close all UCloud shells? The jobs keep running.';

  get runningChanged(): ISignal<this, IShellModel[]> {
    return this._runningChanged;
  }

  running(): IRunningSessions.IRunningItem[] {
    return this._shells.map(shell => ({
      className: 'jp-UCloud-runningShell',
      context: shell.name,
      icon: () => ucloudTerminalIcon,
      label: () =>
        shellTitle(
          this._names.get(shell.jobId)?.title ?? `Job ${shell.jobId}`,
          shell.rank,
          shellOrdinal(this._shells, shell.name)
        ),
      labelTitle: () =>
        `${this._names.get(shell.jobId)?.tooltip ?? `Job ${shell.jobId}`}, rank ${shell.rank}\nShell ${shell.name}\nstate: ${shell.state}${shell.message ? ` (${shell.message})` : ''}\nbrowser connections: ${shell.clients}`,
      detail: () => shell.state,
      open: () =>
        void this._commands.execute(CommandIDs.openTerminal, {
          jobId: shell.jobId,
          rank: shell.rank,
          name: shell.name
        }),
      shutdown: () => void this._shutdown([shell.name])
    }));
  }

  shutdownAll(): void {
    void this._shutdown(this._shells.map(shell => shell.name));
  }

  refreshRunning(): void {
    void this._poll.refresh();
  }

  dispose(): void {
    this._poll.dispose();
  }

  private async _shutdown(names: string[]): Promise<void> {
    await Promise.all(names.map(name => this._api.deleteShell(name)));
    await this._poll.refresh();
  }

  private async _refresh(): Promise<void> {
    const shells = await this._api.listShells();
    let named = false;
    for (const jobId of new Set(shells.map(s => s.jobId))) {
      if (!this._names.has(jobId)) {
        const job = await this._api.retrieveJob(jobId).catch(() => null);
        if (job) {
          this._names.set(jobId, {
            title: jobTitle(job),
            tooltip: jobTooltip(job)
          });
          named = true;
        }
      }
    }
    const key = (list: IShellModel[]) =>
      list.map(s => `${s.name}:${s.state}:${s.clients}`).join(',');
    if (named || key(shells) !== key(this._shells)) {
      this._shells = shells;
      this._runningChanged.emit(shells);
    }
  }

  private _poll: Poll;
  private _shells: IShellModel[] = [];
  /** Job titles by id (model.ts naming rule), read once per job. */
  private _names = new Map<string, { title: string; tooltip: string }>();
  private _runningChanged = new Signal<this, IShellModel[]>(this);
}
