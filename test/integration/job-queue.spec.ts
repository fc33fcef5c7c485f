import { Queue } from 'bullmq';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MontageError } from '../../src/common/errors';
import { loadConfig } from '../../src/config/config';
import { JobName, QueueKind, queueName, type RenderSegmentPayload, type RenderSegmentResult } from '../../src/queue/queue.types';
import { JobQueueRepository, redisOptions } from '../../src/repositories/job-queue.repository';
import { MediaRepository } from '../../src/repositories/media.repository';
import { RedisRateLimitStore } from '../../src/repositories/rate-limit.repository';
import { planRenderFlow } from '../../src/renders/render-flow';
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
  renderKey: 'k',
  project: 't',
  movie: 'colors',
  params: {},
  profile: { format: 'mp4', streamable: true, videoOnly: true },
  range: { from: i * 10, to: i * 10 + 10 },
  segment: `k-${i}.mp4`,
});

it('removing an abandoned flow takes every segment not started, while the running one finishes and nothing runs after it', async () => {
  const ranges = [0, 1, 2].map((i) => payload(i).range);
  const flow = planRenderFlow({ renderKey: 'abandoned', run: '1abcdef', routingKey: 'abandon', parallel: 1, totalFrames: 30, ranges, segment: payload });
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const ran: number[] = [];
  queue.startWorkers(
    QueueKind.Render,
    [queueName('abandon')],
    {
      [JobName.RenderSegment]: async (p) => {
        ran.push(p.range.from);
        if (ran.length === 1) await held;
        return { segment: p.segment, frames: 10, bytes: 1, node: 'test', laneFrames: 10, laneSegments: 1 } satisfies RenderSegmentResult;
      },
    },
    { concurrency: 1 },
  );
  await queue.addFlow(flow.root);
  for (let i = 0; i < 100 && ran.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  expect(ran).toEqual([0]); // the first segment runs; the others wait behind it in their lane

  await queue.removeFlow('montage.assembly', flow.parentId);
  release();
  await new Promise((r) => setTimeout(r, 1500));
  expect(ran).toEqual([0]); // neither the second nor the third segment ran
  const raw = new Queue(queueName('abandon'), { connection: redisOptions(redis.url) });
  try {
    expect(await raw.getJob(flow.segmentIds[1])).toBeUndefined();
    expect(await raw.getJob(flow.segmentIds[2])).toBeUndefined();
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

it("a running render's slot outlives twice its lease while it is renewed", async () => {
  const store = new RedisRateLimitStore(redis.url);
  try {
    for (let i = 0; i < 50 && !(await store.acquireSlot('run:key:lease', 'long', 1, 200).catch(() => false)); i++) await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 150));
      expect(await store.acquireSlot('run:key:lease', 'long', 1, 200)).toBe(true); // renewed
    }
    // 900 ms later, well past the key's first expiry (2 × 200 ms): the slot is still held.
    expect(await store.acquireSlot('run:key:lease', 'other', 1, 200)).toBe(false);
    await store.releaseSlot('run:key:lease', 'long');
    expect(await store.acquireSlot('run:key:lease', 'other', 1, 200)).toBe(true);
  } finally {
    store.close();
  }
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
