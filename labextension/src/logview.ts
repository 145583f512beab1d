/**
 * The output of one rank on the job page: stdout and stderr told apart (stderr in JupyterLab's
 * error colour), following the tail unless the user scrolled up.
 *
 * The DOM stays bounded whatever the job prints: the text is drawn in blocks of about
 * `BLOCK_CHARS`, and the oldest blocks are removed while the rest still holds `VIEW_CHARS`,
 * with a note that earlier output is not shown. New output is drawn once per animation frame
 * (never while the page is hidden), by appending to the last block, so a flood costs one
 * small DOM change per frame.
 */
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { LogBuffer, LogStream } from './logbuffer';

/** Characters of output a log view holds at most (plus one block). */
export const VIEW_CHARS = 256 * 1024;
const BLOCK_CHARS = 16 * 1024;
/** Within this many pixels of the bottom counts as at the bottom. */
const STICK_PX = 8;

interface IBlock {
  readonly node: HTMLElement;
  readonly start: number;
  chars: number;
  lastSpan: HTMLElement | null;
  lastStream: LogStream | null;
  endsLine: boolean;
}

export class LogView extends Widget {
  constructor() {
    super();
    this.addClass('jp-UCloudLog');
    this._note.className = 'jp-UCloudLog-note';
    this._note.hidden = true;
    this._empty.className = 'jp-UCloudLog-empty';
    this._empty.textContent = 'No output yet.';
    this._text.className = 'jp-UCloudLog-text';
    this.node.append(this._note, this._empty, this._text);
    this.node.tabIndex = 0;
    this.node.setAttribute('role', 'log');
    this.node.addEventListener('scroll', this._onScroll);
  }

  /** Whether the view follows the tail (false once the user scrolled up). */
  get following(): boolean {
    return this._stick;
  }

  /** Show `buffer` (another rank's, or `null`), drawn afresh. */
  setBuffer(buffer: LogBuffer | null, emptyText = 'No output yet.'): void {
    this._buffer = buffer;
    this._empty.textContent = emptyText;
    this._clear();
    this._stick = true;
    this.update();
  }

  /** New output (or a replaced buffer) is there: draw it at the next frame. */
  refresh(): void {
    if (this._frame === 0) {
      this._frame = requestAnimationFrame(() => {
        this._frame = 0;
        this.update();
      });
    }
  }

  /** Go to the end and follow the tail again. */
  scrollToEnd(): void {
    this._stick = true;
    this.node.scrollTop = this.node.scrollHeight;
  }

  override dispose(): void {
    if (this._frame) {
      cancelAnimationFrame(this._frame);
    }
    this.node.removeEventListener('scroll', this._onScroll);
    super.dispose();
  }

  protected override onUpdateRequest(msg: Message): void {
    if (this.isVisible) {
      this._render();
    }
  }

  protected override onAfterShow(msg: Message): void {
    this._render();
  }

  private _render(): void {
    const buffer = this._buffer;
    if (!buffer) {
      this._clear();
      this._showState();
      return;
    }
    let from = Math.max(this._end, buffer.start, buffer.end - VIEW_CHARS);
    if (buffer.generation !== this._generation || from > this._end) {
      // A new stream, or what was drawn is all older than what is kept: draw afresh.
      this._clear();
      this._generation = buffer.generation;
      from = Math.max(buffer.start, buffer.end - VIEW_CHARS);
    }
    for (const piece of buffer.since(from)) {
      this._append(piece.start, piece.stream, piece.text);
    }
    this._end = Math.max(from, buffer.end);
    let removed = 0;
    while (
      this._blocks.length > 1 &&
      this._end - this._blocks[1].start >= VIEW_CHARS
    ) {
      const block = this._blocks.shift()!;
      if (!this._stick) {
        removed += block.node.offsetHeight;
      }
      block.node.remove();
    }
    this._showState();
    if (this._stick) {
      this.node.scrollTop = this.node.scrollHeight;
    } else if (removed) {
      this.node.scrollTop -= removed; // keep the lines the user reads in place
    }
  }

  private _append(start: number, stream: LogStream, text: string): void {
    let at = start;
    while (text) {
      let block = this._blocks[this._blocks.length - 1];
      if (
        !block ||
        (block.chars >= BLOCK_CHARS && block.endsLine) ||
        block.chars >= 2 * BLOCK_CHARS
      ) {
        block = this._newBlock(at);
      }
      // Fill the block up to its size, then to the end of the line (a long line: a bit more).
      let take = text.length;
      if (block.chars + take > BLOCK_CHARS) {
        const newline = text.indexOf(
          '\n',
          Math.max(0, BLOCK_CHARS - block.chars - 1)
        );
        const limit = 2 * BLOCK_CHARS - block.chars;
        take =
          newline >= 0 ? Math.min(newline + 1, limit) : Math.min(take, limit);
        take = Math.max(1, take);
      }
      const part = text.slice(0, take);
      if (block.lastStream === stream && block.lastSpan) {
        (block.lastSpan.firstChild as Text).appendData(part);
      } else {
        const span = document.createElement('span');
        span.className = `jp-UCloudLog-${stream}`;
        span.append(document.createTextNode(part));
        block.node.append(span);
        block.lastSpan = span;
        block.lastStream = stream;
      }
      block.chars += part.length;
      block.endsLine = part.endsWith('\n');
      at += part.length;
      text = text.slice(take);
    }
  }

  private _newBlock(start: number): IBlock {
    const node = document.createElement('div');
    node.className = 'jp-UCloudLog-block';
    this._text.append(node);
    const block: IBlock = {
      node,
      start,
      chars: 0,
      lastSpan: null,
      lastStream: null,
      endsLine: true
    };
    this._blocks.push(block);
    return block;
  }

  private _clear(): void {
    this._text.replaceChildren();
    this._blocks = [];
    this._end = 0;
    this._generation = -1;
  }

  private _showState(): void {
    const first = this._blocks.length ? this._blocks[0].start : this._end;
    this._empty.hidden = this._blocks.length > 0;
    // Anything before the first character shown was dropped (here, or by the buffer).
    this._note.hidden = first <= 0;
    this._note.textContent = `Earlier output not shown: only the last ${Math.round(
      VIEW_CHARS / 1024
    )} K characters of this rank are kept here.`;
    this.node.dataset.chars = String(this._end - first);
  }

  private _onScroll = (): void => {
    const node = this.node;
    this._stick =
      node.scrollHeight - node.scrollTop - node.clientHeight <= STICK_PX;
    this.node.dataset.following = String(this._stick);
  };

  private _buffer: LogBuffer | null = null;
  private _blocks: IBlock[] = [];
  private _end = 0;
  private _generation = -1;
  private _stick = true;
  private _frame = 0;
  private _note = document.createElement('div');
  private _empty = document.createElement('div');
  private _text = document.createElement('pre');
}
