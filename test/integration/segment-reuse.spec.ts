import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import request from 'supertest';
import { queueName } from '../../src/jobs/job.types';
import { DOCUMENT_STORE, type DocumentStore } from '../../src/repositories/document-store/port';
import type { RenderSegmentPayload, RenderSegmentResult } from '../../src/jobs/job.types';
import { type ApiApp, startApi } from '../helpers/api-app';
import { frameAt, pixel, probe, ssimPerFrame } from '../helpers/media';
import { FIXTURE_TEMPLATES, renderContext } from '../helpers/render-context';
import { until } from '../helpers/wait';

// Re-rendering only what a change touches: the API and two render-node processes, real Redis,
// the `greeting` fixture (a name in its first 3 s, an accent colour from 3.2 s).
const execFileP = promisify(execFile);
const NODE = path.join(__dirname, '..', '..', 'dist', 'render-nodes', 'main.js');
let api: ApiApp;
const nodes: ChildProcess[] = [];
let queue: Queue;

const post = (body: object) => request(api.url).post('/v2/render/t').set('X-Api-Key', api.key).send(body).expect(200);
const progress = async (token: string) => (await request(api.url).get(`/v2/progress/${token}`)).body;

/** The stored mp4 of a token, rendered (and followed as a viewer would) first. */
async function renderStored(token: string, name: string): Promise<string> {
  const res = await fetch(`${api.url}/v2/get/${token}.mp4`);
  expect(res.status).toBe(200);
  await res.arrayBuffer();
  await until('the output to be stored', async () => ((await progress(token)).status === 'done' ? true : undefined), 20_000);
  const stored = await request(api.url).get(`/v2/get/${token}.mp4`).buffer(true).expect(200);
  const file = path.join(api.dataDir, name);
  fs.writeFileSync(file, stored.body);
  return file;
}

/** The render key of a token's mp4. */
async function renderKeyOf(token: string): Promise<string> {
  const doc = await api.app.get<DocumentStore>(DOCUMENT_STORE).collection<{ _id: string; renders: { mp4?: string } }>('tokens').findOne({ _id: token });
  return doc!.renders.mp4!;
}

/** The segment jobs the nodes ran for one render, with their ranges and whether they rendered. */
async function segmentJobs(renderKey: string): Promise<Array<{ from: number; to: number; reused: boolean }>> {
  const jobs = await queue.getJobs(['completed']);
  return jobs
    .filter((j) => j.name === 'render-segment' && (j.data as RenderSegmentPayload).renderKey === renderKey)
    .map((j) => ({ ...(j.data as RenderSegmentPayload).range, reused: !!(j.returnvalue as RenderSegmentResult).reused }))
    .sort((a, b) => a.from - b.from);
}

/** Decoded frames of a file, one md5 each. */
async function frameHashes(file: string): Promise<string[]> {
  const { stdout } = await execFileP('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:v', '-f', 'framemd5', '-'], { maxBuffer: 16 * 1024 * 1024 });
  return stdout
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(',').pop()!.trim());
}

