import type { ErrorDetail, MontageErrorKind } from '../common/errors';

/**
 * What travels on a render's live channel (a Redis Stream per render run, and one per
 * segment of a distributed render), read from the start by every viewer on every API
 * process, and by the assembler of a distributed render. Pure.
 */
export type LiveEntry =
  /** Piece `seq` of the output as written by attempt `attempt` (see FragmentChunker). */
  | { kind: 'data'; attempt: number; seq: number; data: Buffer }
  /** Every piece of this start is out (the output is being stored): viewers can end their stream now. */
  | { kind: 'written'; attempt: number }
  /** The output is complete: every piece was published; `bytes` is what was stored (0 for a segment). */
  | { kind: 'end'; attempt: number; frames: number; bytes: number }
  /** The render failed for good (no attempt left, or bad input): the reason, for people, and its kind (its HTTP status). */
  | { kind: 'error'; message: string; errorKind?: MontageErrorKind; details?: ErrorDetail[] };

/**
 * The pieces to use, each once and in order, from a channel where a retried attempt publishes
 * again from piece 0: a piece already taken is skipped (a retry's copy of it), pieces of an
 * attempt older than the newest seen are ignored (a node presumed dead that still writes).
 */
export class PieceSequence {
  private nextSeq = 0;
  private attempt = 0;

  /** Whether to use this piece (it is the next one). Throws on a gap: pieces were lost. */
  accept(entry: { attempt: number; seq: number }): boolean {
    if (entry.attempt < this.attempt) return false;
    if (entry.attempt > this.attempt) this.attempt = entry.attempt;
    if (entry.seq < this.nextSeq) return false;
    if (entry.seq > this.nextSeq) throw new Error(`piece ${entry.seq} of attempt ${entry.attempt} came before piece ${this.nextSeq}: the channel lost pieces`);
    this.nextSeq++;
    return true;
  }

  /** Whether an `end` from this attempt closes the sequence (one from an older start does not). */
  endsWith(entry: { attempt: number }): boolean {
    return entry.attempt >= this.attempt;
  }

  /** Pieces taken so far. */
  get taken(): number {
    return this.nextSeq;
  }
}

/** Channel names: one per render run, one per segment of a distributed run. */
export const liveChannel = (renderKey: string, run: string) => `montage:live:${renderKey}:${run}`;
export const segmentChannel = (renderKey: string, run: string, index: number) => `montage:seg:${renderKey}:${run}:${index}`;
/** Frames done per piece of work of a run (a hash: one field per segment), and bytes streamed. */
export const progressKey = (renderKey: string, run: string) => `montage:progress:${renderKey}:${run}`;
