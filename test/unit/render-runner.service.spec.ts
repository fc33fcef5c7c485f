import { Logger } from '@nestjs/common';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { MontageError, tooMany } from '../../src/common/errors';
import type { MontageConfig } from '../../src/config/config';
import { EngineName } from '../../src/engines/engine';
import type { EngineRegistry } from '../../src/engines/engines.module';
import { JobName } from '../../src/jobs/job.types';
import type { LifecycleService } from '../../src/lifecycle/lifecycle.service';
import type { RateLimitsService } from '../../src/limits/rate-limits.service';
import type { MetricsService } from '../../src/metrics/metrics.service';
import type { ProjectsService } from '../../src/projects/projects.service';
import { type RenderEvent, RenderEvents } from '../../src/renders/render-events';
import { RenderRunner } from '../../src/renders/render-runner.service';
import type { LocatedOutput, RenderDoc } from '../../src/renders/render.types';
import { NedbDocumentStore } from '../../src/repositories/document-store/nedb';
import type { Collection } from '../../src/repositories/document-store/port';
import type { JobQueueRepository } from '../../src/repositories/job-queue/job-queue.repository';
import type { LiveChannelReader, LiveStreamRepository, ReadEntry } from '../../src/repositories/live-stream/live-stream.repository';
import type { OutputStorage } from '../../src/repositories/output-storage/port';
import type { OutputAccessService } from '../../src/retention/output-access.service';
import type { LiveEntry } from '../../src/streaming/live-entries';

/**
 * Redis Streams in memory: channels every reader of every "process" reads from the start;
 * a read waits for an entry after `after` up to its block time.
 */
class MemoryStreams {
  readonly channels = new Map<string, ReadEntry[]>();
  readonly readers: MemoryReader[] = [];
  private seq = 0;
  private waiters: Array<() => void> = [];

  append(channel: string, entry: LiveEntry): void {
    const entries = this.channels.get(channel) ?? [];
    entries.push({ id: `${++this.seq}-0`, entry });
    this.channels.set(channel, entries);
    for (const wake of this.waiters.splice(0)) wake();
  }

  after(channel: string, after: string): ReadEntry[] {
    const n = Number(after.split('-')[0]);
    return (this.channels.get(channel) ?? []).filter((e) => Number(e.id.split('-')[0]) > n);
  }

  changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** LiveStreamRepository, as the runner uses it. */
  repository(): LiveStreamRepository {
    return {
      reader: () => {
        const reader = new MemoryReader(this);
        this.readers.push(reader);
        return reader as unknown as LiveChannelReader;
      },
      progress: jest.fn(async () => ({})),
    } as unknown as LiveStreamRepository;
  }
}

class MemoryReader {
  readonly channelsRead = new Set<string>();
  closed = 0;
  constructor(private readonly streams: MemoryStreams) {}

  async read(channel: string, after: string, blockMs: number): Promise<ReadEntry[]> {
    this.channelsRead.add(channel);
    const now = this.streams.after(channel, after);
    if (now.length) return now;
    await this.streams.changed(blockMs);
    return this.streams.after(channel, after);
  }

  close(): void {
    this.closed++;
  }
}

const piece = (seq: number, text: string, attempt = 1): LiveEntry => ({ kind: 'data', attempt, seq, data: Buffer.from(text) });

/** Waits for a condition the runner reaches asynchronously. */
async function until(what: string, condition: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function collect(body: AsyncIterable<Buffer>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of body) parts.push(part);
  return Buffer.concat(parts).toString();
}

const PROJECT = { _id: 'acme' };

interface World {
  runner: RenderRunner;
  renders: Collection<RenderDoc>;
  streams: MemoryStreams;
  stored: Map<string, string>;
  queue: { enqueue: jest.Mock; addFlows: jest.Mock; liveNodes: jest.Mock; jobState: jest.Mock };
  limits: { admitRender: jest.Mock };
  release: jest.Mock;
  projects: { get: jest.Mock };
  access: { noteAccess: jest.Mock };
  metrics: { seenQueue: jest.Mock; endTimer: jest.Mock; rendersRunning: { inc: jest.Mock; dec: jest.Mock }; rendersFinished: { inc: jest.Mock } };
  lifecycle: { draining: boolean };
  planRanges: jest.Mock;
  storage: OutputStorage;
  /** What the runner said on its RenderEvents hub, in order. */
  said: RenderEvent[];
}

