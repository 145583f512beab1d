/**
 * How far the terminal has drawn what it was given: the pace at which a
 * `UCloudShellConnection` hands output on (see connection.ts, "Output and Ctrl-C").
 */
import { Terminal } from '@jupyterlab/terminal';

/** The part of a terminal the connection needs: a call back once all it was given is drawn. */
export interface ITerminalDisplay {
  /** Call `done` once everything written to the terminal so far has been parsed. */
  drawn(done: () => void): void;
}

/** The xterm.js call we rely on: `write(data, callback)` calls back once `data` is parsed. */
interface IXtermWriter {
  write(data: string, callback?: () => void): void;
}

/**
 * The display of a stock JupyterLab terminal widget, once it is ready: an empty write whose
 * callback xterm.js runs after everything written before it was parsed. `null` when the
 * widget's xterm cannot be reached (output is then handed on without pacing, as before).
 */
export function terminalDisplay(terminal: Terminal): ITerminalDisplay | null {
  const xterm = (terminal as unknown as { _term?: IXtermWriter })._term;
  if (!xterm || typeof xterm.write !== 'function') {
    return null;
  }
  return { drawn: done => xterm.write('', done) };
}
