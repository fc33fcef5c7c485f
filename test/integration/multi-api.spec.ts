import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import type { Browser } from 'playwright-core';
import { MongoDocumentStore } from '../../src/repositories/document-store/mongo';
import { chromiumPath, launchChromium, measurePlayback } from '../helpers/browser';
import { probe } from '../helpers/media';
import { type ApiProc, commandOf, descendants, eventually, type Proc, type RedisProc, startApiProcess, startNodeProcess, startRedis } from '../helpers/processes';

/**
 * Several API processes in front of one farm, all real processes: one redis-server, CongoDB
 * (MongoDB's wire protocol, in memory) as the shared document store, one shared storage
 * directory (STORAGE_URL), two API processes (EMBEDDED_RENDER_NODE=0, data dirs of their own)
 * and two render nodes. Any API serves any render, live: a render belongs to no API process.
 */

const execFileP = promisify(execFile);
const CHROMIUM = chromiumPath();
const SLOW_FRAMES = 240; // test/fixtures/templates/t/slow: 8 s at 30 fps

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-multi-api-'));
const storageDir = path.join(work, 'storage');
/** Every process this file started, SIGKILLed by pid in afterAll (with its process group when it leads one: a node's ffmpeg). */
const started: Array<{ pid: number; group?: boolean; running: () => boolean }> = [];
let redis: RedisProc;
let congo: { child: ChildProcessWithoutNullStreams; uri: string };
let store: MongoDocumentStore;
let redisClient: Redis;
let a: ApiProc;
let b: ApiProc;
const nodes: Proc[] = [];
const timings: string[] = [];
const since = Date.now();
const mark = (what: string, t0: number) => timings.push(`${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);

/** CongoDB as a child process; it prints its URI first and stops when its stdin closes. */
function startCongo(): Promise<{ child: ChildProcessWithoutNullStreams; uri: string }> {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'helpers', 'congo-server.mjs')], { stdio: ['pipe', 'pipe', 'pipe'] });
  started.push({ pid: child.pid!, running: () => child.exitCode === null && child.signalCode === null });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`CongoDB did not start within 20 s: ${err}`)), 20_000);
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve({ child, uri: out.split('\n')[0].trim() });
      }
    });
    child.once('exit', (code, signal) => reject(new Error(`CongoDB exited (${code ?? signal}) before printing its URI: ${err}`)));
  });
}

/** An API process on the shared Redis, MongoDB and storage, with no render node inside. */
async function startApi(name: string): Promise<ApiProc> {
  const dir = fs.mkdtempSync(path.join(work, `api-${name}-`));
  // The project (and its key hash) is in MongoDB; the key file is written only by the API that created it.
  if (a) fs.copyFileSync(path.join(a.dataDir, 't-api-key'), path.join(dir, 't-api-key'));
  const api = await startApiProcess({ REDIS_URL: redis.url, MONGODB_URI: congo.uri, STORAGE_URL: storageDir, EMBEDDED_RENDER_NODE: '0' }, dir);
  started.push({ pid: api.pid, group: true, running: api.running });
  return api;
}

beforeAll(async () => {
  const t0 = Date.now();
  fs.mkdirSync(storageDir);
  [redis, congo] = await Promise.all([startRedis(fs.mkdtempSync(path.join(work, 'redis-'))), startCongo()]);
  started.push({ pid: redis.pid(), group: true, running: () => true });
  store = await MongoDocumentStore.create(congo.uri);
  redisClient = new Redis({ path: redis.url.replace(/^unix:\/\//, ''), maxRetriesPerRequest: 1 });
  a = await startApi('a'); // first: creates project t in MongoDB and writes its key
  b = await startApi('b');
  expect(b.key()).toBe(a.key());
  for (const n of [1, 2]) {
    const node = startNodeProcess(fs.mkdtempSync(path.join(work, `node${n}-`)), redis.url, { STORAGE_URL: storageDir, ROUTING_KEYS: 'default', CONCURRENCY: '1' });
    started.push({ pid: node.pid, group: true, running: node.running });
    nodes.push(node);
  }
  await eventually(
    'two live render nodes',
    async () => {
      for (const node of nodes) if (!node.running()) throw new Error(`a render node exited: ${node.output().slice(-2000)}`);
      const { nodes: live } = (await (await fetch(`${b.url}/v2/nodes`)).json()) as { nodes: unknown[] };
      return live.length === 2 ? true : undefined;
    },
    60_000,
  );
  mark('set-up (redis, congo, 2 APIs, 2 nodes)', t0);
}, 120_000);

afterAll(async () => {
  redisClient?.disconnect();
  await store?.close().catch(() => undefined);
  for (const { pid, group, running } of started) {
    // A process that already exited is not signalled by pid (the pid may be another's by now); its group may
    // still hold what it left running.
    for (const target of [...(running() ? [pid] : []), ...(group ? [-pid] : [])]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
  timings.push(`whole file: ${((Date.now() - since) / 1000).toFixed(1)} s`);
  console.log(`multi-api timings:\n  ${timings.join('\n  ')}`);
});

const label = (what: string) => `${what} ${randomBytes(4).toString('hex')}`;

async function post(api: ApiProc, body: object): Promise<string> {
  const res = await fetch(`${api.url}/v2/render/t`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Api-Key': api.key() }, body: JSON.stringify(body) });
  const json = (await res.json()) as { token?: string };
  if (res.status !== 200 || !json.token) throw new Error(`POST through ${api.url} answered ${res.status}: ${JSON.stringify(json)}`);
  return json.token;
}

interface Got {
  api: ApiProc;
  status: number;
  montageStatus: string | null;
  file: string;
  sha: string;
}

/** GET of an output through `api`, kept in a file. */
async function getTo(api: ApiProc, token: string, ext: string, name: string): Promise<Got> {
  const res = await fetch(`${api.url}/v2/get/${token}.${ext}`);
  const body = Buffer.from(await res.arrayBuffer());
  const file = path.join(work, name);
  fs.writeFileSync(file, body);
  return { api, status: res.status, montageStatus: res.headers.get('x-montage-status'), file, sha: createHash('sha256').update(body).digest('hex') };
}

async function progress(api: ApiProc, token: string): Promise<{ status: string; framesDone: number; totalFrames: number }> {
  return (await (await fetch(`${api.url}/v2/progress/${token}`)).json()) as { status: string; framesDone: number; totalFrames: number };
}

interface RenderRecord {
  _id: string;
  status: string;
  attempts: number;
  run?: string;
}

/** The render record of a token's output, from the shared MongoDB. */
async function renderOf(token: string, ext: string): Promise<RenderRecord> {
  const doc = await store.collection<{ _id: string; renders: Record<string, string> }>('tokens').findOne({ _id: token });
  const key = doc?.renders[ext];
  if (!key) throw new Error(`token ${token} has no ${ext} render yet`);
  const render = await store.collection<RenderRecord>('renders').findOne({ _id: key });
  if (!render) throw new Error(`no render record ${key}`);
  return render;
}

/** BullMQ job hashes in Redis whose id is `<renderKey>-r<run>` (a run's RenderOutput or AssembleRender job). */
async function runJobs(renderKey: string): Promise<string[]> {
  const keys = await redisClient.keys(`bull:*:${renderKey}-r*`);
  return keys.filter((k) => new RegExp(`^bull:[^:]+:${renderKey}-r[0-9a-f]+$`).test(k)).sort();
}

/** Presentation times of every video frame, in order. */
async function framePts(file: string): Promise<number[]> {
  const { stdout } = await execFileP('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts', '-of', 'csv=p=0', file], { maxBuffer: 16 * 1024 * 1024 });
  return stdout
    .split('\n')
    .map((l) => l.trim().replace(/,+$/, ''))
    .filter(Boolean)
    .map(Number);
}

/** A complete video: every frame decodes, none missing, none twice. */
async function expectComplete(file: string, frames: number): Promise<void> {
  expect((await probe(file)).video?.nb_read_frames).toBe(String(frames));
  const pts = await framePts(file);
  expect(pts).toHaveLength(frames);
  expect(new Set(pts).size).toBe(frames);
  for (let i = 1; i < pts.length; i++) expect(pts[i]).toBeGreaterThan(pts[i - 1]);
}

const ffmpegIn = (pids: number[]) => pids.filter((p) => /(^|\/)ffmpeg( |$)/.test(commandOf(p)));

it('concurrent GETs of one output through both APIs share one run, and all of them stream it live', async () => {
  const t0 = Date.now();
  const token = await post(a, { movie: 'slow', params: { label: label('shared') }, parallel: 1 });
  const got = await Promise.all(Array.from({ length: 10 }, (_, i) => getTo(i % 2 === 0 ? a : b, token, 'mp4', `shared-${i}.mp4`)));
  mark('10 concurrent GETs over 2 APIs (slow, parallel 1)', t0);
  for (const g of got) expect(g.status).toBe(200);
  await Promise.all(got.map((g) => expectComplete(g.file, SLOW_FRAMES)));
  // Both APIs streamed the render while it ran, and every live viewer got the same bytes.
  for (const api of [a, b]) expect(got.filter((g) => g.api === api && g.montageStatus === 'rendering').length).toBeGreaterThan(0);
  expect(new Set(got.filter((g) => g.montageStatus === 'rendering').map((g) => g.sha)).size).toBe(1);

  await eventually('the render to be recorded done', async () => ((await renderOf(token, 'mp4')).status === 'done' ? true : undefined), 15_000);
  const render = await renderOf(token, 'mp4');
  expect(render.attempts).toBe(1);
  expect(await runJobs(render._id)).toEqual([`bull:render.default:${render._id}-r${render.run}`]);
  const stored = await getTo(b, token, 'mp4', 'shared-stored.mp4');
  expect(stored.montageStatus).toBe('done');
  await expectComplete(stored.file, SLOW_FRAMES);
});

it('no ffmpeg runs under either API process (EMBEDDED_RENDER_NODE=0); the nodes run them', async () => {
  const t0 = Date.now();
  const token = await post(a, { movie: 'slow', params: { label: label('no ffmpeg here') }, parallel: 2 });
  const viewers = [getTo(a, token, 'mp4', 'where-a.mp4'), getTo(b, token, 'mp4', 'where-b.mp4')];
  let finished = false;
  void Promise.allSettled(viewers).then(() => (finished = true));
  const inApis = new Set<string>();
  let inNodes = 0;
  let scans = 0;
  while (!finished) {
    for (const api of [a, b]) for (const p of ffmpegIn(descendants(api.pid))) inApis.add(`${p} under API ${api.pid}: ${commandOf(p).slice(0, 200)}`);
    inNodes += nodes.reduce((n, node) => n + ffmpegIn(descendants(node.pid)).length, 0);
    scans++;
    await new Promise((r) => setTimeout(r, 50));
  }
  mark(`ffmpeg scan during a render (slow, parallel 2; ${scans} scans)`, t0);
  expect([...inApis]).toEqual([]);
  expect(inNodes).toBeGreaterThan(0); // the scan does see ffmpeg, where it runs
  for (const g of await Promise.all(viewers)) {
    expect(g.status).toBe(200);
    await expectComplete(g.file, SLOW_FRAMES);
  }
});

// Both renders (parallel 1: one RenderOutput job; parallel 2: segments and an assembly job) are requested through
// the doomed API at once and are in flight when it dies: they share the two nodes, so neither ends right after the kill.
it('SIGKILL of the API renders were requested through, mid-render (parallel 1 and 2), stops and corrupts nothing: viewers through the other API get complete videos, stored complete', async () => {
  const t0 = Date.now();
  const doomed = await startApi('doomed');
  mark('start of a third API', t0);
  const tokens = new Map<number, string>();
  for (const parallel of [1, 2]) tokens.set(parallel, await post(doomed, { movie: 'slow', params: { label: label(`orphaned p${parallel}`) }, parallel }));
  // The renders are requested (claimed and enqueued) through the doomed API, and watched there.
  for (const token of tokens.values()) fetch(`${doomed.url}/v2/get/${token}.mp4`).then((r) => r.arrayBuffer()).catch(() => undefined); // cut off by the kill
  // Killed as soon as the nodes have rendered frames of both (the doomed API is streaming them by then).
  const midway = await eventually(
    'frames of both renders',
    async () => {
      const both = await Promise.all([...tokens.values()].map((token) => progress(b, token)));
      return both.every((p) => p.framesDone > 0) ? both : undefined;
    },
    30_000,
  );
  process.kill(doomed.pid, 'SIGKILL');
  await doomed.exited;
  const killedAt = Date.now();
  for (const p of midway) {
    expect(p.status).not.toBe('done');
    expect(p.framesDone).toBeLessThan(SLOW_FRAMES);
  }
  const before = new Map<number, RenderRecord>();
  for (const [parallel, token] of tokens) before.set(parallel, await renderOf(token, 'mp4'));

  const viewers = await Promise.all(
    [...tokens].map(async ([parallel, token]) => {
      const got = await getTo(b, token, 'mp4', `orphaned-p${parallel}.mp4`);
      mark(`parallel ${parallel}: a viewer through B had the whole video ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`, t0);
      return got;
    }),
  );
  for (const viewer of viewers) {
    expect(viewer.status).toBe(200);
    expect(viewer.montageStatus).toBe('rendering'); // it was still running when the viewer came
    await expectComplete(viewer.file, SLOW_FRAMES);
  }

  for (const [parallel, token] of tokens) {
    await eventually(`the parallel ${parallel} output to be stored`, async () => ((await progress(b, token)).status === 'done' ? true : undefined), 15_000);
    const after = await renderOf(token, 'mp4');
    expect(before.get(parallel)!.attempts).toBe(1);
    expect(after).toMatchObject({ status: 'done', attempts: 1, run: before.get(parallel)!.run }); // the same run went on
    const stored = await getTo(b, token, 'mp4', `orphaned-p${parallel}-stored.mp4`);
    expect(stored.montageStatus).toBe('done');
    await expectComplete(stored.file, SLOW_FRAMES);
    expect(fs.readdirSync(path.join(storageDir, 'outputs')).filter((f) => f.startsWith(after._id))).toEqual([`${after._id}.mp4`]);
  }
  mark('SIGKILL case', t0);
});

(CHROMIUM ? describe : describe.skip)('Chromium plays through API B a render started through API A, before it is done', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close().catch(() => undefined);
  });

  // mp4 renders several times faster than it plays: `slow` would be done before a browser shows 0.2 s of it, so
  // the mp4 case renders `long` (60 s, 1800 frames). VP9 is slower to encode: `slow` gives time enough.
  it.each([
    ['mp4', 1, 'long', 1800],
    ['webm', 2, 'slow', SLOW_FRAMES],
  ] as const)('%s, parallel %i', async (ext, parallel, movie, frames) => {
    const t0 = Date.now();
    const token = await post(a, { movie, params: movie === 'slow' ? { label: label(`chromium ${ext}`) } : {}, parallel });
    // Started through A: a GET there, read to the end in the background.
    const starter = fetch(`${a.url}/v2/get/${token}.${ext}`).then((r) => r.arrayBuffer());
    starter.catch(() => undefined); // awaited below
    await eventually('the render to be claimed through A', async () => ((await renderOf(token, ext)).run ? true : undefined), 10_000);
    // A plain viewer through B beside the browser: when its first bytes come, how far the render is.
    let atFirstByte: Promise<{ framesDone: number; status: string }> | undefined;
    const viewer = fetch(`${b.url}/v2/get/${token}.${ext}`).then(async (res) => {
      const parts: Buffer[] = [];
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        atFirstByte ??= progress(b, token);
        parts.push(Buffer.from(chunk));
      }
      return { status: res.status, montageStatus: res.headers.get('x-montage-status'), body: Buffer.concat(parts) };
    });
    viewer.catch(() => undefined); // awaited below
    const played = await measurePlayback(browser, `${b.url}/v2/get/${token}.${ext}`, { start: 'play', timeoutMs: 30_000 });
    // Asked after the browser played: the render was not done then, so it played the live stream.
    const then = await progress(b, token);
    mark(`Chromium ${ext} parallel ${parallel} (${movie}): playing ${Math.round(played.firstPlayingMs)} ms after navigation, ${then.framesDone}/${frames} frames rendered just after`, t0);
    expect(played.error).toBeNull();
    expect(played.currentTime).toBeGreaterThan(0.2);
    expect(then.status).not.toBe('done');

    const seen = await viewer;
    const first = await atFirstByte!;
    mark(`Chromium ${ext} parallel ${parallel} (${movie}): a viewer through B had its first bytes at ${first.framesDone}/${frames} frames rendered; whole case`, t0);
    expect(seen).toMatchObject({ status: 200, montageStatus: 'rendering' });
    // Live means from early on, not in a burst once the nodes are (nearly) done.
    expect(first.framesDone).toBeLessThan(frames / 2);
    const file = path.join(work, `chromium-b.${ext}`);
    fs.writeFileSync(file, seen.body);
    await expectComplete(file, frames);
    expect(Buffer.from(await starter).equals(seen.body)).toBe(true); // both APIs sent the same stream
    expect((await renderOf(token, ext)).attempts).toBe(1);
  });
});
if (!CHROMIUM) console.warn('skipped: the Chromium cases of multi-api.spec.ts need Chromium (apt-get install chromium, or set CHROMIUM_PATH)');
