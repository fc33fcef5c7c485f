import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import request from 'supertest';
import { distributedPlanOptions, planSegments } from '../../src/streaming/segment-planner';
import { JOB_QUEUE } from '../../src/jobs/queue.module';
import { ASSEMBLY_QUEUE, type JobName, runJobId } from '../../src/jobs/job.types';
import { LIVE_STREAM } from '../../src/jobs/queue.module';
import type { LiveStreamRepository } from '../../src/repositories/live-stream/live-stream.repository';
import { segmentChannel } from '../../src/streaming/live-entries';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { JobQueueRepository } from '../../src/repositories/job-queue/job-queue.repository';
import { DOCUMENT_STORE, type DocumentStore } from '../../src/repositories/document-store/port';
import { type ApiApp, startApi } from '../helpers/api-app';
import { expectSoundMatchesPicture, pictTypes, probe, ssimPerFrame, streamSpans } from '../helpers/media';
import { until } from '../helpers/wait';
import { FIXTURE_TEMPLATES, renderContext } from '../helpers/render-context';

// The API (no embedded node) and render-node processes on one machine, sharing the API's
// private redis-server and its data dir.
const execFileP = promisify(execFile);
let api: ApiApp;
const nodes: ChildProcess[] = [];
const NODE = path.join(__dirname, '..', '..', 'dist', 'render-nodes', 'main.js');

function startNode(routingKeys = 'default', extraEnv: Record<string, string> = {}): ChildProcess {
  const child = spawn('node', [NODE], {
    env: {
      ...process.env,
      REDIS_URL: `unix://${path.join(api.dataDir, 'redis', 'redis.sock')}`,
      ROUTING_KEYS: routingKeys,
      MONTAGE_TEMPLATES_DIR: FIXTURE_TEMPLATES,
      MONTAGE_DATA_DIR: api.dataDir,
      SEGMENT_LOCK_MS: '2000', // a killed node's segment is taken over within seconds
      STALLED_CHECK_MS: '1000',
      ...extraEnv,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  nodes.push(child);
  return child;
}


const liveNodes = async () => (await request(api.url).get('/v2/nodes').expect(200)).body.nodes as Array<{ pid: number; routingKeys: string[] }>;
const post = (body: object) => request(api.url).post('/v2/render/t').set('X-Api-Key', api.key).send(body).expect(200);
const progress = async (token: string) => (await request(api.url).get(`/v2/progress/${token}`)).body;
// A stream ends when the video is complete; the stored file follows a moment later.
const stored = (token: string) => until('the output to be stored', async () => ((await progress(token)).status === 'done' ? true : undefined), 10_000);

/** The stored output, fetched once the render is done. */
async function storedCopy(token: string, name: string): Promise<string> {
  await stored(token);
  const res = await request(api.url).get(`/v2/get/${token}.mp4`).buffer(true).expect(200);
  expect(res.headers['x-montage-status']).toBe('done');
  const file = path.join(api.dataDir, name);
  fs.writeFileSync(file, res.body);
  return file;
}

/** Presentation times of every video frame. */
async function framePts(file: string): Promise<number[]> {
  const { stdout } = await execFileP('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts', '-of', 'json', file]);
  return (JSON.parse(stdout) as { frames: Array<{ pts: number }> }).frames.map((f) => f.pts);
}

beforeAll(async () => {
  api = await startApi({ env: { EMBEDDED_RENDER_NODE: '0' } });
  startNode();
  startNode();
  await until('two render nodes', async () => ((await liveNodes()).length === 2 ? true : undefined));
});
afterAll(async () => {
  for (const n of nodes) n.kill('SIGKILL');
  await api.close();
});

it('parallel: 2 streams a joined video whose frames, keyframes and sound are those of one pass', async () => {
  const created = await post({ movie: 'motion', parallel: 2 });
  const file = path.join(api.dataDir, 'parallel.mp4');
  const res = await fetch(`${api.url}/v2/get/${created.body.token}.mp4`);
  expect(res.status).toBe(200);
  fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));

  const p = await probe(file);
  expect(p.video).toMatchObject({ codec_name: 'h264', nb_read_frames: '69' });
  expect(p.audio?.codec_name).toBe('aac');
  const types = await pictTypes(file);
  for (const r of planSegments(69, distributedPlanOptions(30, 2))) expect(types[r.from]).toBe('I');

  const single = await renderContext();
  try {
    const whole = single.out('whole.mp4');
    await single.renders.render({ project: 't', movie: 'motion', params: {}, profile: { format: 'mp4' } }, whole);
    // Each segment is its own x264 pass at CRF 23: compression noise, not a wrong frame (0.9897 seen here).
    expect(Math.min(...(await ssimPerFrame(whole, file, 0, 69)))).toBeGreaterThanOrEqual(0.985);
  } finally {
    await single.close();
  }
  await stored(created.body.token);
  expect(await progress(created.body.token)).toMatchObject({ status: 'done', framesDone: 69, totalFrames: 69 });
  // One run: its assembly job (on a node, not in the API) joined every frame and stored the output.
  const [render] = await api.app.get<DocumentStore>(DOCUMENT_STORE).collection<{ _id: string; run: string }>('renders').find({ movie: 'motion', format: 'mp4' });
  expect(render.run).toMatch(/^1[0-9a-f]{6}$/);
  const queue = api.app.get<JobQueueRepository>(JOB_QUEUE);
  const assembled = await queue.waitFor<JobName.AssembleRender>(ASSEMBLY_QUEUE, runJobId(render._id, render.run));
  expect(assembled).toMatchObject({ frames: 69, bytes: (await progress(created.body.token)).formats.mp4.bytes });
  expect(assembled.node).not.toContain(`-${process.pid}`); // EMBEDDED_RENDER_NODE=0: nothing ran in the API
  // The segments' channels went once joined.
  const live = api.app.get<LiveStreamRepository>(LIVE_STREAM);
  for (let i = 0; i < 3; i++) expect(await live.exists(segmentChannel(render._id, render.run, i))).toBe(false);
  const again = await request(api.url).get(`/v2/get/${created.body.token}.mp4`).buffer(true).expect(200);
  expect(again.headers['x-montage-status']).toBe('done');
  // Joined picture and sound mixed apart: served and stored, they start together and end together.
  const storedFile = path.join(api.dataDir, 'parallel-stored.mp4');
  fs.writeFileSync(storedFile, again.body);
  for (const f of [file, storedFile]) {
    const spans = await streamSpans(f);
    expectSoundMatchesPicture(spans);
    expect(spans.video.end).toBeCloseTo(2.3, 3);
  }
});

