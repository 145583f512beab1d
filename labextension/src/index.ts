/**
 * jupyter-ucloud: UCloud products, jobs and job terminals in JupyterLab.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  IThemeManager,
  Notification,
  showErrorMessage,
  WidgetTracker
} from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { IRunningSessionManagers } from '@jupyterlab/running';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator } from '@jupyterlab/translation';
import { copyIcon, pasteIcon, refreshIcon } from '@jupyterlab/ui-components';
import { IJupyterWidgetRegistry } from '@jupyter-widgets/base';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { IJob, UCloudAPI } from './api';
import {
  CommandIDs,
  JOB_TRACKER_NAMESPACE,
  PANEL_ID,
  PLUGIN_PREFIX
} from './commands';
import {
  askExtension,
  confirmTerminate,
  pickJobDialog,
  startJobDialog
} from './dialogs';
import { JobFollowHub } from './follow';
import { ucloudIcon, ucloudTerminalIcon } from './icons';
import { createJobPage, JobPageWidget } from './jobpage';
import { JobPageModel } from './jobpagemodel';
import {
  extendBlocker,
  isFinal,
  jobTooltip,
  productOfJob,
  sortJobs,
  terminalBlocker
} from './model';
import { UCloudPanel } from './panel';
import { JobFilter, UCloudPanelModel } from './panelmodel';
import { UCloudShellsManager } from './running';
import { UCloudTerminals, UCloudTerminalWidget } from './terminal';
import { registerWidgets } from './widgets';

const TERMINAL_SETTINGS = '@jupyterlab/terminal-extension:plugin';

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function stringArg(args: ReadonlyPartialJSONObject, key: string): string {
  const value = args[key];
  return typeof value === 'string' || typeof value === 'number'
    ? String(value)
    : '';
}

/** Load the user's terminal settings and keep the UCloud terminals in step with them. */
async function followTerminalSettings(
  registry: ISettingRegistry,
  terminals: UCloudTerminals
): Promise<void> {
  try {
    const settings = await registry.load(TERMINAL_SETTINGS);
    const apply = () => {
      terminals.options = settings.composite;
    };
    apply();
    settings.changed.connect(apply);
  } catch (error) {
    // Local terminals may be disabled; our terminals then use the defaults.
    console.warn(
      `jupyter-ucloud: terminal settings unavailable: ${errorText(error)}`
    );
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: `${PLUGIN_PREFIX}:plugin`,
  description:
    'UCloud panel (connection, products, jobs), job terminal tabs and notebook widget views.',
  autoStart: true,
  optional: [
    ILayoutRestorer,
    ICommandPalette,
    ILauncher,
    IRunningSessionManagers,
    ISettingRegistry,
    IThemeManager,
    ITranslator,
    IJupyterWidgetRegistry
  ],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    running: IRunningSessionManagers | null,
    settingRegistry: ISettingRegistry | null,
    themeManager: IThemeManager | null,
    translator: ITranslator | null,
    widgetRegistry: IJupyterWidgetRegistry | null
  ) => {
    const { commands, shell } = app;
    const api = new UCloudAPI(app.serviceManager.serverSettings);
    const terminals = new UCloudTerminals({
      app,
      api,
      translator: translator ?? undefined
    });
    const tracker = terminals.tracker;
    let runningShells: UCloudShellsManager | null = null;

    // Sidebar.
    let panel: UCloudPanel | null = null;
    // One follow stream per job in this browser tab, shared by the panel and the job pages.
    const hub = new JobFollowHub(api);
    const model = new UCloudPanelModel({
      api,
      hub,
      standby: () => (panel?.isVisible ? 'when-hidden' : true)
    });
    panel = new UCloudPanel({ model, commands });
    panel.id = PANEL_ID;
    panel.title.icon = ucloudIcon;
    panel.title.caption = 'UCloud';
    shell.add(panel, 'left', { rank: 750 });
    restorer?.add(panel, PANEL_ID);
    model.start();

    if (settingRegistry) {
      void followTerminalSettings(settingRegistry, terminals);
      void settingRegistry
        .load(plugin.id)
        .then(settings => {
          const apply = () =>
            model.configure({
              refreshInterval: settings.get('refreshInterval')
                .composite as number,
              defaultJobFilter: settings.get('defaultJobFilter')
                .composite as JobFilter
            });
          apply();
          settings.changed.connect(apply);
        })
        .catch(error =>
          console.warn(`jupyter-ucloud: settings: ${errorText(error)}`)
        );
    }
    themeManager?.themeChanged.connect(() => terminals.refreshTheme());

    const runningJobs = async (): Promise<IJob[]> => {
      const page = await api.browseJobs({ filterState: 'RUNNING' });
      return page.items;
    };

    commands.addCommand(CommandIDs.openTerminal, {
      label: args => {
        const jobId = stringArg(args, 'jobId');
        return jobId
          ? `Open UCloud Terminal on Job ${jobId}, Rank ${stringArg(args, 'rank') || '0'}`
          : 'UCloud Terminal…';
      },
      caption: 'Open a terminal on a rank of a running UCloud job',
      icon: args => (args.isPalette ? undefined : ucloudTerminalIcon),
      execute: async args => {
        let jobId = stringArg(args, 'jobId');
        let rank = Number(args.rank ?? 0);
        const name = stringArg(args, 'name') || undefined;
        try {
          if (!jobId) {
            await model.refresh().catch(() => undefined);
            const jobs = (await runningJobs()).filter(
              job => !terminalBlocker(job, model.productOf(job))
            );
            if (!jobs.length) {
              await showErrorMessage(
                'No running job',
                'No running UCloud job supports terminals. Start a job first (UCloud: Start Job).'
              );
              return null;
            }
            const choice = await pickJobDialog(
              'Open a terminal on',
              jobs,
              true
            );
            if (!choice) {
              return null;
            }
            ({ jobId, rank } = choice);
          }
          const widget = await terminals.open({
            jobId,
            rank,
            name,
            activate: args.activate !== false
          });
          runningShells?.refreshRunning();
          return widget;
        } catch (error) {
          if (!name) {
            await showErrorMessage(
              'Cannot open a UCloud terminal',
              errorText(error)
            );
          }
          throw error;
        }
      }
    });

    commands.addCommand(CommandIDs.startJob, {
      label: 'Start UCloud Job…',
      caption: 'Start a job on a UCloud product',
      icon: args => (args.isPalette ? undefined : ucloudIcon),
      execute: async () => {
        try {
          if (!model.products.length) {
            await model.refresh();
          }
          if (!model.products.length) {
            await showErrorMessage(
              'Cannot start a job',
              model.error ?? 'UCloud lists no products.'
            );
            return null;
          }
          const id = await startJobDialog(api, model.products);
          if (id) {
            Notification.success(`UCloud job ${id} submitted`, {
              autoClose: 4000
            });
            await model.refresh();
          }
          return id;
        } catch (error) {
          await showErrorMessage('Cannot start a job', errorText(error));
          return null;
        }
      }
    });

    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh UCloud Jobs',
      caption: 'Refresh the UCloud connection, products and jobs',
      icon: args => (args.isPalette ? undefined : refreshIcon),
      execute: async () => {
        await model.refresh();
        runningShells?.refreshRunning();
      }
    });

    commands.addCommand(CommandIDs.terminateJob, {
      label: args => {
        const jobId = stringArg(args, 'jobId');
        return jobId
          ? `Terminate UCloud Job ${jobId}`
          : 'Terminate UCloud Job…';
      },
      caption: 'Terminate a UCloud job (asks first)',
      execute: async args => {
        let jobId = stringArg(args, 'jobId');
        try {
          if (!jobId) {
            const page = await api.browseJobs({});
            const live = page.items.filter(job => !isFinal(job.status.state));
            if (!live.length) {
              await showErrorMessage(
                'No job to terminate',
                'No UCloud job is queued or running.'
              );
              return false;
            }
            const choice = await pickJobDialog(
              'Terminate which job?',
              live,
              false
            );
            if (!choice) {
              return false;
            }
            jobId = choice.jobId;
          }
          const job = await api.retrieveJob(jobId).catch(() => null);
          if (job && isFinal(job.status.state)) {
            await showErrorMessage(
              'Cannot terminate',
              `Job ${jobId} has already ended (${job.status.state.toLowerCase()}).`
            );
            return false;
          }
          if (!(await confirmTerminate(job, jobId))) {
            return false;
          }
          await api.terminateJob(jobId);
          Notification.info(`UCloud job ${jobId} is being terminated`, {
            autoClose: 4000
          });
          await model.refresh();
          return true;
        } catch (error) {
          await showErrorMessage('Cannot terminate the job', errorText(error));
          return false;
        }
      }
    });

    const jobPages = new WidgetTracker<JobPageWidget>({
      namespace: JOB_TRACKER_NAMESPACE
    });

    commands.addCommand(CommandIDs.openJob, {
      label: args => {
        const jobId = stringArg(args, 'jobId');
        return jobId ? `Open UCloud Job ${jobId}` : 'Open UCloud Job…';
      },
      caption:
        "Open a UCloud job's page: its state, updates and live output per rank",
      icon: args => (args.isPalette ? undefined : ucloudIcon),
      execute: async args => {
        let jobId = stringArg(args, 'jobId');
        try {
          if (!jobId) {
            const page = await api.browseJobs({});
            if (!page.items.length) {
              await showErrorMessage(
                'No job',
                'There is no UCloud job yet. Start one first (UCloud: Start Job).'
              );
              return null;
            }
            const choice = await pickJobDialog(
              'Open which job?',
              sortJobs(page.items),
              false
            );
            if (!choice) {
              return null;
            }
            jobId = choice.jobId;
          }
          let widget = jobPages.find(w => w.content.model.jobId === jobId);
          if (!widget) {
            const pageModel = new JobPageModel({
              jobId,
              hub,
              productOf: job => model.productOf(job)
            });
            widget = createJobPage(pageModel, commands);
            shell.add(widget, 'main', { type: 'UCloud Job' });
            await jobPages.add(widget);
          }
          if (args.activate !== false) {
            shell.activateById(widget.id);
          }
          return widget;
        } catch (error) {
          await showErrorMessage('Cannot open the job', errorText(error));
          return null;
        }
      }
    });

    commands.addCommand(CommandIDs.extendJob, {
      label: args => {
        const jobId = stringArg(args, 'jobId');
        return jobId ? `Extend UCloud Job ${jobId}` : 'Extend UCloud Job Time…';
      },
      caption: 'Ask for more time for a UCloud job (where its product allows)',
      execute: async args => {
        let jobId = stringArg(args, 'jobId');
        try {
          if (!jobId) {
            const page = await api.browseJobs({});
            const extendable = page.items.filter(
              job =>
                !extendBlocker(job, productOfJob(job) ?? model.productOf(job))
            );
            if (!extendable.length) {
              await showErrorMessage(
                'No job to extend',
                'No queued or running UCloud job is on a product with time extension.'
              );
              return false;
            }
            const choice = await pickJobDialog(
              'Extend which job?',
              extendable,
              false
            );
            if (!choice) {
              return false;
            }
            jobId = choice.jobId;
          }
          const job = await api.retrieveJob(jobId).catch(() => null);
          const hours = Number(args.hours ?? 0);
          const duration =
            hours > 0
              ? { hours, minutes: 0, seconds: 0 }
              : await askExtension(job, jobId);
          if (!duration) {
            return false;
          }
          await api.extendJob(jobId, duration);
          Notification.success(
            `${job ? jobTooltip(job) : `Job ${jobId}`}: ${duration.hours} more hour${duration.hours === 1 ? '' : 's'} asked for`,
            { autoClose: 4000 }
          );
          return true;
        } catch (error) {
          await showErrorMessage('Cannot extend the job', errorText(error));
          return false;
        }
      }
    });

    const targetTerminal = (
      args: ReadonlyPartialJSONObject
    ): UCloudTerminalWidget | null => {
      const name = stringArg(args, 'name');
      return (name ? terminals.find(name) : tracker.currentWidget) ?? null;
    };

    commands.addCommand(CommandIDs.reconnect, {
      label: 'Reconnect UCloud Terminal',
      caption:
        'Reconnect the UCloud terminal (a new shell if the old one is gone)',
      icon: args => (args.isPalette ? undefined : refreshIcon),
      isEnabled: args => !!targetTerminal(args)?.connection.canReconnect,
      execute: async args => {
        await targetTerminal(args)?.connection.reconnect();
      }
    });

    commands.addCommand('ucloud:terminal-copy', {
      label: 'Copy',
      icon: copyIcon,
      isEnabled: () => !!tracker.currentWidget?.content.hasSelection(),
      execute: async () => {
        const text = tracker.currentWidget?.content.getSelection();
        if (text) {
          await navigator.clipboard.writeText(text);
        }
      }
    });

    commands.addCommand('ucloud:terminal-paste', {
      label: 'Paste',
      icon: pasteIcon,
      isEnabled: () => tracker.currentWidget !== null,
      execute: async () => {
        const text = await navigator.clipboard.readText();
        tracker.currentWidget?.content.paste(text);
      }
    });

    const terminalSelector = '.jp-UCloudTerminal .jp-Terminal';
    app.contextMenu.addItem({
      command: 'ucloud:terminal-copy',
      selector: terminalSelector,
      rank: 1
    });
    app.contextMenu.addItem({
      command: 'ucloud:terminal-paste',
      selector: terminalSelector,
      rank: 2
    });
    app.contextMenu.addItem({
      command: CommandIDs.reconnect,
      selector: terminalSelector,
      rank: 3
    });

    if (palette) {
      const category = 'UCloud';
      for (const command of [
        CommandIDs.openTerminal,
        CommandIDs.startJob,
        CommandIDs.refresh,
        CommandIDs.terminateJob,
        CommandIDs.reconnect,
        CommandIDs.openJob,
        CommandIDs.extendJob
      ]) {
        palette.addItem({ command, category });
      }
    }

    launcher?.add({
      command: CommandIDs.openTerminal,
      category: 'Other',
      rank: 2
    });

    if (running) {
      runningShells = new UCloudShellsManager(api, commands);
      running.add(runningShells);
      tracker.widgetAdded.connect(() => runningShells?.refreshRunning());
    }

    if (restorer) {
      void restorer.restore(tracker, {
        command: CommandIDs.openTerminal,
        args: widget => ({
          jobId: widget.connection.jobId,
          rank: widget.connection.rank,
          name: widget.connection.name,
          activate: false
        }),
        name: widget => widget.connection.name
      });
      void restorer.restore(jobPages, {
        command: CommandIDs.openJob,
        args: widget => ({
          jobId: widget.content.model.jobId,
          activate: false
        }),
        name: widget => widget.content.model.jobId
      });
    }

    if (widgetRegistry) {
      registerWidgets(widgetRegistry, {
        api,
        commands,
        terminalOptions: () => terminals.options
      });
    }
  }
};

export default [plugin];