const stores: NedbDocumentStore[] = [];
const runners: RenderRunner[] = [];
const dirs: string[] = [];

function newStore(): NedbDocumentStore {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'render-runner-'));
  dirs.push(dir);
  const store = new NedbDocumentStore(dir);
  stores.push(store);
  return store;
}

/** A RenderRunner with every dependency faked; `shared` makes a second "API process" on the same store, Redis and storage. */
async function newRunner(shared?: { store: NedbDocumentStore; streams: MemoryStreams; stored: Map<string, string> }): Promise<World & { store: NedbDocumentStore }> {
  const store = shared?.store ?? newStore();
  const streams = shared?.streams ?? new MemoryStreams();
  const stored = shared?.stored ?? new Map<string, string>();
  const storage = {
    kind: 'local',
    description: 'memory',
    init: jest.fn(async () => undefined),
    identity: jest.fn(async () => 'storage-1'),
    stat: jest.fn(async (key: string, ext: string) => {
      const content = stored.get(`${key}.${ext}`);
      return content === undefined ? undefined : { size: content.length, mtime: new Date(0) };
    }),
    read: jest.fn(async (key: string, ext: string, range?: { start: number; end: number }) => {
      const content = stored.get(`${key}.${ext}`) ?? '';
      return Readable.from([Buffer.from(range ? content.slice(range.start, range.end + 1) : content)]);
    }),
  } as unknown as OutputStorage;
  const queue = {
    enqueue: jest.fn(async () => undefined),
    addFlows: jest.fn(async () => undefined),
    liveNodes: jest.fn(async () => [{ routingKeys: ['default'] }]),
    jobState: jest.fn(async () => ({ state: 'active' })),
  };
  const release = jest.fn();
  const limits = { admitRender: jest.fn(async () => release) };
  const projects = { get: jest.fn(async (id: string) => ({ ...PROJECT, _id: id })) };
  const access = { noteAccess: jest.fn() };
  const endTimer = jest.fn();
  const metrics = {
    seenQueue: jest.fn(),
    endTimer,
    firstByteSeconds: { startTimer: jest.fn(() => endTimer) },
    renderSeconds: { startTimer: jest.fn(() => jest.fn()) },
    rendersRunning: { inc: jest.fn(), dec: jest.fn() },
    rendersFinished: { inc: jest.fn() },
  };
  const lifecycle = { draining: false };
  const planRanges = jest.fn((total: number) => [
    { from: 0, to: 30 },
    { from: 30, to: 60 },
    { from: 60, to: total },
  ]);
  const engines = { get: jest.fn((name: EngineName) => ({ name, planRanges })) };
  const config = { queueOutageTimeoutMs: 2000, startupTimeoutMs: 1000 } as MontageConfig;
  const events = new RenderEvents();
  const said: RenderEvent[] = [];
  events.on((e) => void said.push(e));
  const runner = new RenderRunner(
    store,
    config,
    storage,
    queue as unknown as JobQueueRepository,
    streams.repository(),
    engines as unknown as EngineRegistry,
    projects as unknown as ProjectsService,
    limits as unknown as RateLimitsService,
    access as unknown as OutputAccessService,
    metrics as unknown as MetricsService,
    lifecycle as unknown as LifecycleService,
    events,
  );
  runners.push(runner);
  await runner.onModuleInit();
  return { runner, renders: store.collection<RenderDoc>('renders'), streams, stored, queue, limits, release, projects, access, metrics, lifecycle, planRanges, storage, store, said };
}

