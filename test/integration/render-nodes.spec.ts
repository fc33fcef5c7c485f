import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import request from 'supertest';
import * as fs from 'node:fs';
import { EngineName } from '../../src/engines/engine';
import { JOB_QUEUE, LIVE_STREAM } from '../../src/jobs/queue.module';
import type { LiveStreamRepository } from '../../src/repositories/live-stream/live-stream.repository';
import { segmentChannel } from '../../src/streaming/live-entries';
import { JobName, type NodeHeartbeat, queueName, segmentJobId } from '../../src/jobs/job.types';
import type { JobQueueRepository } from '../../src/repositories/job-queue/job-queue.repository';
import { type ApiApp, startApi } from '../helpers/api-app';
import { pictTypes, probe } from '../helpers/media';
import { until } from '../helpers/wait';
import { FIXTURE_TEMPLATES } from '../helpers/render-context';

// Render nodes are separate processes pulling segment jobs from BullMQ on a real redis-server
// (the API's private one here), announcing themselves with heartbeats.
let api: ApiApp;
let node: ChildProcess | undefined;
const NODE = path.join(__dirname, '..', '..', 'dist', 'render-nodes', 'main.js');

beforeAll(async () => {
  api = await startApi();
});
afterAll(async () => {
  node?.kill('SIGKILL');
  await api.close();
});

async function nodes(): Promise<NodeHeartbeat[]> {
  return (await request(api.url).get('/v2/nodes').expect(200)).body.nodes;
}


it('the embedded node and a separate render-node process announce themselves; a segment job runs on the node of its routing key', async () => {
  const embedded = await nodes();
  expect(embedded).toHaveLength(1);
  expect(embedded[0]).toMatchObject({ routingKeys: ['default'], engines: ['ffmpeg-composite', 'blender'], pid: process.pid });
  // Blender (Debian's, CPU only here) is advertised with its version and the Cycles devices it sees.
  expect(embedded[0].blender).toEqual({ version: expect.stringMatching(/^\d+\.\d+/), devices: ['CPU'] });
  expect(embedded[0].encoders).toEqual(expect.arrayContaining(['libx264', 'libvpx-vp9']));

  node = spawn('node', [NODE], {
    env: {
      ...process.env,
      REDIS_URL: `unix://${path.join(api.dataDir, 'redis', 'redis.sock')}`,
      ROUTING_KEYS: 'gpu',
      MONTAGE_TEMPLATES_DIR: FIXTURE_TEMPLATES,
      MONTAGE_DATA_DIR: api.dataDir,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const external = await until('the render node', async () => (await nodes()).find((n) => n.pid === node!.pid));
  expect(external.routingKeys).toEqual(['gpu']);
  expect(external.engines).toEqual(['ffmpeg-composite', 'blender']);

  const queue = api.app.get<JobQueueRepository>(JOB_QUEUE);
  const live = api.app.get<LiveStreamRepository>(LIVE_STREAM);
  const range = { from: 30, to: 60 };
  const channel = segmentChannel('k', '1', 1);
  const jobId = segmentJobId('k', '1', range);
  await queue.enqueue(queueName('gpu'), JobName.RenderSegment, {
    engine: EngineName.FfmpegComposite,
    renderKey: 'k',
    run: '1',
    project: 't',
    movie: 'motion',
    params: {},
    profile: { format: 'mp4', streamable: true, videoOnly: true },
    channel,
    progressKey: 'montage:progress:k:1',
    range,
    index: 1,
  }, jobId);
  const progress: number[] = [];
  const result = await queue.waitFor<JobName.RenderSegment>(queueName('gpu'), jobId, { onProgress: (v) => progress.push(v) });
  expect(result).toMatchObject({ frames: 30, node: external.id });
  // The segment went out piece by piece on its channel: a header, then one fragment per GOP, then its end.
  const reader = live.reader();
  const entries = await reader.read(channel, '0', 1000, 1000);
  reader.close();
  const data = entries.map((e) => e.entry).filter((e) => e.kind === 'data');
  expect(data.length).toBe(result.pieces);
  expect(data.length).toBeGreaterThan(2);
  expect(entries.at(-1)!.entry).toMatchObject({ kind: 'end', frames: 30 });
  const outputPath = path.join(api.dataDir, 'segment-k-30-60.mp4');
  fs.writeFileSync(outputPath, Buffer.concat(data.map((e) => (e.kind === 'data' ? e.data : Buffer.alloc(0)))));
  const p = await probe(outputPath);
  expect(p.video?.nb_read_frames).toBe('30');
  expect(p.audio).toBeUndefined();
  expect((await pictTypes(outputPath))[0]).toBe('I');

  node.kill('SIGTERM');
  await until('the node to leave', async () => ((await nodes()).some((n) => n.pid === node!.pid) ? undefined : true));
  node = undefined;
});
