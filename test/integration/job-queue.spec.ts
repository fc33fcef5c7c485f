import { Queue } from 'bullmq';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MontageError } from '../../src/common/errors';
import { loadConfig } from '../../src/config/config';
import { EngineName } from '../../src/engines/engine';
import { type FlowJob, JobName, QueueKind, queueName, type RenderSegmentPayload, type RenderSegmentResult } from '../../src/jobs/job.types';
import { JobQueueRepository, redisOptions } from '../../src/repositories/job-queue/job-queue.repository';
import { MediaRepository } from '../../src/repositories/media.repository';
import { RedisRateLimitStore } from '../../src/repositories/rate-limit.repository';
import { planRenderJobs } from '../../src/renders/render-jobs';
import { type RedisProc, startRedis } from '../helpers/processes';

// The queue and rate-limit repositories against a real redis-server: what the render service
// relies on when a render is abandoned, when Redis loses its data, and for long renders.

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-queue-'));
let redis: RedisProc;
let queue: JobQueueRepository;

beforeAll(async () => {
  redis = await startRedis(work);
  queue = new JobQueueRepository(redis.url);
  await queue.whenAvailable();
});
afterAll(async () => {
  await queue.close();
  await redis.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

const payload = (i: number): RenderSegmentPayload => ({
  engine: EngineName.FfmpegComposite,
  renderKey: 'k',
  run: '1',
  project: 't',
  movie: 'colors',
  params: {},
  profile: { format: 'mp4', streamable: true, videoOnly: true },
  channel: `montage:seg:k:1:${i}`,
  progressKey: 'montage:progress:k:1',
  range: { from: i * 10, to: i * 10 + 10 },
  index: i,
});
const noOutput = async () => ({ bytes: 0, frames: 0, node: 'test' });

it('removing an abandoned flow takes every segment not started, while the running one finishes and nothing runs after it', async () => {
  const ranges = [0, 1, 2].map((i) => payload(i).range);
  const jobs = planRenderJobs({
    target: { engine: EngineName.FfmpegComposite, renderKey: 'abandoned', run: '1abcdef', project: 't', movie: 'colors', params: {} },
    format: 'mp4',
    profile: { format: 'mp4', streamable: true },
    routingKey: 'abandon',
    parallel: 2,
    totalFrames: 30,
    fps: 30,
    ranges: [...ranges, { from: 30, to: 40 }],
  });
  if (jobs.kind !== 'distributed') throw new Error('expected a distributed render');
  // One lane of three segments, and a second lane of one that is removed before it runs too.
  const lanes: FlowJob[] = jobs.lanes;
  const ids = (job: FlowJob | undefined): string[] => (job ? [...ids(job.children?.[0]), job.jobId] : []);
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const ran: number[] = [];
  queue.startWorkers(
    QueueKind.Render,
    [queueName('abandon')],
    {
      [JobName.RenderSound]: () => Promise.reject(new Error('no sound jobs in this test')),
      [JobName.RenderFarmFrames]: () => Promise.reject(new Error('no farm jobs in this test')),
      [JobName.InspectScene]: () => Promise.reject(new Error('no farm jobs in this test')),
      [JobName.EncodeTurntable]: () => Promise.reject(new Error('no farm jobs in this test')),
      [JobName.RenderSegment]: async (p) => {
        ran.push(p.range.from);
        if (ran.length === 1) await held;
        return { frames: 10, pieces: 1, node: 'test' } satisfies RenderSegmentResult;
      },
      [JobName.RenderOutput]: noOutput,
    },
    { concurrency: 1 },
  );
  await queue.addFlows([lanes[0]]);
  for (let i = 0; i < 100 && ran.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  expect(ran).toEqual([0]); // the first segment runs; the others wait behind it in their lane

  await queue.removeFlow(queueName('abandon'), lanes[0].jobId);
  release();
  await new Promise((r) => setTimeout(r, 1500));
  expect(ran).toEqual([0]); // the next segment of the lane did not run
  const raw = new Queue(queueName('abandon'), { connection: redisOptions(redis.url) });
  try {
    const [, second] = ids(lanes[0]);
    expect(ids(lanes[0])).toHaveLength(2);
    expect(await raw.getJob(second)).toBeUndefined();
    expect(await raw.getJob(lanes[0].jobId)).toBeUndefined();
  } finally {
    await raw.close();
  }
});

it('a wait for a job that Redis no longer has fails, saying so, instead of waiting for ever', async () => {
  await queue.enqueue(queueName('nobody'), JobName.RenderSegment, payload(0), 'lost-job');
  const waiting = queue.waitFor(queueName('nobody'), 'lost-job', { pollMs: 200 });
  const raw = new Queue(queueName('nobody'), { connection: redisOptions(redis.url) });
  try {
    await raw.remove('lost-job'); // what a Redis that came back without its data looks like
  } finally {
    await raw.close();
  }
  const err = (await waiting.catch((e: unknown) => e)) as MontageError;
  expect(err).toBeInstanceOf(MontageError);
  expect(err.kind).toBe('unavailable');
  expect(err.message).toMatch(/the job queue lost this render/);
});

it("a running render's slot holds between renewals, past its key's first expiry", async () => {
  const store = new RedisRateLimitStore(redis.url);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    for (let i = 0; i < 50 && !(await store.acquireSlot('run:key:lease', 'long', 1, 1000).catch(() => false)); i++) await sleep(50);
    // Leased for 1 s, the key kept 2 s from the first take; renewed at 0.9 s and 1.8 s, as a render renews it.
    await sleep(900);
    expect(await store.acquireSlot('run:key:lease', 'long', 1, 1000)).toBe(true);
    await sleep(900);
    expect(await store.acquireSlot('run:key:lease', 'long', 1, 1000)).toBe(true);
    await sleep(400); // 2.2 s: past the key's first expiry, within the lease renewed at 1.8 s
    expect(await store.acquireSlot('run:key:lease', 'other', 1, 1000)).toBe(false);
    await store.releaseSlot('run:key:lease', 'long');
    expect(await store.acquireSlot('run:key:lease', 'other', 1, 1000)).toBe(true);
  } finally {
    store.close();
  }
});

it('a job handed back on shutdown waits in its queue again without having used an attempt', async () => {
  const local = new JobQueueRepository(redis.url);
  await local.whenAvailable();
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  local.startWorkers(
    QueueKind.Render,
    [queueName('handback')],
    {
      [JobName.RenderSound]: () => Promise.reject(new Error('no sound jobs in this test')),
      [JobName.RenderFarmFrames]: () => Promise.reject(new Error('no farm jobs in this test')),
      [JobName.InspectScene]: () => Promise.reject(new Error('no farm jobs in this test')),
      [JobName.EncodeTurntable]: () => Promise.reject(new Error('no farm jobs in this test')),
      [JobName.RenderSegment]: (_p, ctx) =>
        new Promise<RenderSegmentResult>((_, reject) => {
          started();
          ctx.signal.addEventListener('abort', () => reject(new MontageError('render_failed', 'render cancelled')));
        }),
      [JobName.RenderOutput]: noOutput,
    },
    { concurrency: 1 },
  );
  await local.enqueue(queueName('handback'), JobName.RenderSegment, payload(0), 'handed-back');
  await running;
  await local.drainWorkers(0);
  const raw = new Queue(queueName('handback'), { connection: redisOptions(redis.url) });
  try {
    const job = await raw.getJob('handed-back');
    expect(await job!.getState()).toBe('waiting');
    expect(job!.attemptsMade).toBe(0);
  } finally {
    await raw.close();
    await local.close(500);
  }
});

it('an encoder whose progress does not move is stopped after the stall timeout, saying so', async () => {
  const fifo = path.join(work, 'never-written');
  const { execFileSync } = await import('node:child_process');
  execFileSync('mkfifo', [fifo]); // opening it blocks for ever: an input that never delivers a frame
  const media = new MediaRepository({ ...loadConfig({}), stallTimeoutMs: 1500 });
  const started = Date.now();
  const err = (await media.run(['-hide_banner', '-nostdin', '-loglevel', 'error', '-progress', 'pipe:1', '-nostats', '-i', fifo, '-f', 'null', '-']).catch((e: unknown) => e)) as MontageError;
  expect(err).toBeInstanceOf(MontageError);
  expect(err.message).toMatch(/the render stopped making progress for 2 s and was stopped/);
  expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
  expect(Date.now() - started).toBeLessThan(6000);
});

it('a sound is proven decodable: a good track passes, one with damaged data does not', async () => {
  const media = new MediaRepository(loadConfig({}));
  const tone = path.join(__dirname, '..', 'fixtures', 'templates', 't', 'media', 'tone.m4a');
  expect(await media.decodeProblem(tone, 'audio', 10_000)).toBeUndefined();
  const damaged = path.join(work, 'damaged.m4a');
  const buf = Buffer.from(fs.readFileSync(tone));
  for (let off = 0; off < buf.length; ) {
    const size = buf.readUInt32BE(off);
    if (buf.toString('ascii', off + 4, off + 8) === 'mdat') for (let i = off + 8; i < off + size; i++) buf[i] = 0;
    off += size;
  }
  fs.writeFileSync(damaged, buf);
  expect(await media.decodeProblem(damaged, 'audio', 10_000)).toMatch(/no sound decoded/);
});

it('an assembler (ffmpeg reading a pipe) that stops before its input ends fails instead of hanging or passing', async () => {
  const media = new MediaRepository(loadConfig({}));
  async function* frames() {
    for (let i = 0; i < 2000; i++) yield Buffer.alloc(64 * 1024, i & 255); // far more than the pipe holds
  }
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'rawvideo', '-s', '128x128', '-pix_fmt', 'gray', '-i', 'pipe:0', '-frames:v', '1', '-f', 'null', '-'];
  const started = Date.now();
  const err = (await media.runWithInput(args, frames()).catch((e: unknown) => e)) as MontageError;
  expect(err).toBeInstanceOf(MontageError);
  expect(err.message).toBe('the assembler stopped before the end of the video');
  expect(Date.now() - started).toBeLessThan(10_000);
});
