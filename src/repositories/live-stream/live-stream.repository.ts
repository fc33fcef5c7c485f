import IORedis, { type RedisOptions } from 'ioredis';
import { type ErrorDetail, type MontageErrorKind, unavailable } from '../../common/errors';
import type { LiveEntry } from '../../streaming/live-entries';
import { redisOptions } from '../job-queue/job-queue.repository';

/** How long a finished channel stays readable: viewers mid-way finish; later ones read the stored file. */
const KEEP_FINISHED_SEC = 120;
/** Channels of a run that never finishes (every node and API died) go after this. */
const KEEP_UNFINISHED_SEC = 6 * 3600;

export interface ReadEntry {
  id: string;
  entry: LiveEntry;
}

/**
 * Live channels on Redis Streams: binary-safe, replayable from the start for a late viewer,
 * and reached by every API process and render node already (they share BullMQ's Redis).
 * Writes wait for Redis through a short outage (ioredis queues them) and fail after
 * `outageMs`; blocking reads use a connection of their own (a blocked connection serves
 * nothing else), one per followed channel and process.
 */
export class LiveStreamRepository {
  private readonly writer: IORedis;
  private readonly options: RedisOptions;

  constructor(
    url: string,
    private readonly outageMs: number,
  ) {
    this.options = redisOptions(url);
    this.writer = new IORedis(this.options);
    this.writer.on('error', () => undefined); // the job queue logs outages of the same Redis
  }

  private async bounded<T>(what: string, call: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        call,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(unavailable(`cannot ${what}: Redis did not answer for ${Math.round(this.outageMs / 1000)} s`, 5)), this.outageMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** `keep`: a segment's channel outlives its `end` until the assembler removes it (it may get there late). */
  async append(channel: string, entry: LiveEntry, keep: 'output' | 'segment' = 'output'): Promise<void> {
    const fields: Array<string | Buffer> =
      entry.kind === 'data'
        ? ['k', 'data', 'a', String(entry.attempt), 's', String(entry.seq), 'd', entry.data]
        : entry.kind === 'written'
          ? ['k', 'written', 'a', String(entry.attempt)]
          : entry.kind === 'end'
          ? ['k', 'end', 'a', String(entry.attempt), 'f', String(entry.frames), 'b', String(entry.bytes)]
          : ['k', 'error', 'm', entry.message, 'e', entry.errorKind ?? 'render_failed', 'x', JSON.stringify(entry.details ?? [])];
    await this.bounded('publish to a live channel', this.writer.multi().xadd(channel, '*', ...fields).expire(channel, entry.kind === 'data' || keep === 'segment' ? KEEP_UNFINISHED_SEC : KEEP_FINISHED_SEC).exec());
  }

  /** A channel that is done with (its output stored, its segments joined). */
  async remove(channel: string): Promise<void> {
    await this.bounded('remove a live channel', this.writer.del(channel));
  }

  /** Frames done by one piece of work of a run (a segment, or the whole output), and bytes streamed. */
  async setProgress(key: string, field: string, value: number): Promise<void> {
    await this.bounded('save progress', this.writer.multi().hset(key, field, String(value)).expire(key, KEEP_UNFINISHED_SEC).exec());
  }

  async progress(key: string): Promise<Record<string, number>> {
    const raw = await this.bounded('read progress', this.writer.hgetall(key));
    return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Number(v)]));
  }

  /**
   * A lease on `key` for `ms` (Redis SET NX PX): true if this holder took it. One node renders
   * a reusable segment that several renders want at once; the others wait for it to be stored.
   */
  async lease(key: string, holder: string, ms: number): Promise<boolean> {
    return (await this.bounded('take a lease', this.writer.set(key, holder, 'PX', ms, 'NX'))) === 'OK';
  }

  /** Gives a lease back, if this holder still has it. */
  async releaseLease(key: string, holder: string): Promise<void> {
    await this.bounded('give a lease back', this.writer.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end", 1, key, holder));
  }

  /** Keeps a lease this holder has for another `ms`; false if it lapsed (another may have it now). */
  async renewLease(key: string, holder: string, ms: number): Promise<boolean> {
    const renewed = await this.bounded('renew a lease', this.writer.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end", 1, key, holder, String(ms)));
    return renewed === 1;
  }

  /** Whether anyone holds the lease on `key`. */
  async leased(key: string): Promise<boolean> {
    return (await this.bounded('read a lease', this.writer.exists(key))) > 0;
  }

  /** Whether anything was ever published on the channel (and it has not expired). */
  async exists(channel: string): Promise<boolean> {
    return (await this.bounded('read a live channel', this.writer.exists(channel))) > 0;
  }

  /** A reader with its own connection, for blocking reads of one channel at a time. */
  reader(): LiveChannelReader {
    return new LiveChannelReader(this.options);
  }

  async close(): Promise<void> {
    await Promise.race([this.writer.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 100))]);
    this.writer.disconnect();
  }
}

export class LiveChannelReader {
  private readonly redis: IORedis;

  constructor(options: RedisOptions) {
    // Fail instead of queueing while Redis is away: the follower decides how long to wait.
    this.redis = new IORedis({ ...options, enableOfflineQueue: false, lazyConnect: false });
    this.redis.on('error', () => undefined);
  }

  /** Entries after `after` ('0' from the start), waiting up to `blockMs` for the first. */
  async read(channel: string, after: string, blockMs: number, count = 16): Promise<ReadEntry[]> {
    if (this.redis.status !== 'ready') await this.ready(blockMs);
    // A connection lost during a blocking read would resend it once back, and the read would
    // wait for Redis: bounded, it fails instead and the caller decides how long to wait.
    let timer: NodeJS.Timeout | undefined;
    const reading = this.redis.xreadBuffer('COUNT', count, 'BLOCK', blockMs, 'STREAMS', channel, after) as Promise<Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null>;
    const reply = await Promise.race([
      reading,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reading.catch(() => undefined);
          this.redis.disconnect(true); // drops the read in flight; connects again
          reject(new Error('Redis did not answer a blocking read'));
        }, blockMs + 5000);
      }),
    ]).finally(() => clearTimeout(timer));
    if (!reply) return [];
    return reply[0][1].map(([id, fields]) => ({ id: id.toString(), entry: parseEntry(fields) }));
  }

  close(): void {
    this.redis.disconnect();
  }

  /** A new connection, or one that is reconnecting: waited for a moment; still not there is an outage. */
  private ready(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.redis.off('ready', onReady);
        reject(new Error('Redis is not reachable'));
      }, ms);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      this.redis.once('ready', onReady);
    });
  }
}

function parseDetails(raw: string): ErrorDetail[] {
  try {
    const value: unknown = JSON.parse(raw || '[]');
    return Array.isArray(value) ? (value as ErrorDetail[]) : [];
  } catch {
    return [];
  }
}

function parseEntry(fields: Buffer[]): LiveEntry {
  const f = new Map<string, Buffer>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i].toString(), fields[i + 1]);
  const s = (k: string) => f.get(k)?.toString() ?? '';
  switch (s('k')) {
    case 'data':
      return { kind: 'data', attempt: Number(s('a')), seq: Number(s('s')), data: f.get('d') ?? Buffer.alloc(0) };
    case 'written':
      return { kind: 'written', attempt: Number(s('a')) };
    case 'end':
      return { kind: 'end', attempt: Number(s('a')), frames: Number(s('f')), bytes: Number(s('b')) };
    default:
      return { kind: 'error', message: s('m') || 'the render failed', errorKind: (s('e') || 'render_failed') as MontageErrorKind, details: parseDetails(s('x')) };
  }
}