it('parallel: 2 for webm joins VP9 segments into one live WebM, stored with cues, matching one pass', async () => {
  const created = await post({ movie: 'motion', parallel: 2 });
  const res = await fetch(`${api.url}/v2/get/${created.body.token}.webm`);
  expect(res.status).toBe(200);
  expect(res.headers.get('x-montage-status')).toBe('rendering');
  const file = path.join(api.dataDir, 'parallel.webm');
  fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));

  const p = await probe(file);
  expect(p.formatName).toMatch(/webm/);
  expect(p.video).toMatchObject({ codec_name: 'vp9', nb_read_frames: '69' });
  expect(p.audio?.codec_name).toBe('opus');
  const types = await pictTypes(file);
  for (const r of planSegments(69, distributedPlanOptions(30, 2))) expect(types[r.from]).toBe('I');

  const single = await renderContext();
  try {
    const whole = single.out('whole.webm');
    await single.renders.render({ project: 't', movie: 'motion', params: {}, profile: { format: 'webm' } }, whole);
    expect(Math.min(...(await ssimPerFrame(whole, file, 0, 69)))).toBeGreaterThanOrEqual(0.98);
  } finally {
    await single.close();
  }
  await stored(created.body.token);
  const again = await request(api.url).get(`/v2/get/${created.body.token}.webm`).buffer(true).expect(200);
  expect(again.headers['x-montage-status']).toBe('done');
  const storedFile = path.join(api.dataDir, 'stored.webm');
  fs.writeFileSync(storedFile, again.body);
  const sp = await probe(storedFile);
  expect(sp.video?.nb_read_frames).toBe('69');
  expect(sp.durationSec).toBeCloseTo(2.3, 1);
  // Opus's pre-skip moves WebM streams by 6.5 ms in ffmpeg 5.1's muxer (see audio-sync.spec.ts).
  for (const f of [file, storedFile]) expectSoundMatchesPicture(await streamSpans(f), 0.015);
});

