import { MontageError } from '../../src/common/errors';
import { LiveFollow, type LiveFollowOptions } from '../../src/renders/live-follow';
import type { LiveChannelReader, ReadEntry } from '../../src/repositories/live-stream/live-stream.repository';
import type { LiveEntry } from '../../src/streaming/live-entries';

/**
 * A reader driven by the test: each read takes the next scripted answer (entries, or an error
 * to throw), or waits until the test gives one.
 */
class ScriptedReader {
  readonly reads: Array<{ channel: string; after: string; blockMs: number }> = [];
  closed = 0;
  private answers: Array<ReadEntry[] | Error> = [];
  private waiting?: (answer: ReadEntry[] | Error) => void;
  private nextId = 1;

  read(channel: string, after: string, blockMs: number): Promise<ReadEntry[]> {
    this.reads.push({ channel, after, blockMs });
    const settle = (answer: ReadEntry[] | Error) => (answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer));
    const answer = this.answers.shift();
    if (answer) return settle(answer);
    return new Promise<ReadEntry[] | Error>((resolve) => (this.waiting = resolve)).then(settle);
  }

  close(): void {
    this.closed++;
  }

  /** The next read returns these entries (ids `<n>-0`, increasing). */
  give(...entries: LiveEntry[]): void {
    this.answer(entries.map((entry) => ({ id: `${this.nextId++}-0`, entry })));
  }

  /** The next read finds nothing within its block time. */
  idle(): void {
    this.answer([]);
  }

  /** The next read throws (Redis away). */
  fail(err = new Error('connect ECONNREFUSED')): void {
    this.answer(err);
  }

  private answer(answer: ReadEntry[] | Error): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting) waiting(answer);
    else this.answers.push(answer);
  }
}

const data = (attempt: number, seq: number, text: string): LiveEntry => ({ kind: 'data', attempt, seq, data: Buffer.from(text) });
const end = (frames: number, bytes: number, attempt = 1): LiveEntry => ({ kind: 'end', attempt, frames, bytes });

/** Lets the follow's loop run until it waits on the reader again. */
const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

function follow(reader: ScriptedReader, options: Partial<LiveFollowOptions> = {}): LiveFollow {
  return new LiveFollow({
    channel: 'montage:live:k:1a',
    reader: reader as unknown as LiveChannelReader,
    checkRun: async () => undefined,
    outageMs: 10_000,
    quietMs: 250,
    ...options,
  });
}

/** Everything an iterator yields, and how it ended. */
async function drain(iterator: AsyncIterable<Buffer>): Promise<{ pieces: string[]; error?: unknown }> {
  const pieces: string[] = [];
  try {
    for await (const piece of iterator) pieces.push(piece.toString());
    return { pieces };
  } catch (error) {
    return { pieces, error };
  }
}

