/**
 * `UCloudShellConnection`: the stock terminal widget's connection, talking to a UCloud job
 * shell through the server extension's bridge (`/ucloud/shells/<name>/websocket`).
 *
 * Wire (terminado arrays): the server sends `["setup", {...}]`, then
 * `["stdout", text, endOffset]` and finally `["disconnect", reason, message]`; we send
 * `["stdin", text]` and `["set_size", rows, cols, height, width]`. Reconnecting passes
 * `?since=<endOffset>` so nothing already shown is written twice. Between them the bridge may
 * send `["status", {provider: "unresponsive" | "ok", message}]` when the job's provider stops
 * or starts answering again (what is typed meanwhile is kept and sent when it answers).
 *
 * Output and Ctrl-C: a browser socket cannot be paused, so during a flood (`yes`) output
 * arrives faster than xterm.js can draw it. Rather than piling it all into xterm.js's write
 * queue (where it cannot be taken back), output is handed to the terminal only while less than
 * `DISPLAY_WINDOW` characters of it wait to be drawn (`setDisplay`); the rest waits here. After
 * an interrupt (`^C`, `^\`, `^Z`) sent during a flood, what waits here is dropped, as the tty
 * driver drops output it has not written yet, and the output that was already on its way is
 * held back until the bridge's skip shows (a gap in the output offsets: the bridge skips the
 * stale output too, docs/architecture.md section 4) and then dropped, or after
 * `HOLD_MS` shown from its last `HOLD_TAIL` characters. The prompt is then on screen in a
 * fraction of a second instead of after everything that was already sent.
 */
import { Terminal as TerminalNS, ServerConnection } from '@jupyterlab/services';
import { JSONPrimitive } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import { IShellModel, UCloudAPI } from './api';
import { ITerminalDisplay } from './display';
import { isFinal, jobEndedSentence } from './model';

/**
 * Where a shell connection stands, as the tab shows it.
 *
 * - `connecting`: the socket is opening or waiting for the bridge's `setup`.
 * - `open`: attached to the shell.
 * - `reconnecting`: the socket dropped; retrying the same shell.
 * - `lost`: the provider or the network went away; `reconnect()` can recover.
 * - `ended`: the job ended or the shell exited/closed; the output stays readable.
 * - `gone`: the server does not know this shell (any more).
 */
export type ShellPhase =
  'connecting' | 'open' | 'reconnecting' | 'lost' | 'ended' | 'gone';

export interface IPhaseChange {
  phase: ShellPhase;
  /** A sentence for the user (why it ended, what was lost). */
  detail: string;
}

/** Whether the job's provider answers, as the bridge reports it. */
export interface IProviderStatus {
  responsive: boolean;
  message: string;
}

/** Close codes of the bridge (docs/architecture.md section 4). */
const CLOSE_JOB_ENDED = 4001;
const CLOSE_PROVIDER_LOST = 4002;
const CLOSE_NORMAL = 1000;

/** Delays before automatic reattach attempts to the same shell, in ms. */
const RETRY_DELAYS = [500, 1000, 2000, 4000, 8000];

/** Output handed to the terminal and not drawn yet is kept under this many characters. */
const DISPLAY_WINDOW = 65536;

/** Output waiting to be handed on beyond this is dropped from its oldest part (as xterm.js
 * itself drops writes past its own watermark). */
const MAX_WAITING = 32 * 1024 * 1024;

/** An interrupt with more than this much output not yet drawn holds the stale output back. */
const FLOODING = 16384;

/** How long stale output after an interrupt is held back at most, and how much of it is then
 * shown (the bridge does the same: 1 s, 4096 characters). */
const HOLD_MS = 1500;
const HOLD_TAIL = 4096;

/** Characters that interrupt what runs in the shell (the tty driver then drops its output). */
const INTERRUPTS = ['\x03', '\x1c', '\x1a'];

/** Keystrokes typed before the shell is attached are kept up to this many characters. */
const MAX_PENDING_INPUT = 65536;

