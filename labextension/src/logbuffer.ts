/**
 * The output of one rank as this browser tab received it: stdout and stderr interleaved in
 * arrival order, the most recent `limit` characters kept (no DOM, no requests).
 *
 * Positions are absolute: character `n` of everything appended since the buffer was made (or
 * cleared), so a view can ask for what is new since the position it has drawn up to, and can
 * tell when what it showed has been dropped.
 */

export type LogStream = 'stdout' | 'stderr';

/** A run of text of one stream, starting at absolute position `start`. */
export interface ILogPiece {
  readonly start: number;
  readonly stream: LogStream;
  readonly text: string;
}

/** Pieces grow up to this size, so dropping the oldest piece frees a bounded amount. */
const PIECE_CHARS = 64 * 1024;

export class LogBuffer {
  constructor(readonly limit: number) {}

  /** Absolute position of the first character held. */
  get start(): number {
    return this._pieces.length ? this._pieces[0].start : this._end;
  }

  /** Absolute position after the last character held. */
  get end(): number {
    return this._end;
  }

  /** Counts `clear()`s: positions of different generations do not compare. */
  get generation(): number {
    return this._generation;
  }

  /** Characters held. */
  get size(): number {
    return this._end - this.start;
  }

  append(stream: LogStream, text: string): void {
    if (!text) {
      return;
    }
    const last = this._pieces[this._pieces.length - 1];
    if (
      last &&
      last.stream === stream &&
      last.text.length + text.length <= PIECE_CHARS
    ) {
      this._pieces[this._pieces.length - 1] = {
        start: last.start,
        stream,
        text: last.text + text
      };
    } else {
      this._pieces.push({ start: this._end, stream, text });
    }
    this._end += text.length;
    // Drop whole pieces while the rest still holds `limit`; cut a piece that is too long.
    while (
      this._pieces.length > 1 &&
      this._end - this._pieces[1].start >= this.limit
    ) {
      this._pieces.shift();
    }
    const first = this._pieces[0];
    if (this._end - first.start > this.limit) {
      const cut = this._end - first.start - this.limit;
      this._pieces[0] = {
        start: first.start + cut,
        stream: first.stream,
        text: first.text.slice(cut)
      };
    }
  }

  /** What is held from absolute position `from` on (from `start` if `from` was dropped). */
  since(from: number): ILogPiece[] {
    const pieces: ILogPiece[] = [];
    for (const piece of this._pieces) {
      const pieceEnd = piece.start + piece.text.length;
      if (pieceEnd <= from) {
        continue;
      }
      if (piece.start >= from) {
        pieces.push(piece);
      } else {
        pieces.push({
          start: from,
          stream: piece.stream,
          text: piece.text.slice(from - piece.start)
        });
      }
    }
    return pieces;
  }

  clear(): void {
    this._pieces = [];
    this._end = 0;
    this._generation++;
  }

  private _pieces: ILogPiece[] = [];
  private _end = 0;
  private _generation = 0;
}
