import { tiedCommand } from '../../src/repositories/child-processes';
import { parseProcStat } from '../../src/repositories/processes.repository';
import { StartupTimeoutError, waitForDependency } from '../../src/health/dependency-wait';
import { startupState } from '../../src/health/startup-state';
import { progressed, ProgressParser } from '../../src/compiler/ffmpeg-output';
import { RateLimitsService, budgetOf, utcDay } from '../../src/limits/rate-limits.service';
import type { RateLimitStore } from '../../src/limits/rate-limit-store';
import { loadConfig } from '../../src/config/config';
import { MontageError, unavailable } from '../../src/common/errors';
import { effectiveLimits, type ProjectDoc } from '../../src/projects/project.types';
import { describeRedis, redisOptions } from '../../src/repositories/job-queue/job-queue.repository';

describe('tied children', () => {
  it('run through setpriv with the parent-death signal when it is there', () => {
    expect(tiedCommand('ffmpeg', ['-i', 'a', '-y', 'b'], 'KILL', '/usr/bin/setpriv')).toEqual(['/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', 'ffmpeg', '-i', 'a', '-y', 'b']]);
    expect(tiedCommand('redis-server', ['--port', '0'], 'TERM', '/bin/setpriv')).toEqual(['/bin/setpriv', ['--pdeathsig', 'TERM', '--', 'redis-server', '--port', '0']]);
    expect(tiedCommand('ffmpeg', ['-version'], 'KILL', undefined)).toEqual(['ffmpeg', ['-version']]);
  });

  it('/proc/<pid>/stat is read past a command name with spaces and parentheses', () => {
    const stat = '1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10';
    expect(parseProcStat(stat)).toEqual({ state: 'S', ppid: 1, pgid: 1234, startTime: 987654 });
    expect(parseProcStat('garbage')).toBeUndefined();
  });
});

describe('waitForDependency', () => {
  const logger = () => ({ log: jest.fn(), warn: jest.fn() });

  it('says once what it waits for, backs off, and says when it is there', async () => {
    const log = logger();
    const sleeps: number[] = [];
    let calls = 0;
    const value = await waitForDependency(
      'MongoDB',
      async () => {
        if (++calls < 5) throw new Error('connect ECONNREFUSED');
        return 'store';
      },
      { publicName: 'store', timeoutMs: 0, logger: log, sleep: async (ms) => void sleeps.push(ms) },
    );
    expect(value).toBe('store');
    expect(sleeps).toEqual([250, 500, 1000, 2000]);
    expect(log.warn).toHaveBeenCalledTimes(1);
    expect(log.warn.mock.calls[0][0]).toMatch(/^waiting for MongoDB: connect ECONNREFUSED; retrying with backoff until it answers/);
    expect(log.log).toHaveBeenCalledWith(expect.stringMatching(/^MongoDB answers after/));
    expect(startupState.pending()).toEqual([]);
  });

  it('is reported to the start-up probe while it waits, and gives up after the timeout', async () => {
    const log = logger();
    let seen: unknown;
    const failing = waitForDependency('the bucket s3://b at http://minio:9000', async () => Promise.reject(new Error('503 Slow Down')), {
      publicName: 'storage',
      timeoutMs: 50,
      logger: log,
      firstDelayMs: 10,
      sleep: async (ms) => {
        seen ??= startupState.pending();
        await new Promise((r) => setTimeout(r, ms));
      },
    });
    await expect(failing).rejects.toThrow(StartupTimeoutError);
    await expect(failing).rejects.toThrow(/gave up waiting for the bucket s3:\/\/b at http:\/\/minio:9000 after \d+ s: 503 Slow Down/);
    expect(seen).toEqual([{ name: 'storage', reason: '503 Slow Down', waitingSec: 0 }]); // the probe says `storage`, never where
    startupState.reached('storage');
  });
});

describe('the encoder watchdog', () => {
  it('counts frames, bytes or media time as progress, and nothing else', () => {
    const parser = new ProgressParser();
    const blocks = parser.pushBlocks('frame=0\ntotal_size=48\nout_time_us=0\nprogress=continue\nframe=0\ntotal_size=48\nout_time_us=0\nprogress=continue\nframe=3\ntotal_size=900\nout_time_us=100000\nprogress=end\n');
    expect(blocks).toEqual([
      { frame: 0, totalSize: 48, outTimeUs: 0 },
      { frame: 0, totalSize: 48, outTimeUs: 0 },
      { frame: 3, totalSize: 900, outTimeUs: 100000 },
    ]);
    expect(progressed(undefined, blocks[0])).toBe(true);
    expect(progressed(blocks[0], blocks[1])).toBe(false); // the same report again: stuck
    expect(progressed(blocks[1], blocks[2])).toBe(true);
    expect(progressed(undefined, { frame: 0, totalSize: 0, outTimeUs: 0 })).toBe(false);
    expect(progressed(blocks[2], { frame: 3, totalSize: 1000, outTimeUs: 100000 })).toBe(true); // a remux: bytes only
  });
});

describe('Redis connection options', () => {
  it('reconnect within 2 s for ever, and never print the password', () => {
    const options = redisOptions('redis://:s3cret@cache.internal:6380/2');
    expect(options).toMatchObject({ host: 'cache.internal', port: 6380, password: 's3cret', db: 2, maxRetriesPerRequest: null });
    expect([1, 5, 20, 1000].map((n) => options.retryStrategy!(n))).toEqual([100, 500, 2000, 2000]);
    expect(describeRedis('redis://:s3cret@cache.internal:6380/2')).toBe('redis://cache.internal:6380/2');
    expect(describeRedis('unix:///var/run/redis.sock')).toBe('unix:///var/run/redis.sock');
  });
});

