/** Command ids, plugin ids and other names other parts rely on (docs/architecture.md §5). */
export namespace CommandIDs {
  /** Args `{jobId: string, rank: number, name?: string}`. */
  export const openTerminal = 'ucloud:open-terminal';
  export const startJob = 'ucloud:start-job';
  export const refresh = 'ucloud:refresh';
  /** Args `{jobId: string}`. */
  export const terminateJob = 'ucloud:terminate-job';
  /** Args `{name: string}`: reconnect the tab attached to this shell, or the current one. */
  export const reconnect = 'ucloud:reconnect-terminal';
  /** Args `{jobId?: string, activate?: boolean}`: the job page (asks which job without one). */
  export const openJob = 'ucloud:open-job';
  /** Args `{jobId?: string, hours?: number}`: extend a job's time (asks what is missing). */
  export const extendJob = 'ucloud:extend-job';
}

export const PLUGIN_PREFIX = 'jupyter-ucloud';
export const TRACKER_NAMESPACE = 'ucloud-terminal';
export const JOB_TRACKER_NAMESPACE = 'ucloud-job';
export const PANEL_ID = 'jp-ucloud-panel';