beforeAll(async () => {
  api = await startApi({ env: { EMBEDDED_RENDER_NODE: '0' } });
  const redis = `unix://${path.join(api.dataDir, 'redis', 'redis.sock')}`;
  for (let i = 0; i < 2; i++) {
    nodes.push(
      spawn('node', [NODE], {
        env: { ...process.env, REDIS_URL: redis, MONTAGE_TEMPLATES_DIR: FIXTURE_TEMPLATES, MONTAGE_DATA_DIR: api.dataDir },
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
    );
  }
  await until('two render nodes', async () => ((await request(api.url).get('/v2/nodes')).body.nodes.length === 2 ? true : undefined));
  queue = new Queue(queueName('default'), { connection: { path: path.join(api.dataDir, 'redis', 'redis.sock') } });
});
afterAll(async () => {
  await queue?.close();
  for (const n of nodes) n.kill('SIGKILL');
  await api.close();
});

it('a second render differing in a name shown early renders only the segments that show it; both are frame-exact', async () => {
  const a = (await post({ movie: 'greeting', parallel: 2, params: { name: 'Ada' } })).body.token as string;
  const fileA = await renderStored(a, 'ada.mp4');
  const jobsA = await segmentJobs(await renderKeyOf(a));
  // Cut where the accent starts being drawn (frame 96; the name is gone from 90): every segment is rendered once.
  expect(jobsA.length).toBeGreaterThanOrEqual(3);
  expect(jobsA.every((j) => !j.reused)).toBe(true);
  expect(jobsA.some((j) => j.from === 96)).toBe(true);
  expect(jobsA[jobsA.length - 1].to).toBe(171); // 3 s + 3 s less the 0.3 s crossfade

  const b = (await post({ movie: 'greeting', parallel: 2, params: { name: 'Grace Hopper' } })).body.token as string;
  const fileB = await renderStored(b, 'grace.mp4');
  const jobsB = await segmentJobs(await renderKeyOf(b));
  // Only the segments where the name is drawn ran again; none after it.
  expect(jobsB.length).toBeGreaterThan(0);
  expect(jobsB.length).toBeLessThan(jobsA.length);
  expect(jobsB.every((j) => j.from < 96)).toBe(true);
  expect(jobsB.map((j) => `${j.from}-${j.to}`)).toEqual(jobsA.filter((j) => j.from < 96).map((j) => `${j.from}-${j.to}`));
  expect((await progress(b)).formats.mp4).toMatchObject({ status: 'done', framesDone: 171, totalFrames: 171 });

  for (const file of [fileA, fileB]) {
    const probed = await probe(file);
    expect(probed.video).toMatchObject({ codec_name: 'h264', nb_read_frames: '171' });
    expect(probed.audio?.codec_name).toBe('aac');
  }
  // The sound track is keyed the same way: both renders' (silent) sound is one stored file.
  const stored = fs.readdirSync(path.join(api.dataDir, 'outputs'));
  expect(stored.filter((f) => /^sd[0-9a-f]{40}\.m4a$/.test(f))).toHaveLength(1);
  expect(stored.filter((f) => /^sg[0-9a-f]{40}\.mp4$/.test(f))).toHaveLength(jobsA.length + jobsB.length);
  // Where nothing differs the frames are the same decoded pixels (they are the same segments); where the name is, they differ.
  const [hashesA, hashesB] = [await frameHashes(fileA), await frameHashes(fileB)];
  expect(hashesA).toHaveLength(171);
  expect(hashesB.slice(96)).toEqual(hashesA.slice(96));
  expect(hashesB.slice(15, 80).filter((h, i) => h !== hashesA[15 + i]).length).toBe(65);
  // Against single passes of each: every frame the same picture (each segment is its own x264 pass).
  const single = await renderContext();
  try {
    for (const [name, file] of [['Ada', fileA], ['Grace Hopper', fileB]] as const) {
      const whole = single.out(`${name}.mp4`);
      await single.renders.render({ project: 't', movie: 'greeting', params: { name }, profile: { format: 'mp4' } }, whole);
      expect(Math.min(...(await ssimPerFrame(whole, file, 0, 171)))).toBeGreaterThanOrEqual(0.985);
    }
  } finally {
    await single.close();
  }
  // The longer name reaches further right on its frames.
  const right = (file: string) => frameAt(file, 30, 320, 180).then((f) => pixel(f, 230, 75));
  expect(Math.max(...(await right(fileB)))).toBeGreaterThan(Math.max(...(await right(fileA))) + 60);
});

it('a param drawn only late (the accent) re-renders only the late segments', async () => {
  const c = (await post({ movie: 'greeting', parallel: 2, params: { name: 'Ada', accent: '#00ffff' } })).body.token as string;
  await renderStored(c, 'accent.mp4');
  const jobs = await segmentJobs(await renderKeyOf(c));
  expect(jobs.length).toBeGreaterThan(0);
  expect(jobs.map((j) => `${j.from}-${j.to}`)).toEqual(['96-171']);
});

it('two renders needing the same missing segment at once render it once: the other node waits for it and publishes the stored one', async () => {
  const params = (name: string) => ({ movie: 'greeting', parallel: 2, params: { name, accent: '#ff00ff' } });
  const [x, y] = [(await post(params('Kim'))).body.token as string, (await post(params('Lee'))).body.token as string];
  const [fileX, fileY] = await Promise.all([renderStored(x, 'kim.mp4'), renderStored(y, 'lee.mp4')]);
  const shared = [...(await segmentJobs(await renderKeyOf(x))), ...(await segmentJobs(await renderKeyOf(y)))].filter((j) => j.from === 96);
  // The API of each saw it missing, so each run has a job for it; one rendered, the other reused what that one stored.
  expect(shared.map((j) => j.reused).sort()).toEqual([false, true]);
  expect((await frameHashes(fileX)).slice(96)).toEqual((await frameHashes(fileY)).slice(96));
});

it('deleting a token removes the segments that drew its params, and keeps those another output uses', async () => {
  const params = (name: string) => ({ movie: 'greeting', parallel: 2, params: { name, accent: '#00aa00' } });
  const p = (await post(params('Pat'))).body.token as string;
  await renderStored(p, 'pat.mp4');
  const q = (await post(params('Quinn'))).body.token as string;
  await renderStored(q, 'quinn.mp4');
  const segmentsOf = async (token: string) => (await segmentJobs(await renderKeyOf(token))).map((j) => j.from);
  const stored = () => new Set(fs.readdirSync(path.join(api.dataDir, 'outputs')).filter((f) => f.startsWith('sg')));
  const before = stored();
  const records = api.app.get<DocumentStore>(DOCUMENT_STORE).collection<{ _id: string; pieces?: string[] }>('renders');
  const piecesQ = (await records.findOne({ _id: await renderKeyOf(q) }))!.pieces!;
  const piecesP = (await records.findOne({ _id: await renderKeyOf(p) }))!.pieces!;
  const personal = piecesQ.filter((n) => !piecesP.includes(n));
  expect(personal.length).toBeGreaterThan(0);
  expect(personal.length).toBe((await segmentsOf(q)).length); // Quinn's own renders; the accent's segment is Pat's too
  for (const n of piecesQ) expect(before.has(n)).toBe(true);

  await request(api.url).delete(`/v2/token/${q}`).set('X-Api-Key', api.key).expect(200);
  const after = stored();
  for (const n of personal) expect(after.has(n)).toBe(false);
  for (const n of piecesP) expect(after.has(n)).toBe(true);
  await request(api.url).get(`/v2/get/${p}.mp4`).expect(200);
});