function located(over: Partial<LocatedOutput> = {}, token: Partial<LocatedOutput['token']> = {}): LocatedOutput {
  return {
    token: {
      _id: 'tok1',
      project: 'acme',
      movie: 'intro' as never,
      params: { name: 'Ada' },
      parallel: 1,
      routingkey: 'default',
      upload: [],
      createdAt: '2026-01-01T00:00:00.000Z',
      renderKeys: [],
      renders: {},
      keyId: 'key-a',
      ...token,
    },
    templateVersion: 'v3',
    format: 'mp4',
    movie: 'intro',
    profile: { format: 'mp4', streamable: true },
    key: 'rk1',
    fps: 30,
    totalFrames: 90,
    pixelSeconds: 1234,
    ...over,
  };
}

const runWatch = (key: string, run: string, queue = 'render.default') => ({
  channel: `montage:live:${key}:${run}`,
  progressKey: `montage:progress:${key}:${run}`,
  queue,
  jobId: `${key}-r${run}`,
});

beforeAll(() => Logger.overrideLogger(false));

afterEach(async () => {
  for (const runner of runners.splice(0)) runner.onModuleDestroy();
  await new Promise((r) => setTimeout(r, 20)); // the follows' last store writes
  for (const store of stores.splice(0)) await store.close();
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('RenderRunner', () => {
  it('serves a stored output without claiming or enqueueing', async () => {
    const w = await newRunner();
    w.stored.set('rk1.mp4', 'stored bytes');
    const delivery = await w.runner.deliver(located(), true);
    expect(delivery).toMatchObject({ kind: 'stored', key: 'rk1', format: 'mp4', size: 12, contentType: 'video/mp4' });
    if (delivery.kind !== 'stored') throw new Error('expected a stored delivery');
    expect(await collect(await delivery.open({ start: 7, end: 11 }))).toBe('bytes');
    expect(w.storage.read).toHaveBeenCalledWith('rk1', 'mp4', { start: 7, end: 11 });
    expect(w.access.noteAccess).toHaveBeenCalledWith('rk1', 12);
    expect(await w.renders.findOne({ _id: 'rk1' })).toBeNull();
    expect(w.queue.enqueue).not.toHaveBeenCalled();
    expect(w.limits.admitRender).not.toHaveBeenCalled();
    expect(w.streams.readers).toHaveLength(0);
    expect(w.runner.counters.started).toBe(0);
  });

  it('the first deliver claims the render, enqueues its RenderOutput job once, and streams its pieces; the end marks it done', async () => {
    const w = await newRunner();
    const delivering = w.runner.deliver(located(), true);
    await until('the job to be enqueued', () => w.queue.enqueue.mock.calls.length > 0);

    const doc = (await w.renders.findOne({ _id: 'rk1' }))!;
    expect(doc.run).toMatch(/^1[0-9a-f]{6}$/);
    const run = doc.run!;
    expect(doc).toMatchObject({ _id: 'rk1', project: 'acme', movie: 'intro', format: 'mp4', status: 'queued', attempts: 1, framesDone: 0, totalFrames: 90, bytes: 0, watch: runWatch('rk1', run) });
    expect(doc.error).toBeUndefined();
    expect(w.queue.enqueue).toHaveBeenCalledTimes(1);
    expect(w.queue.enqueue).toHaveBeenCalledWith(
      'render.default',
      JobName.RenderOutput,
      {
        engine: EngineName.FfmpegComposite,
        routingKey: 'default',
        renderKey: 'rk1',
        run,
        project: 'acme',
        movie: 'intro',
        params: { name: 'Ada' },
        templateVersion: 'v3',
        storageId: 'storage-1',
        profile: { format: 'mp4', streamable: true },
        channel: `montage:live:rk1:${run}`,
        progressKey: `montage:progress:rk1:${run}`,
        totalFrames: 90,
      },
      `rk1-r${run}`,
    );
    expect(w.queue.addFlows).not.toHaveBeenCalled();
    expect(w.planRanges).not.toHaveBeenCalled(); // parallel 1: no ranges
    expect(w.projects.get).toHaveBeenCalledWith('acme');
    expect(w.limits.admitRender).toHaveBeenCalledWith({ _id: 'acme' }, 'key-a', 'rk1', 1234);
    expect(w.metrics.seenQueue).toHaveBeenCalledWith('default', 'render.default');
    expect(w.metrics.rendersRunning.inc).toHaveBeenCalledTimes(1);
    expect(w.runner.counters.started).toBe(1);

    // The node publishes: the viewer gets the pieces as they come.
    const channel = `montage:live:rk1:${run}`;
    w.streams.append(channel, piece(0, 'head|'));
    const delivery = await delivering;
    expect(delivery).toMatchObject({ kind: 'live', key: 'rk1', format: 'mp4', contentType: 'video/mp4' });
    expect(w.metrics.endTimer).toHaveBeenCalledTimes(1);
    if (delivery.kind !== 'live') throw new Error('expected a live delivery');
    const body = collect(delivery.body);
    w.streams.append(channel, piece(1, 'frag1|'));
    w.streams.append(channel, piece(2, 'frag2'));
    expect(w.release).not.toHaveBeenCalled();
    w.streams.append(channel, { kind: 'end', attempt: 1, frames: 90, bytes: 4321 });
    expect(await body).toBe('head|frag1|frag2');

    await until('the record to be done', async () => (await w.renders.findOne({ _id: 'rk1' }))?.status === 'done');
    const done = (await w.renders.findOne({ _id: 'rk1' }))!;
    expect(done).toMatchObject({ status: 'done', bytes: 4321, framesDone: 90, run, attempts: 1 });
    expect(done.lastAccessAt).toEqual(expect.any(String));
    expect(w.release).toHaveBeenCalledTimes(1); // the rate-limit slot is given back at the end
    expect(w.metrics.rendersRunning.dec).toHaveBeenCalledTimes(1);
    expect(w.metrics.rendersFinished.inc).toHaveBeenCalledWith({ status: 'done', format: 'mp4' });
    expect(w.streams.readers).toHaveLength(1); // one follow of the run in this process
    expect(w.streams.readers[0].closed).toBe(1);
    // Said once each, for webhooks and uploads: the token's start, and the render's end as recorded.
    expect(w.said.map((e) => e.type)).toEqual(['render-started', 'render-ended']); // no upload tasks: no output-requested
    expect(w.said.find((e) => e.type === 'render-started')).toMatchObject({ format: 'mp4', key: 'rk1', run, token: { _id: expect.any(String) } });
    expect(w.said.find((e) => e.type === 'render-ended')).toEqual({ type: 'render-ended', key: 'rk1', format: 'mp4', project: 'acme', movie: 'intro', run, status: 'done', bytes: 4321 });
  });

  it('a progress poll that finds the output stored before the follower records it says done with every frame, and so does the record', async () => {
    const w = await newRunner();
    void w.runner.deliver(located(), true).catch(() => undefined);
    await until('the claim', async () => !!(await w.renders.findOne({ _id: 'rk1' }))?.run);
    w.stored.set('rk1.mp4', 'stored bytes'); // the node stored it; its end entry is not read yet
    const doc = (await w.renders.findOne({ _id: 'rk1' }))!;
    expect(doc).toMatchObject({ status: 'queued', framesDone: 0 });
    expect(await w.runner.liveProgress(doc)).toEqual({ status: 'done', framesDone: 90, bytes: 12 });
    expect(await w.renders.findOne({ _id: 'rk1' })).toMatchObject({ status: 'done', framesDone: 90, bytes: 12 });
    expect(w.said.filter((e) => e.type === 'render-ended')).toHaveLength(1);
  });

  it('a non-progressive deliver waits for the end and sends the stored output', async () => {
    const w = await newRunner();
    const delivering = w.runner.deliver(located(), false);
    await until('the claim', async () => !!(await w.renders.findOne({ _id: 'rk1' }))?.run);
    const { run } = (await w.renders.findOne({ _id: 'rk1' }))!;
    w.streams.append(`montage:live:rk1:${run}`, piece(0, 'whole'));
    w.stored.set('rk1.mp4', 'the stored file');
    w.streams.append(`montage:live:rk1:${run}`, { kind: 'end', attempt: 1, frames: 90, bytes: 15 });
    expect(await delivering).toMatchObject({ kind: 'stored', key: 'rk1', size: 15 });
    expect(w.queue.enqueue).toHaveBeenCalledTimes(1);
  });

  it('two concurrent delivers of one key in one process enqueue once and share one follow', async () => {
    const w = await newRunner();
    const both = Promise.all([w.runner.deliver(located(), true), w.runner.deliver(located(), true)]);
    await until('the claim', async () => !!(await w.renders.findOne({ _id: 'rk1' }))?.run);
    const { run } = (await w.renders.findOne({ _id: 'rk1' }))!;
    w.streams.append(`montage:live:rk1:${run}`, piece(0, 'a'));
    w.streams.append(`montage:live:rk1:${run}`, { kind: 'end', attempt: 1, frames: 90, bytes: 1 });
    const [one, two] = await both;
    if (one.kind !== 'live' || two.kind !== 'live') throw new Error('expected live deliveries');
    expect([await collect(one.body), await collect(two.body)]).toEqual(['a', 'a']);
    expect(w.queue.enqueue).toHaveBeenCalledTimes(1);
    expect(w.limits.admitRender).toHaveBeenCalledTimes(1);
    expect(w.runner.counters.started).toBe(1);
    expect(w.streams.readers).toHaveLength(1);
    expect((await w.renders.findOne({ _id: 'rk1' }))!.attempts).toBe(1);
  });

  it('concurrent delivers on two API processes (one store) enqueue exactly once: the store claim decides', async () => {
    for (let round = 0; round < 5; round++) {
      const a = await newRunner();
      const b = await newRunner({ store: a.store, streams: a.streams, stored: a.stored });
      const key = `race${round}`;
      const deliveries = Promise.all([a.runner.deliver(located({ key }), true), b.runner.deliver(located({ key }), true), a.runner.deliver(located({ key }), true), b.runner.deliver(located({ key }), true)]);
      await until('the claim', async () => !!(await a.renders.findOne({ _id: key }))?.run);
      const doc = (await a.renders.findOne({ _id: key }))!;
      a.streams.append(doc.watch!.channel, piece(0, 'x'));
      const results = await deliveries;
      expect(results.map((d) => d.kind)).toEqual(['live', 'live', 'live', 'live']);
      expect(a.queue.enqueue.mock.calls.length + b.queue.enqueue.mock.calls.length).toBe(1);
      expect(a.runner.counters.started + b.runner.counters.started).toBe(1);
      expect(doc.attempts).toBe(1);
      expect(doc.status).toBe('queued');
      // Every follower reads the claimed run's channel.
      for (const reader of a.streams.readers) expect([...reader.channelsRead]).toEqual([doc.watch!.channel]);
      a.streams.append(doc.watch!.channel, { kind: 'end', attempt: 1, frames: 90, bytes: 1 });
    }
  });

  it('joins a render already queued by another process: no claim, no enqueue', async () => {
    const w = await newRunner();
    const watch = runWatch('rk1', '1abcdef');
    const at = '2026-01-01T00:00:00.000Z';
    await w.renders.insertOne({ _id: 'rk1', project: 'acme', movie: 'intro', format: 'mp4', status: 'queued', run: '1abcdef', watch, attempts: 1, bytes: 0, framesDone: 0, totalFrames: 90, createdAt: at, updatedAt: at });
    const delivering = w.runner.deliver(located(), true);
    await until('a reader', () => w.streams.readers.length > 0);
    w.streams.append(watch.channel, piece(0, 'theirs'));
    const delivery = await delivering;
    expect(delivery.kind).toBe('live');
    expect(w.queue.enqueue).not.toHaveBeenCalled();
    expect(w.limits.admitRender).not.toHaveBeenCalled();
    expect(w.runner.counters.started).toBe(0);
    expect([...w.streams.readers[0].channelsRead]).toEqual([watch.channel]);
    const doc = (await w.renders.findOne({ _id: 'rk1' }))!;
    expect(doc).toMatchObject({ status: 'queued', run: '1abcdef', attempts: 1, updatedAt: at });
    // The joiner records the end as well.
    w.streams.append(watch.channel, { kind: 'end', attempt: 1, frames: 90, bytes: 6 });
    await until('the record to be done', async () => (await w.renders.findOne({ _id: 'rk1' }))?.status === 'done');
    expect((await w.renders.findOne({ _id: 'rk1' }))!.bytes).toBe(6);
    expect(w.metrics.rendersFinished.inc).not.toHaveBeenCalled(); // counted by the claimer
  });

  it('a failing enqueue gives the claim back (failed, saying why, no run) and rethrows; the next request claims again', async () => {
    const w = await newRunner();
    const down = new Error('Redis is down');
    w.queue.enqueue.mockRejectedValueOnce(down);
    await expect(w.runner.deliver(located(), true)).rejects.toBe(down);
    const doc = (await w.renders.findOne({ _id: 'rk1' }))!;
    expect(doc.status).toBe('failed'); // progress says why
    expect(doc.error).toBe('Redis is down');
    expect(doc.run).toBeUndefined();
    expect(doc.watch).toBeUndefined();
    expect(doc.attempts).toBe(1);
    expect(w.release).toHaveBeenCalledTimes(1); // the admitted slot is given back
    expect(w.metrics.rendersRunning.inc).not.toHaveBeenCalled();
    expect(w.runner.counters.started).toBe(0);
    expect(w.streams.readers).toHaveLength(0);

    const again = w.runner.deliver(located(), true);
    await until('a second claim', async () => !!(await w.renders.findOne({ _id: 'rk1' }))?.run);
    const second = (await w.renders.findOne({ _id: 'rk1' }))!;
    expect(second).toMatchObject({ status: 'queued', attempts: 2 });
    expect(second.run).toMatch(/^2[0-9a-f]{6}$/);
    expect(w.queue.enqueue).toHaveBeenCalledTimes(2);
    expect(w.queue.enqueue.mock.calls[1][3]).toBe(`rk1-r${second.run}`);
    w.streams.append(second.watch!.channel, piece(0, 'x'));
    expect((await again).kind).toBe('live');
  });

  it('refused by the rate limits: the claim is given back and nothing is enqueued', async () => {
    const w = await newRunner();
    const refusal = tooMany('this API key has 2 renders running', 5);
    w.limits.admitRender.mockRejectedValueOnce(refusal);
    await expect(w.runner.deliver(located(), true)).rejects.toBe(refusal);
    const doc = (await w.renders.findOne({ _id: 'rk1' }))!;
    expect(doc).toMatchObject({ status: 'pending', attempts: 1 });
    expect(doc.run).toBeUndefined();
    expect(doc.watch).toBeUndefined();
    expect(w.queue.enqueue).not.toHaveBeenCalled();
    expect(w.release).not.toHaveBeenCalled();
    expect(w.streams.readers).toHaveLength(0);
  });

  it('while draining, new claims are refused with a 503 and no record is made', async () => {
    const w = await newRunner();
    w.lifecycle.draining = true;
    const err = await w.runner.deliver(located(), true).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MontageError);
    expect(err).toMatchObject({ kind: 'unavailable', message: 'this API process is shutting down; request the output again in a moment', retryAfterSec: 2 });
    expect((err as MontageError).httpStatus).toBe(503);
    expect(await w.renders.findOne({ _id: 'rk1' })).toBeNull();
    expect(w.queue.enqueue).not.toHaveBeenCalled();
    // A pending record is not claimed either.
    const at = '2026-01-01T00:00:00.000Z';
    await w.renders.insertOne({ _id: 'rk2', project: 'acme', movie: 'intro', format: 'mp4', status: 'pending', attempts: 0, bytes: 0, framesDone: 0, totalFrames: 90, createdAt: at, updatedAt: at });
    await expect(w.runner.deliver(located({ key: 'rk2' }), true)).rejects.toMatchObject({ kind: 'unavailable' });
    expect((await w.renders.findOne({ _id: 'rk2' }))!.status).toBe('pending');
  });

  it('shutting down ends followers with a 503 and leaves the record for another process', async () => {
    const w = await newRunner();
    const delivering = w.runner.deliver(located(), false);
    await until('the claim', async () => !!(await w.renders.findOne({ _id: 'rk1' }))?.run);
    w.runner.onModuleDestroy();
    await expect(delivering).rejects.toMatchObject({ kind: 'unavailable', message: 'this API process is shutting down; request the output again' });
    await new Promise((r) => setTimeout(r, 20));
    expect((await w.renders.findOne({ _id: 'rk1' }))!.status).toBe('queued');
    expect(w.metrics.rendersFinished.inc).not.toHaveBeenCalled();
  });

  it('an error entry fails the render: the record says why', async () => {
    const w = await newRunner();
    const delivering = w.runner.deliver(located(), true);
    await until('the claim', async () => !!(await w.renders.findOne({ _id: 'rk1' }))?.run);
    const { run } = (await w.renders.findOne({ _id: 'rk1' }))!;
    w.streams.append(`montage:live:rk1:${run}`, { kind: 'error', message: 'the template has no such layer' });
    await expect(delivering).rejects.toMatchObject({ kind: 'render_failed', message: 'the template has no such layer' });
    await until('the record to be failed', async () => (await w.renders.findOne({ _id: 'rk1' }))?.status === 'failed');
    expect((await w.renders.findOne({ _id: 'rk1' }))!.error).toBe('the template has no such layer');
    expect(w.metrics.rendersFinished.inc).toHaveBeenCalledWith({ status: 'failed', format: 'mp4' });
    expect(w.release).toHaveBeenCalledTimes(1);
    expect(w.said.filter((e) => e.type === 'render-ended')).toEqual([
      { type: 'render-ended', key: 'rk1', format: 'mp4', project: 'acme', movie: 'intro', run, status: 'failed', error: 'the template has no such layer' },
    ]);
  });

  it('parallel 2 mp4: the assembly job, then the segment lanes as flows; followers watch the assembly', async () => {
    const w = await newRunner();
    const delivering = w.runner.deliver(located({}, { parallel: 2 }), true);
    await until('the lanes to be enqueued', () => w.queue.addFlows.mock.calls.length > 0);
    const doc = (await w.renders.findOne({ _id: 'rk1' }))!;
    const run = doc.run!;
    expect(doc.watch).toEqual(runWatch('rk1', run, 'montage.assembly'));
    expect(w.planRanges).toHaveBeenCalledWith(90, 30, 2, undefined); // no timing known for a composite
    expect(w.queue.addFlows).toHaveBeenCalledTimes(1);
    const lanes = w.queue.addFlows.mock.calls[0][0] as Array<{ jobId: string; children?: Array<{ jobId: string }> }>;
    expect(lanes.map((l) => [l.jobId, l.children?.map((c) => c.jobId)])).toEqual([
      [`rk1-r${run}-60-90`, [`rk1-r${run}-0-30`]],
      [`rk1-r${run}-30-60`, undefined],
    ]);
    expect(w.queue.enqueue).toHaveBeenCalledTimes(1);
    expect(w.queue.enqueue.mock.calls[0].slice(0, 2)).toEqual(['montage.assembly', JobName.AssembleRender]);
    expect(w.queue.enqueue.mock.calls[0][3]).toBe(`rk1-r${run}`);
    // The assembly first: lanes without it would render for nobody.
    expect(w.queue.enqueue.mock.invocationCallOrder[0]).toBeLessThan(w.queue.addFlows.mock.invocationCallOrder[0]);
    w.streams.append(doc.watch!.channel, piece(0, 'joined'));
    expect((await delivering).kind).toBe('live');
  });
});
