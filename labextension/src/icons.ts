import { LabIcon } from '@jupyterlab/ui-components';

const CLOUD_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">
  <path class="jp-icon3" fill="#616161" d="M19.35 10.04A7.49 7.49 0 0 0 12 4C9.11 4 6.6 5.64 5.35 8.04A5.994 5.994 0 0 0 0 14c0 3.31 2.69 6 6 6h13c2.76 0 5-2.24 5-5 0-2.64-2.05-4.78-4.65-4.96zM8 17l-1.4-1.4L9.2 13 6.6 10.4 8 9l4 4-4 4zm9 0h-5v-2h5v2z"/>
</svg>`;

/** A terminal window with a small cloud in its corner: a shell on a UCloud job. */
const TERMINAL_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">
  <path class="jp-terminal-icon-background-color jp-icon-selectable" fill="#333" d="M2 2h20v20H2z"/>
  <path class="jp-terminal-icon-color jp-icon-selectable-inverse" fill="#fff" d="M5 9.2l1.2-1.2 4 4-4 4L5 14.8l2.8-2.8zM11 16h6v1.6h-6z"/>
  <path class="jp-terminal-icon-color jp-icon-selectable-inverse" fill="#fff" d="M18.6 6.6a2.4 2.4 0 0 0-4.5-.8 1.9 1.9 0 0 0 .2 3.8h4.2a1.5 1.5 0 0 0 .1-3z"/>
</svg>`;

/** The UCloud sidebar icon: a cloud with a prompt. */
export const ucloudIcon = new LabIcon({
  name: 'jupyter-ucloud:cloud',
  svgstr: CLOUD_SVG
});

/** Job terminal tabs, the launcher card and the Running panel's shells. */
export const ucloudTerminalIcon = new LabIcon({
  name: 'jupyter-ucloud:terminal',
  svgstr: TERMINAL_SVG
});