it('a routing key with no live node stays queued, and renders once a node for it starts', async () => {
  const created = await post({ movie: 'colors', params: { label: 'gpu' }, parallel: 2, routingkey: 'gpu' });
  const body = fetch(`${api.url}/v2/render/${created.body.token}.mp4`).then((r) => r.arrayBuffer());
  await until('queued', async () => ((await progress(created.body.token)).status === 'queued' ? true : undefined), 10_000);
  await new Promise((r) => setTimeout(r, 500));
  expect((await progress(created.body.token)).status).toBe('queued');
  const gpu = startNode('gpu');
  const bytes = await body;
  expect(bytes.byteLength).toBeGreaterThan(1000);
  await stored(created.body.token);
  gpu.kill('SIGTERM');
});

it('a node killed mid-render: its segment is taken over and the video is complete', async () => {
  const created = await post({ movie: 'slow', parallel: 2 });
  const file = path.join(api.dataDir, 'survived.mp4');
  const body = fetch(`${api.url}/v2/get/${created.body.token}.mp4`).then(async (r) => fs.writeFileSync(file, Buffer.from(await r.arrayBuffer())));
  await until('rendering', async () => ((await progress(created.body.token)).framesDone > 0 ? true : undefined), 30_000);
  const victim = nodes.find((n) => n.exitCode === null && !n.killed)!;
  victim.kill('SIGKILL');
  startNode(); // a replacement, as an operator or a supervisor would start
  await body;
  // Pieces the killed node had published are not shown twice: the stream and the stored file
  // hold every frame once, in order.
  for (const f of [file, await storedCopy(created.body.token, 'survived-stored.mp4')]) {
    expect((await probe(f)).video?.nb_read_frames).toBe('240');
    const pts = await framePts(f);
    expect(pts).toHaveLength(240);
    expect(new Set(pts).size).toBe(240);
    expect(pts).toEqual([...pts].sort((a, b) => a - b));
  }
});

it('a segment that fails on every attempt fails the render, says why, and ends the request instead of hanging', async () => {
  // A node whose ffmpeg cannot run: every attempt of every segment fails there.
  const broken = startNode('broken', { FFMPEG_PATH: '/bin/false' });
  await until('the broken node', async () => ((await liveNodes()).some((n) => n.pid === broken.pid) ? true : undefined));
  const created = await post({ movie: 'colors', params: { label: 'doomed' }, parallel: 2, routingkey: 'broken' });
  const res = await request(api.url).get(`/v2/get/${created.body.token}.mp4`);
  expect(res.status).toBe(500);
  expect(res.body.message).toMatch(/ffmpeg failed/);
  const p = await progress(created.body.token);
  expect(p.status).toBe('failed');
  expect(p.error).toMatch(/ffmpeg failed/);
  broken.kill('SIGTERM');
});

it('a node whose storage is not the API\'s refuses its segments at once, and the render fails saying so', async () => {
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-other-node-'));
  const stray = startNode('stray', { MONTAGE_DATA_DIR: elsewhere });
  try {
    await until('the stray node', async () => ((await liveNodes()).some((n) => n.pid === stray.pid) ? true : undefined));
    const created = await post({ movie: 'colors', params: { label: 'stray' }, parallel: 2, routingkey: 'stray' });
    const res = await request(api.url).get(`/v2/get/${created.body.token}.mp4`);
    expect(res.status).toBe(500); // the operator's to fix, not the client's
    expect(res.body.message).toMatch(/a render node's storage is not the API's: give the API and every node the same STORAGE_URL/);
    expect(res.body.message).not.toContain(elsewhere); // paths stay in the node's log
    expect(fs.existsSync(path.join(elsewhere, 'outputs')) ? fs.readdirSync(path.join(elsewhere, 'outputs')) : []).toEqual([]); // nothing stored where the API never looks
  } finally {
    stray.kill('SIGTERM');
    fs.rmSync(elsewhere, { recursive: true, force: true });
  }
});