const ESC_NOTE = '\x1b[1;7m';
const ESC_ERROR = '\x1b[1;31m';
const ESC_RESET = '\x1b[0m';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class UCloudShellConnection implements TerminalNS.ITerminalConnection {
  constructor(options: UCloudShellConnection.IOptions) {
    this._api = options.api;
    this._name = options.name;
    this.jobId = options.jobId;
    this.rank = options.rank;
    this._jobName = options.jobName ?? null;
    if (options.gone) {
      this._setPhase('gone', options.gone);
      this._emitNote(options.gone, ESC_ERROR);
    } else {
      this._connect(null);
    }
  }

  readonly jobId: string;
  readonly rank: number;

  /** The shell's server-side name; changes only when `reconnect()` had to start a new shell. */
  get name(): string {
    return this._name;
  }

  get model(): TerminalNS.IModel {
    return { name: this._name };
  }

  get serverSettings(): ServerConnection.ISettings {
    return this._api.serverSettings;
  }

  get messageReceived(): ISignal<this, TerminalNS.IMessage> {
    return this._messageReceived;
  }

  get connectionStatus(): TerminalNS.ConnectionStatus {
    return this._connectionStatus;
  }

  get connectionStatusChanged(): ISignal<this, TerminalNS.ConnectionStatus> {
    return this._connectionStatusChanged;
  }

  get phase(): ShellPhase {
    return this._phase;
  }

  get phaseDetail(): string {
    return this._phaseDetail;
  }

  /** Emitted on every phase change, for the tab's status indicator. */
  get phaseChanged(): ISignal<this, IPhaseChange> {
    return this._phaseChanged;
  }

  /** Whether the job's provider answers (the bridge's last `status` frame). */
  get providerStatus(): IProviderStatus {
    return this._providerStatus;
  }

  /** Emitted when the provider stops or starts answering again. */
  get providerStatusChanged(): ISignal<this, IProviderStatus> {
    return this._providerStatusChanged;
  }

  /**
   * Whether `reconnect()` can do anything: not once the job itself is known to have ended
   * (a shell that exited or was lost on a running job can be replaced).
   */
  get canReconnect(): boolean {
    return !this._isDisposed && !this._jobEnded;
  }

  /** Emitted when `reconnect()` replaced a lost or gone shell with a new one. */
  get shellReplaced(): ISignal<this, IShellModel> {
    return this._shellReplaced;
  }

  /** Position in the shell's output stream after the last text written to the terminal. */
  get endOffset(): number {
    return this._endOffset;
  }

  /**
   * Pace output by what the terminal has drawn (`null`: hand everything on at once). Set by
   * whoever shows the terminal, once its xterm.js is ready.
   */
  setDisplay(display: ITerminalDisplay | null): void {
    this._display = display;
    this._drawing = 0;
    this._generation++;
    this._pump();
  }

  /** Characters received and not yet drawn (waiting here or in the terminal). */
  get behind(): number {
    return this._waiting + this._drawing;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  get disposed(): ISignal<this, void> {
    return this._disposed;
  }

  send(message: TerminalNS.IMessage): void {
    if (this._isDisposed) {
      return;
    }
    const frame: JSONPrimitive[] = [message.type, ...(message.content ?? [])];
    if (message.type === 'set_size') {
      this._lastSize = frame;
    }
    const typed = message.type === 'stdin' ? String(message.content?.[0]) : '';
    if (INTERRUPTS.some(char => typed.includes(char))) {
      this._onInterrupt();
    }
    if (this._socket && this._connectionStatus === 'connected') {
      this._socket.send(JSON.stringify(frame));
      return;
    }
    if (message.type === 'stdin' && this._acceptsPendingInput()) {
      const text = String(message.content?.[0] ?? '');
      if (this._pendingInputLength + text.length <= MAX_PENDING_INPUT) {
        this._pendingInput.push(text);
        this._pendingInputLength += text.length;
      }
    }
  }

  /**
   * Reattach. A live shell is resumed after the last output shown; a shell that is gone or
   * whose provider was lost is replaced by a new shell on the same job and rank (the terminal
   * says so). A job that has ended is not reconnected.
   */
  async reconnect(): Promise<void> {
    if (this._isDisposed) {
      return;
    }
    this._clearRetry();
    const job = await this._jobState();
    if (isFinal(job)) {
      this._jobEnded = true;
      this._finish('ended', jobEndedSentence(job));
      return;
    }
    if (this._phase === 'open' || this._phase === 'connecting') {
      this._closeSocket();
    }
    const shell = await this._shellOrNull();
    if (shell && shell.state !== 'ended') {
      this._retries = 0;
      this._connect(this._endOffset);
      return;
    }
    await this._replaceShell(
      shell
        ? 'the previous shell had ended'
        : 'the previous shell no longer exists'
    );
  }

  /** Close the shell on the server (never the job). */
  async shutdown(): Promise<void> {
    await this._api.deleteShell(this._name);
    this.dispose();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._clearRetry();
    this._endHold(false);
    this._queue = [];
    this._waiting = 0;
    this._closeSocket();
    this._disposed.emit();
    Signal.clearData(this);
  }

  private _acceptsPendingInput(): boolean {
    return (
      this._phase === 'connecting' ||
      this._phase === 'reconnecting' ||
      this._phase === 'open'
    );
  }

  private _connect(since: number | null): void {
    if (this._isDisposed) {
      return;
    }
    this._setStatus('connecting');
    if (this._phase !== 'reconnecting') {
      this._setPhase('connecting', '');
    }
    const url = this._api.shellWebSocketUrl(this._name, since);
    const socket = new this.serverSettings.WebSocket(url);
    this._socket = socket;
    this._endReported = false;
    if (!this._providerStatus.responsive) {
      this._providerStatus = { responsive: true, message: '' };
      this._providerStatusChanged.emit(this._providerStatus);
    }
    socket.onmessage = (event: MessageEvent) => {
      if (this._socket === socket) {
        this._onFrame(event.data);
      }
    };
    socket.onclose = (event: CloseEvent) => {
      if (this._socket === socket) {
        this._socket = null;
        void this._onClose(event.code, event.reason);
      }
    };
    socket.onerror = () => {
      // A close event always follows; it decides what to do.
    };
  }

  private _onFrame(data: unknown): void {
    if (typeof data !== 'string') {
      return;
    }
    let frame: unknown;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (!Array.isArray(frame) || typeof frame[0] !== 'string') {
      return;
    }
    switch (frame[0]) {
      case 'setup':
        this._onSetup(frame[1]);
        break;
      case 'stdout':
        this._onStdout(frame[1], frame[2]);
        break;
      case 'disconnect':
        this._onDisconnect(String(frame[1] ?? ''), String(frame[2] ?? ''));
        break;
      case 'status':
        this._onStatus(frame[1]);
        break;
      default:
        break;
    }
  }

  private _onSetup(info: unknown): void {
    if (isRecord(info) && typeof info.name === 'string') {
      this._name = info.name;
    }
    const resumed = this._phase === 'reconnecting';
    const start =
      isRecord(info) && typeof info.offset === 'number' ? info.offset : null;
    this._retries = 0;
    this._setPhase('open', '');
    this._setStatus('connected');
    if (resumed) {
      const skipped = start !== null ? start - this._endOffset : 0;
      this._emitNote(
        skipped > 0
          ? `reconnected; ${skipped} bytes of output were older than the replay buffer and are not shown`
          : 'reconnected',
        ESC_NOTE
      );
      if (start !== null && start > this._endOffset) {
        this._endOffset = start;
      }
    }
    const socket = this._socket;
    if (!socket) {
      return;
    }
    if (this._lastSize) {
      socket.send(JSON.stringify(this._lastSize));
    }
    for (const text of this._pendingInput) {
      socket.send(JSON.stringify(['stdin', text]));
    }
    this._pendingInput = [];
    this._pendingInputLength = 0;
  }

  private _onStdout(text: unknown, endOffset: unknown): void {
    if (typeof text !== 'string') {
      return;
    }
    let gap = false;
    if (typeof endOffset === 'number') {
      if (endOffset <= this._endOffset) {
        // Already shown before a reconnect: never write it twice.
        return;
      }
      gap = endOffset - text.length > this._endOffset;
      this._endOffset = endOffset;
    }
    if (this._holding) {
      if (!gap) {
        // Stale output that was on its way when the interrupt left: keep only its tail.
        this._held = (this._held + text).slice(-HOLD_TAIL);
        return;
      }
      this._endHold(false); // the bridge skipped from here: what was held is stale
    }
    this._show(text);
  }

  /** Hand `text` to the terminal in order, as fast as it draws (see the module docstring). */
  private _show(text: string): void {
    if (!text) {
      return;
    }
    this._queue.push(text);
    this._waiting += text.length;
    if (this._waiting > MAX_WAITING) {
      while (this._waiting > MAX_WAITING / 2 && this._queue.length > 1) {
        this._waiting -= this._queue.shift()!.length;
      }
    }
    this._pump();
  }

  private _pump(): void {
    while (
      this._queue.length &&
      !this._isDisposed &&
      (!this._display || this._drawing < DISPLAY_WINDOW)
    ) {
      const text = this._queue.shift()!;
      this._waiting -= text.length;
      this._messageReceived.emit({ type: 'stdout', content: [text] });
      const display = this._display;
      if (display) {
        this._drawing += text.length;
        const generation = this._generation;
        display.drawn(() => {
          if (generation === this._generation) {
            this._drawing = Math.max(0, this._drawing - text.length);
            this._pump();
          }
        });
      }
    }
  }

  /** An interrupt was typed: stale output waiting here is dropped, and during a flood what is
   * still on its way is held back until the bridge's skip shows. */
  private _onInterrupt(): void {
    if (this.behind <= FLOODING) {
      return;
    }
    this._queue = [];
    this._waiting = 0;
    this._endHold(false);
    this._holding = true;
    this._holdTimer = window.setTimeout(() => {
      this._holdTimer = null;
      this._endHold(true);
    }, HOLD_MS);
  }

  private _endHold(showTail: boolean): void {
    if (this._holdTimer !== null) {
      window.clearTimeout(this._holdTimer);
      this._holdTimer = null;
    }
    const held = this._held;
    this._holding = false;
    this._held = '';
    if (showTail) {
      this._show(held);
    }
  }

  private _onStatus(info: unknown): void {
    if (!isRecord(info) || typeof info.provider !== 'string') {
      return;
    }
    const responsive = info.provider === 'ok';
    const message =
      typeof info.message === 'string'
        ? info.message
        : responsive
          ? "The job's provider answers again."
          : "The job's provider is not responding.";
    if (responsive === this._providerStatus.responsive) {
      return;
    }
    this._providerStatus = { responsive, message };
    this._providerStatusChanged.emit(this._providerStatus);
    this._emitNote(message, responsive ? ESC_NOTE : ESC_ERROR);
  }

  private _onDisconnect(reason: string, message: string): void {
    this._endReported = true;
    switch (reason) {
      case 'provider-lost':
        this._finish(
          'lost',
          message ||
            'The connection to the job was lost. Reconnect to open a new shell.'
        );
        break;
      case 'job-ended':
        this._jobEnded = true;
        this._finish('ended', message || 'The job is no longer running.');
        break;
      case 'shell-exited':
        this._finish('ended', message || 'The shell has exited.');
        break;
      default:
        this._finish('ended', message || 'The shell was closed.');
        break;
    }
  }

  private async _onClose(code: number, reason: string): Promise<void> {
    if (this._isDisposed) {
      return;
    }
    if (this._endReported) {
      return;
    }
    if (code === CLOSE_JOB_ENDED) {
      this._jobEnded = true;
      this._finish('ended', jobEndedSentence(await this._jobState()));
      return;
    }
    if (code === CLOSE_PROVIDER_LOST) {
      this._finish(
        'lost',
        reason ||
          'The connection to the job was lost. Reconnect to open a new shell.'
      );
      return;
    }
    if (code === CLOSE_NORMAL && this._phase !== 'open') {
      this._finish('ended', reason || 'The shell was closed.');
      return;
    }
    await this._retry();
  }

  /** Reattach to the same shell after an unexpected drop, checking why it dropped first. */
  private async _retry(): Promise<void> {
    const shell = await this._shellOrNull().catch(() => undefined);
    if (this._isDisposed) {
      return;
    }
    if (shell === null) {
      this._finish(
        'gone',
        `The shell ${this._name} no longer exists on the server. Reconnect to open a new shell.`
      );
      return;
    }
    if (shell && shell.state === 'ended') {
      this._jobEnded = isFinal(shell.jobState);
      const sentence = isFinal(shell.jobState)
        ? jobEndedSentence(shell.jobState)
        : shell.message || 'The shell has ended.';
      this._finish('ended', sentence);
      return;
    }
    if (this._retries >= RETRY_DELAYS.length) {
      this._finish(
        'lost',
        'The terminal connection was lost. Use Reconnect to try again.'
      );
      return;
    }
    const delay = RETRY_DELAYS[this._retries++];
    this._setStatus('connecting');
    this._setPhase(
      'reconnecting',
      `Connection dropped; reconnecting (attempt ${this._retries})`
    );
    this._retryTimer = window.setTimeout(() => {
      this._retryTimer = null;
      this._connect(this._endOffset);
    }, delay);
  }

  private async _replaceShell(why: string): Promise<void> {
    this._setStatus('connecting');
    this._setPhase('connecting', 'Opening a new shell');
    let shell: IShellModel;
    try {
      shell = await this._api.createShell({
        jobId: this.jobId,
        rank: this.rank
      });
    } catch (error) {
      this._finish(
        'lost',
        `Could not open a new shell: ${error instanceof Error ? error.message : String(error)}`
      );
      return;
    }
    if (this._isDisposed) {
      return;
    }
    this._name = shell.name;
    this._endOffset = 0;
    this._retries = 0;
    const job = this._jobName ?? `Job ${this.jobId}`;
    this._emitNote(
      `new shell on ${job}, rank ${this.rank}: ${why}; output above is from the old shell`,
      ESC_NOTE
    );
    this._shellReplaced.emit(shell);
    this._connect(null);
  }

  private _finish(phase: 'ended' | 'lost' | 'gone', detail: string): void {
    this._clearRetry();
    const wasSame = this._phase === phase && this._phaseDetail === detail;
    this._closeSocket();
    this._pendingInput = [];
    this._pendingInputLength = 0;
    this._setPhase(phase, detail);
    this._setStatus('disconnected');
    if (!wasSame) {
      this._emitNote(detail, phase === 'ended' ? ESC_NOTE : ESC_ERROR);
    }
  }

  /** Write a marked line of our own into the terminal (never sent to the shell). */
  private _emitNote(text: string, colour: string): void {
    if (this._isDisposed) {
      return;
    }
    this._show(`\r\n${colour}[${text}]${ESC_RESET}\r\n`);
  }

  private async _shellOrNull(): Promise<IShellModel | null> {
    return this._api.getShell(this._name);
  }

  private async _jobState() {
    try {
      return (await this._api.retrieveJob(this.jobId)).status.state;
    } catch {
      return null;
    }
  }

  private _closeSocket(): void {
    const socket = this._socket;
    this._socket = null;
    if (socket) {
      socket.onmessage = null;
      socket.onclose = null;
      socket.onerror = null;
      if (socket.readyState < WebSocket.CLOSING) {
        socket.close(CLOSE_NORMAL);
      }
    }
  }

  private _clearRetry(): void {
    if (this._retryTimer !== null) {
      window.clearTimeout(this._retryTimer);
      this._retryTimer = null;
    }
  }

  private _setStatus(status: TerminalNS.ConnectionStatus): void {
    if (this._connectionStatus !== status) {
      this._connectionStatus = status;
      this._connectionStatusChanged.emit(status);
    }
  }

  private _setPhase(phase: ShellPhase, detail: string): void {
    if (this._phase !== phase || this._phaseDetail !== detail) {
      this._phase = phase;
      this._phaseDetail = detail;
      this._phaseChanged.emit({ phase, detail });
    }
  }

  private _api: UCloudAPI;
  private _name: string;
  private _jobName: string | null;
  private _socket: WebSocket | null = null;
  private _endOffset = 0;
  private _endReported = false;
  private _jobEnded = false;
  private _display: ITerminalDisplay | null = null;
  /** Output waiting to be handed to the terminal, and its length. */
  private _queue: string[] = [];
  private _waiting = 0;
  /** Output handed to the terminal and not drawn yet. */
  private _drawing = 0;
  /** Changes when the display does, so calls back from an old one are ignored. */
  private _generation = 0;
  private _holding = false;
  private _held = '';
  private _holdTimer: number | null = null;
  private _lastSize: JSONPrimitive[] | null = null;
  private _pendingInput: string[] = [];
  private _pendingInputLength = 0;
  private _retries = 0;
  private _retryTimer: number | null = null;
  private _phase: ShellPhase = 'connecting';
  private _phaseDetail = '';
  private _connectionStatus: TerminalNS.ConnectionStatus = 'connecting';
  private _isDisposed = false;
  private _messageReceived = new Signal<this, TerminalNS.IMessage>(this);
  private _connectionStatusChanged = new Signal<
    this,
    TerminalNS.ConnectionStatus
  >(this);
  private _phaseChanged = new Signal<this, IPhaseChange>(this);
  private _shellReplaced = new Signal<this, IShellModel>(this);
  private _providerStatus: IProviderStatus = { responsive: true, message: '' };
  private _providerStatusChanged = new Signal<this, IProviderStatus>(this);
  private _disposed = new Signal<this, void>(this);
}

export namespace UCloudShellConnection {
  export interface IOptions {
    api: UCloudAPI;
    /** The server-side shell name (`ucloud-<jobId>-<rank>-<hex>`). */
    name: string;
    jobId: string;
    rank: number;
    /** The job as named in tooltips ("my job (job 3)"), for the notes written into the terminal. */
    jobName?: string | null;
    /** When set, the shell is known to be gone: show this and do not connect. */
    gone?: string;
  }
}
