import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import request from 'supertest';
import { JOB_QUEUE } from '../../src/jobs/queue.module';
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
  expect(embedded[0]).toMatchObject({ routingKeys: ['default'], engines: ['ffmpeg-composite'], pid: process.pid });
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

  const queue = api.app.get<JobQueueRepository>(JOB_QUEUE);
  const range = { from: 30, to: 60 };
  const segment = 'k-30-60.mp4';
  const outputPath = path.join(api.dataDir, 'segments', segment);
  const jobId = segmentJobId('k', range);
  await queue.enqueue(queueName('gpu'), JobName.RenderSegment, {
    renderKey: 'k',
    project: 't',
    movie: 'motion',
    params: {},
    profile: { format: 'mp4', streamable: true, videoOnly: true },
    range,
    segment,
  }, jobId);
  const progress: number[] = [];
  const result = await queue.waitFor<JobName.RenderSegment>(queueName('gpu'), jobId, { onProgress: (v) => progress.push(v) });
  expect(result).toMatchObject({ segment, frames: 30, node: external.id });
  const p = await probe(outputPath);
  expect(p.video?.nb_read_frames).toBe('30');
  expect(p.audio).toBeUndefined();
  expect((await pictTypes(outputPath))[0]).toBe('I');

  node.kill('SIGTERM');
  await until('the node to leave', async () => ((await nodes()).some((n) => n.pid === node!.pid) ? undefined : true));
  node = undefined;
});
