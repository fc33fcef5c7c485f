import { MontageError, renderFailed, unavailable } from '../common/errors';
import type { LiveChannelReader } from '../repositories/live-stream/live-stream.repository';
import { PieceSequence } from '../streaming/live-entries';

export interface LiveFollowOptions {
  channel: string;
  reader: LiveChannelReader;
  /** Asked when the channel is quiet: undefined while the run's job lives, the reason once it cannot end well. */
  checkRun: () => Promise<Error | undefined>;
  /** How long Redis may stay away before the follow fails. */
  outageMs: number;
  /** How long a read waits before the run's job is looked at. */
  quietMs?: number;
}

/**
 * One render run followed by this process, on its live channel, from the start: every viewer
 * here reads the same pieces (a late one from the first), each piece once, in order, whichever
 * attempt published it. Ends with the channel's `end` entry (the output is stored by then) or
 * fails: an `error` entry, a job that failed or vanished, or Redis away for longer than allowed.
 */
export class LiveFollow {
  readonly pieces: Buffer[] = [];
  bytes = 0;
  /** Every piece is here (the nodes are storing the output). */
  written = false;
  end?: { frames: number; bytes: number };
  error?: Error;
  private closed = false;
  private waiters: Array<() => void> = [];
  private readonly sequence = new PieceSequence();
  private resolveDone!: () => void;
  /** Settles (never rejects) when the run ended or failed, or the follow was closed. */
  readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));

  constructor(private readonly options: LiveFollowOptions) {
    void this.loop();
  }

  get finished(): boolean {
    return !!this.end || !!this.error || this.closed;
  }

  private notify(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  private changed(): Promise<void> {
    return this.finished ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }

  private finish(result: { error?: Error; end?: { frames: number; bytes: number } }): void {
    if (this.finished) return;
    this.error = result.error;
    this.end = result.end;
    this.notify();
    this.resolveDone();
  }

  /** Stops reading (process shutdown): viewers end. */
  close(): void {
    if (this.finished) return;
    this.finish({ error: transient(unavailable('this API process is shutting down; request the output again', 2)) });
    this.closed = true;
  }

  private async loop(): Promise<void> {
    const { channel, reader, outageMs } = this.options;
    let after = '0';
    let outageSince: number | undefined;
    try {
      while (!this.finished) {
        let entries;
        try {
          entries = await reader.read(channel, after, this.options.quietMs ?? 1000);
          outageSince = undefined;
        } catch {
          if (this.finished) return;
          outageSince ??= Date.now();
          if (Date.now() - outageSince > outageMs) {
            // Recorded: /v2/progress must say, within a bound, why the render stopped (the next GET renders it again).
            return this.finish({ error: unavailable(`Redis (the job queue) was unreachable for more than ${Math.round(outageMs / 1000)} s; request the output again`) });
          }
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        if (entries.length === 0) {
          const problem = await this.options.checkRun().catch(() => undefined); // Redis away: the next read says so
          if (problem) return this.finish({ error: problem });
          continue;
        }
        for (const { id, entry } of entries) {
          after = id;
          if (entry.kind === 'data') {
            if (!this.sequence.accept(entry)) continue;
            this.pieces.push(entry.data);
            this.bytes += entry.data.length;
            this.notify();
          } else if (entry.kind === 'written') {
            // Viewers have every piece; the record waits for `end` (the output stored).
            if (this.sequence.endsWith(entry)) {
              this.written = true;
              this.notify();
            }
          } else if (entry.kind === 'end') {
            if (!this.sequence.endsWith(entry)) continue; // a start presumed dead finishing late
            return this.finish({ end: { frames: entry.frames, bytes: entry.bytes } });
          } else {
            return this.finish({ error: new MontageError(entry.errorKind ?? 'render_failed', entry.message, entry.details ?? []) });
          }
        }
      }
    } catch (err) {
      this.finish({ error: transient(err instanceof MontageError ? err : renderFailed('the live stream of this render is broken', [], { internal: (err as Error).message })) });
    } finally {
      reader.close();
    }
  }

  /** Resolves once there is a piece to send, or the run is over. */
  async firstPiece(): Promise<void> {
    while (this.pieces.length === 0 && !this.finished) await this.changed();
  }

  /** Viewers reading now (a shutdown gives them its grace period). */
  viewers = 0;

  /** Every piece from the first, as they come; throws if the run fails (the response ends broken, not short). */
  async *iterate(signal?: AbortSignal): AsyncGenerator<Buffer> {
    let i = 0;
    this.viewers++;
    try {
      while (!signal?.aborted) {
        while (i < this.pieces.length) yield this.pieces[i++];
        if (this.end || this.written) return;
        if (this.error) throw this.error;
        await this.changed();
      }
    } finally {
      this.viewers--;
    }
  }
}

/** Failures of this process's reading, not of the render (which may well go on): the record is left as it is. */
const TRANSIENT = new WeakSet<Error>();
function transient(err: Error): Error {
  TRANSIENT.add(err);
  return err;
}
export const isTransient = (err: Error): boolean => TRANSIENT.has(err);
