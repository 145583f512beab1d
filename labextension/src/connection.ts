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
 */
import { Terminal as TerminalNS, ServerConnection } from '@jupyterlab/services';
import { JSONPrimitive } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import { IShellModel, UCloudAPI } from './api';
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
    if (typeof endOffset === 'number') {
      if (endOffset <= this._endOffset) {
        // Already shown before a reconnect: never write it twice.
        return;
      }
      this._endOffset = endOffset;
    }
    this._messageReceived.emit({ type: 'stdout', content: [text] });
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
    this._messageReceived.emit({
      type: 'stdout',
      content: [`\r\n${colour}[${text}]${ESC_RESET}\r\n`]
    });
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