describe('RateLimitsService', () => {
  const project = (limits: Partial<ProjectDoc['limits']> = {}): ProjectDoc => ({
    _id: 'acme',
    keyHashes: [],
    signingSecret: 's',
    public: false,
    limits: { maxPixelSeconds: 1e12, maxParamsBytes: 65536, ...limits },
    createdAt: '2026-01-01T00:00:00Z',
  });

  /** Counters in memory, with the same semantics as the Redis store. */
  function memoryStore() {
    const counters = new Map<string, number>();
    const slots = new Map<string, Set<string>>();
    const store: RateLimitStore & { failing: boolean } = {
      failing: false,
      hit: jest.fn(async (key: string) => {
        if (store.failing) throw unavailable('Redis is unreachable');
        counters.set(key, (counters.get(key) ?? 0) + 1);
        return { count: counters.get(key)!, resetMs: 42_000 };
      }),
      addWithin: jest.fn(async (key: string, amount: number, limit: number) => {
        if (store.failing) throw unavailable('Redis is unreachable');
        const current = counters.get(key) ?? 0;
        if (current + amount > limit) return { ok: false, total: current };
        counters.set(key, current + amount);
        return { ok: true, total: current + amount };
      }),
      acquireSlot: jest.fn(async (key: string, member: string, limit: number) => {
        if (store.failing) throw unavailable('Redis is unreachable');
        const set = slots.get(key) ?? new Set<string>();
        slots.set(key, set);
        if (set.has(member)) return true;
        if (set.size >= limit) return false;
        set.add(member);
        return true;
      }),
      releaseSlot: jest.fn(async (key: string, member: string) => void slots.get(key)?.delete(member)),
    };
    return store;
  }

  const config = loadConfig({ RATE_LIMIT_REQUESTS_PER_MINUTE: '3', RATE_LIMIT_RENDERS_RUNNING: '2', QUOTA_PIXEL_SECONDS_PER_DAY: '1000' });

  async function tooMany(p: Promise<unknown>): Promise<MontageError> {
    const err = (await p.then(() => undefined, (e: unknown) => e)) as MontageError;
    expect(err).toBeInstanceOf(MontageError);
    expect(err.kind).toBe('too_many');
    return err;
  }

  it('requests per minute, per key: the next one is 429 with the seconds until the window ends', async () => {
    const service = new RateLimitsService(memoryStore(), config);
    for (let i = 0; i < 3; i++) await service.countRequest(project(), 'k1');
    const err = await tooMany(service.countRequest(project(), 'k1'));
    expect(err.message).toMatch(/more than 3 requests this minute/);
    expect(err.retryAfterSec).toBe(42);
    await service.countRequest(project(), 'k2'); // another key has its own budget
  });

  it('a project\'s own limits win over the defaults; 0 means none', async () => {
    const store = memoryStore();
    const service = new RateLimitsService(store, config);
    for (let i = 0; i < 10; i++) await service.countRequest(project({ requestsPerMinute: 0 }), 'k');
    expect(store.hit).not.toHaveBeenCalled();
    await service.countRequest(project({ requestsPerMinute: 1 }), 'j');
    await tooMany(service.countRequest(project({ requestsPerMinute: 1 }), 'j'));
  });

  it('renders running: a slot per render, released when it ends; the same render twice takes one slot', async () => {
    const service = new RateLimitsService(memoryStore(), config);
    const a = await service.admitRender(project(), 'k', 'render-a', 10);
    await service.admitRender(project(), 'k', 'render-a', 0);
    const b = await service.admitRender(project(), 'k', 'render-b', 10);
    const err = await tooMany(service.admitRender(project(), 'k', 'render-c', 10));
    expect(err.message).toMatch(/has 2 renders running/);
    a();
    b();
    await new Promise((r) => setImmediate(r));
    (await service.admitRender(project(), 'k', 'render-c', 10))();
  });

  it('pixel-seconds per UTC day: a render that would pass the quota is refused until midnight, and takes no slot', async () => {
    const store = memoryStore();
    const service = new RateLimitsService(store, config);
    (await service.admitRender(project(), 'k', 'r1', 600))();
    const err = await tooMany(service.admitRender(project(), 'k', 'r2', 600));
    expect(err.message).toMatch(/daily quota of 1000 pixel-seconds/);
    expect(err.retryAfterSec).toBeGreaterThan(0);
    expect(err.retryAfterSec).toBeLessThanOrEqual(24 * 3600);
    expect(store.releaseSlot).toHaveBeenLastCalledWith('run:key:k', 'r2');
    (await service.admitRender(project(), 'k', 'r3', 400))(); // what is left still fits
  });

  it('lets everything through while Redis cannot answer', async () => {
    const store = memoryStore();
    store.failing = true;
    const service = new RateLimitsService(store, config);
    for (let i = 0; i < 10; i++) await service.countRequest(project(), 'k');
    const release = await service.admitRender(project(), 'k', 'r', 1e9);
    release();
  });

  it('budgets: the key when there is one, the project for signed URLs', () => {
    expect(budgetOf('acme', 'abc')).toBe('key:abc');
    expect(budgetOf('acme', undefined)).toBe('project:acme');
    expect(utcDay(Date.parse('2026-12-03T23:59:00Z'))).toEqual({ day: '2026-12-03', msLeft: 60_000 });
  });

  it('effective limits fill a project\'s gaps from the service settings', () => {
    const limits = effectiveLimits(project({ rendersRunning: 5 }), config);
    expect(limits).toMatchObject({ requestsPerMinute: 3, rendersRunning: 5, pixelSecondsPerDay: 1000, outputTtlDays: 30, tokenTtlDays: 0, maxStoredBytes: 0 });
  });
});