describe('LiveFollow', () => {
  it('reads the channel from the start, after the last id seen, and viewers get each piece in order', async () => {
    const reader = new ScriptedReader();
    const live = follow(reader);
    const early = drain(live.iterate());
    const seen: string[] = [];
    const watching = (async () => {
      for await (const piece of live.iterate()) seen.push(piece.toString());
    })();
    await settle();
    expect(seen).toEqual([]);
    reader.give(data(1, 0, 'head'), data(1, 1, 'f1'));
    await settle();
    expect(seen).toEqual(['head', 'f1']); // yielded as they come, not at the end
    expect(live.finished).toBe(false);
    reader.give(data(1, 2, 'f2'));
    await settle();
    expect(seen).toEqual(['head', 'f1', 'f2']);
    reader.give(end(90, 1234));
    await live.done;
    await watching;
    expect(await early).toEqual({ pieces: ['head', 'f1', 'f2'] });
    expect(live.end).toEqual({ frames: 90, bytes: 1234 });
    expect(live.error).toBeUndefined();
    expect(live.bytes).toBe(8);
    expect(live.pieces.map(String)).toEqual(['head', 'f1', 'f2']);
    expect(reader.reads).toEqual([
      { channel: 'montage:live:k:1a', after: '0', blockMs: 250 },
      { channel: 'montage:live:k:1a', after: '2-0', blockMs: 250 },
      { channel: 'montage:live:k:1a', after: '3-0', blockMs: 250 },
    ]);
    expect(reader.closed).toBe(1);
  });

  it('waits 1 s per read when no quiet time is given', async () => {
    const reader = new ScriptedReader();
    reader.give(end(0, 0));
    const live = follow(reader, { quietMs: undefined });
    await live.done;
    expect(reader.reads).toEqual([{ channel: 'montage:live:k:1a', after: '0', blockMs: 1000 }]);
  });

  it('a late viewer gets every piece from the first, during the run and after its end', async () => {
    const reader = new ScriptedReader();
    const live = follow(reader);
    reader.give(data(1, 0, 'a'), data(1, 1, 'b'));
    await settle();
    const late = drain(live.iterate());
    reader.give(data(1, 2, 'c'), end(3, 3));
    await live.done;
    expect(await late).toEqual({ pieces: ['a', 'b', 'c'] });
    expect(await drain(live.iterate())).toEqual({ pieces: ['a', 'b', 'c'] }); // after the end
  });

  it('skips the copies a retried attempt publishes again, and ignores the attempt it replaced', async () => {
    const reader = new ScriptedReader();
    const live = follow(reader);
    const viewer = drain(live.iterate());
    reader.give(data(1, 0, 'h'), data(1, 1, 'x1'), data(2, 0, 'h'), data(2, 1, 'x1'), data(1, 2, 'stale'), data(2, 2, 'x2'));
    reader.give(end(4, 9, 1)); // the replaced start's late end does not close the stream
    reader.give(data(2, 3, 'x3'), end(4, 9, 2));
    await live.done;
    expect(await viewer).toEqual({ pieces: ['h', 'x1', 'x2', 'x3'] });
    expect(live.bytes).toBe(7);
  });

  it('firstPiece resolves with the first piece, or when the run ends without one', async () => {
    const reader = new ScriptedReader();
    const live = follow(reader);
    let resolved = false;
    const first = live.firstPiece().then(() => (resolved = true));
    await settle();
    expect(resolved).toBe(false);
    reader.give(data(1, 0, 'h'));
    await first;
    expect(live.pieces.map(String)).toEqual(['h']);

    const reader2 = new ScriptedReader();
    const failing = follow(reader2);
    const none = failing.firstPiece();
    reader2.give({ kind: 'error', message: 'boom' });
    await none;
    expect(failing.pieces).toEqual([]);
    expect(failing.finished).toBe(true);
  });

  it('an error entry: viewers get the pieces before it, then throw the render failure', async () => {
    const reader = new ScriptedReader();
    const live = follow(reader);
    const viewer = drain(live.iterate());
    reader.give(data(1, 0, 'h'), data(1, 1, 'f1'), { kind: 'error', message: 'ffmpeg exited with code 1' }, data(1, 2, 'never'));
    await live.done;
    const result = await viewer;
    expect(result.pieces).toEqual(['h', 'f1']);
    expect(result.error).toBeInstanceOf(MontageError);
    expect(result.error).toMatchObject({ kind: 'render_failed', message: 'ffmpeg exited with code 1' });
    expect(live.error).toBe(result.error);
    expect(live.end).toBeUndefined();
    expect(live.pieces.map(String)).toEqual(['h', 'f1']);
    expect(reader.closed).toBe(1);
    expect(reader.reads).toHaveLength(1);
  });

  it('an idle read asks checkRun; undefined goes on reading, an Error finishes the follow with it', async () => {
    const reader = new ScriptedReader();
    const problem = new Error('the job failed');
    const answers: Array<Error | undefined> = [undefined, problem];
    const checkRun = jest.fn(async () => answers.shift());
    const live = follow(reader, { checkRun });
    const viewer = drain(live.iterate());
    reader.give(data(1, 0, 'h'));
    await settle();
    expect(checkRun).not.toHaveBeenCalled(); // not while pieces come
    reader.idle();
    await settle();
    expect(checkRun).toHaveBeenCalledTimes(1);
    expect(live.finished).toBe(false);
    reader.idle();
    await live.done;
    expect(checkRun).toHaveBeenCalledTimes(2);
    expect(live.error).toBe(problem);
    expect(await viewer).toEqual({ pieces: ['h'], error: problem });
    expect(reader.closed).toBe(1);
    expect(reader.reads.map((r) => r.after)).toEqual(['0', '1-0', '1-0']);
  });

  it('a checkRun that throws (Redis away) does not finish the follow', async () => {
    const reader = new ScriptedReader();
    const checkRun = jest.fn(async (): Promise<Error | undefined> => {
      throw new Error('Redis away');
    });
    const live = follow(reader, { checkRun });
    reader.idle();
    await settle();
    expect(checkRun).toHaveBeenCalledTimes(1);
    expect(live.finished).toBe(false);
    reader.give(end(0, 0));
    await live.done;
    expect(live.error).toBeUndefined();
    expect(live.end).toEqual({ frames: 0, bytes: 0 });
  });

  describe('with Redis away (fake clock)', () => {
    beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask'] }));
    afterEach(() => jest.useRealTimers());

    it('a reader that throws for longer than outageMs finishes the follow as unavailable', async () => {
      const reader = new ScriptedReader();
      for (let i = 0; i < 20; i++) reader.fail();
      const live = follow(reader, { outageMs: 300 });
      const viewer = drain(live.iterate());
      await settle();
      expect(reader.reads).toHaveLength(1);
      // Read again every 200 ms: at 0, 200 and 400 ms; the one at 400 ms is past 300 ms away.
      await jest.advanceTimersByTimeAsync(399);
      await settle();
      expect(reader.reads).toHaveLength(2);
      expect(live.finished).toBe(false);
      await jest.advanceTimersByTimeAsync(1);
      await settle();
      expect(live.finished).toBe(true);
      expect(reader.reads).toHaveLength(3);
      expect(live.error).toBeInstanceOf(MontageError);
      expect(live.error).toMatchObject({ kind: 'unavailable', message: 'Redis (the job queue) was unreachable for more than 0 s; request the output again' });
      expect((live.error as MontageError).httpStatus).toBe(503);
      expect((await viewer).error).toBe(live.error);
      expect(reader.closed).toBe(1);
    });

    it('shorter outages are ridden out, each with its own clock: reading goes on from where it was', async () => {
      const reader = new ScriptedReader();
      const live = follow(reader, { outageMs: 1000 });
      const viewer = drain(live.iterate());
      reader.give(data(1, 0, 'h'));
      for (let i = 0; i < 4; i++) reader.fail(); // 0 to 600 ms
      reader.give(data(1, 1, 'f1'));
      for (let i = 0; i < 4; i++) reader.fail(); // 800 to 1400 ms: more than 1000 ms after the first outage began
      reader.give(end(1, 3));
      for (let i = 0; i < 10; i++) await jest.advanceTimersByTimeAsync(200);
      await live.done;
      expect(live.error).toBeUndefined();
      expect(await viewer).toEqual({ pieces: ['h', 'f1'] });
      expect(reader.reads.map((r) => r.after)).toEqual(['0', '1-0', '1-0', '1-0', '1-0', '1-0', '2-0', '2-0', '2-0', '2-0', '2-0']);
    });
  });

  it('a gap in the pieces fails the follow as a broken stream', async () => {
    const reader = new ScriptedReader();
    const live = follow(reader);
    reader.give(data(1, 0, 'h'), data(1, 2, 'f2'));
    await live.done;
    expect(live.error).toMatchObject({ kind: 'render_failed', message: 'the live stream of this render is broken', internal: 'piece 2 of attempt 1 came before piece 1: the channel lost pieces' });
    expect(live.pieces.map(String)).toEqual(['h']);
    expect(reader.closed).toBe(1);
  });

  it('close() ends the follow: viewers stop with an unavailable error, and the reader is closed once its read returns', async () => {
    const reader = new ScriptedReader();
    const live = follow(reader);
    const viewer = drain(live.iterate());
    reader.give(data(1, 0, 'h'));
    await settle();
    live.close();
    await live.done;
    expect(live.finished).toBe(true);
    const result = await viewer;
    expect(result.pieces).toEqual(['h']);
    expect(result.error).toMatchObject({ kind: 'unavailable', message: 'this API process is shutting down; request the output again', retryAfterSec: 2 });
    expect(reader.closed).toBe(0); // its blocking read is still out
    reader.give(data(1, 1, 'late'));
    await settle();
    expect(reader.closed).toBe(1);
    expect(reader.reads).toHaveLength(2); // no read after close
    live.close(); // twice: nothing more
    expect(live.error).toMatchObject({ kind: 'unavailable' });
  });

  it('close() after the end changes nothing', async () => {
    const reader = new ScriptedReader();
    reader.give(data(1, 0, 'h'), end(1, 1));
    const live = follow(reader);
    await live.done;
    live.close();
    expect(live.error).toBeUndefined();
    expect(live.end).toEqual({ frames: 1, bytes: 1 });
    expect(await drain(live.iterate())).toEqual({ pieces: ['h'] });
  });

  it('an aborted viewer stops iterating', async () => {
    const reader = new ScriptedReader();
    const live = follow(reader);
    reader.give(data(1, 0, 'h'));
    await settle();
    const controller = new AbortController();
    controller.abort();
    expect(await drain(live.iterate(controller.signal))).toEqual({ pieces: [] });
    live.close();
  });
});
