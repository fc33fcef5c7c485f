import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { meanVolume, probe } from '../helpers/media';
import { alive, type ApiProc, commandOf, descendants, eventually, killGroup, processesWith, type Proc, type RedisProc, startApiProcess, startNodeProcess, startRedis } from '../helpers/processes';

// The Blender engine with real components: the built API and render-node processes, Debian's
// Blender (CPU, Cycles), redis-server and ffmpeg/ffprobe. The movie is
// test/fixtures/blender/templates/b3d/title: 320×180 at 12 fps for 2 s (24 frames), 2 Cycles
// samples by default, a 3D text "Title" bound to `name`, and a green "Marker" that moves left to
// right a fixed step per frame whatever the params, so the frame order of a video can be read
// off its pictures. Blender renders with one thread (BLENDER_THREADS=1) and distributed renders
// are cut into chunks of 4 frames (BLENDER_CHUNK_FRAMES=4): 6 chunks.
//
// Chunks are sized by the time per frame that earlier renders of the same scene and settings
// recorded in Redis (adaptive chunks): every distributed render here has its own `samples` (part
// of that key) or its own Redis, so each one is cut by BLENDER_CHUNK_FRAMES.

const execFileP = promisify(execFile);
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'blender', 'templates');
const BIN = path.join(__dirname, '..', '..', 'bin', 'montage.js');
const PROJECT = 'b3d';
const WIDTH = 320;
const HEIGHT = 180;
const FRAMES = 24; // duration 2 s × 12 fps
const CHUNK = 4;
const BLENDER_ENV = { MONTAGE_TEMPLATES_DIR: FIXTURES, BLENDER_THREADS: '1', BLENDER_CHUNK_FRAMES: String(CHUNK) };
const MAX = 64 * 1024 * 1024;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-blender-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/**
 * What a describe started, stopped when it ends, last first: its processes' groups (Blender,
 * in a group of its own, dies with its node) and an API's data dir once its processes are gone.
 */
function scope(): { track<T extends Proc>(proc: T): T; later(fn: () => Promise<void> | void): void } {
  const cleanup: Array<() => Promise<void> | void> = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn();
  }, 30_000);
  return {
    track: (proc) => {
      cleanup.push(async () => {
        killGroup(proc.pid);
        await proc.exited;
        if (!('dataDir' in proc)) return;
        // The private redis-server (a group of its own) writes its append-only file as it leaves.
        const dir = (proc as unknown as ApiProc).dataDir;
        await eventually('the API\'s children to leave', () => (processesWith(dir).length === 0 ? true : undefined), 10_000).catch(() => undefined);
        fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      });
      return proc;
    },
    later: (fn) => void cleanup.push(fn),
  };
}

/** The 1-based line of a fixture movie.yaml that matches. */
function lineOf(movie: string, pattern: RegExp): number {
  const line = fs.readFileSync(path.join(FIXTURES, PROJECT, movie, 'movie.yaml'), 'utf8').split('\n').findIndex((l) => pattern.test(l)) + 1;
  if (line === 0) throw new Error(`${movie}/movie.yaml has no line matching ${pattern}`);
  return line;
}

const keyOf = (api: ApiProc) => fs.readFileSync(path.join(api.dataDir, `${PROJECT}-api-key`), 'utf8').trim();

async function post(api: ApiProc, body: object): Promise<string> {
  const res = await fetch(`${api.url}/v2/render/${PROJECT}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${keyOf(api)}` },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`POST ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

interface Progress {
  status: string;
  framesDone: number;
  totalFrames: number;
  error?: string;
  formats: Record<string, { status: string; framesDone: number; totalFrames: number; error?: string }>;
}
const progress = async (api: ApiProc, token: string) => (await (await fetch(`${api.url}/v2/progress/${token}`)).json()) as Progress;
const done = (api: ApiProc, token: string) => eventually('the output to be stored', async () => ((await progress(api, token)).status === 'done' ? true : undefined), 30_000);

/** GETs a URL to a file of the test's work dir. */
async function download(url: string, name: string, signal?: AbortSignal): Promise<{ status: number; type: string; file: string; body: Buffer }> {
  const res = await fetch(url, { signal });
  const body = Buffer.from(await res.arrayBuffer());
  const file = path.join(work, name);
  fs.writeFileSync(file, body);
  return { status: res.status, type: res.headers.get('content-type') ?? '', file, body };
}

async function nodes(api: ApiProc): Promise<Array<{ id: string; pid: number; engines: string[]; blender?: { version?: string; devices: string[] } }>> {
  return ((await (await fetch(`${api.url}/v2/nodes`)).json()) as { nodes: Array<{ id: string; pid: number; engines: string[]; blender?: { version?: string; devices: string[] } }> }).nodes;
}

/** Every frame of a video (or the one of an image), decoded to packed RGB. */
async function rgbFrames(file: string): Promise<Buffer[]> {
  const { stdout } = await execFileP('ffmpeg', ['-v', 'error', '-i', file, '-an', '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { encoding: 'buffer', maxBuffer: MAX });
  const size = WIDTH * HEIGHT * 3;
  if (stdout.length % size !== 0) throw new Error(`${file}: ${stdout.length} bytes is not a whole number of ${WIDTH}×${HEIGHT} frames`);
  return Array.from({ length: stdout.length / size }, (_, i) => stdout.subarray(i * size, (i + 1) * size));
}

interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Mean absolute difference of two RGB frames over a rectangle (0–255). */
function meanDiff(a: Buffer, b: Buffer, r: Rect): number {
  let sum = 0;
  for (let y = r.y; y < r.y + r.h; y++) {
    for (let i = (y * WIDTH + r.x) * 3; i < (y * WIDTH + r.x + r.w) * 3; i++) sum += Math.abs(a[i] - b[i]);
  }
  return sum / (r.w * r.h * 3);
}

/** Share of the pixels of a rectangle that differ by more than `by` on some channel. */
function changedShare(a: Buffer, b: Buffer, r: Rect, by = 40): number {
  let changed = 0;
  for (let y = r.y; y < r.y + r.h; y++) {
    for (let x = r.x; x < r.x + r.w; x++) {
      const i = (y * WIDTH + x) * 3;
      if (Math.abs(a[i] - b[i]) > by || Math.abs(a[i + 1] - b[i + 1]) > by || Math.abs(a[i + 2] - b[i + 2]) > by) changed++;
    }
  }
  return changed / (r.w * r.h);
}

/** Where the fixture's green Marker is in a frame: the mean x of its pixels in the top band. */
function markerX(frame: Buffer): number {
  let sum = 0;
  let count = 0;
  for (let y = 0; y < 60; y++) {
    for (let x = 0; x < WIDTH; x++) {
      const i = (y * WIDTH + x) * 3;
      const [r, g, b] = [frame[i], frame[i + 1], frame[i + 2]];
      if (g > 120 && g > r + 50 && g > b + 50) {
        sum += x;
        count++;
      }
    }
  }
  if (count < 10) throw new Error(`no marker in this frame (${count} green pixels)`);
  return sum / count;
}

/** The video has all 24 frames, each once and in order: the marker moves right by a whole step every frame. */
async function expectEveryFrameOnceInOrder(file: string): Promise<void> {
  expect((await probe(file)).video).toMatchObject({ codec_name: 'h264', width: WIDTH, height: HEIGHT, nb_read_frames: String(FRAMES) });
  const { stdout } = await execFileP('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts', '-of', 'csv=p=0', file], { maxBuffer: MAX });
  const pts = stdout.split('\n').map((l) => l.trim().replace(/,+$/, '')).filter(Boolean).map(Number);
  expect(pts).toHaveLength(FRAMES);
  expect(new Set(pts).size).toBe(FRAMES);
  expect(pts).toEqual([...pts].sort((a, b) => a - b));
  const xs = (await rgbFrames(file)).map(markerX);
  expect(xs).toHaveLength(FRAMES);
  // 256 px over 23 steps: about 11 px a frame. A frame twice, missing or out of order breaks it.
  const steps = xs.slice(1).map((x, i) => x - xs[i]);
  expect(Math.min(...steps)).toBeGreaterThan(6);
  expect(Math.max(...steps)).toBeLessThan(16);
  expect(xs[0]).toBeLessThan(45);
  expect(xs[FRAMES - 1]).toBeGreaterThan(WIDTH - 45);
}

/** The chunks a node rendered, from its log (`blender frames A-B: … s per frame`, NodeJobs.noteTiming). */
function chunksIn(log: string): Array<[number, number]> {
  return [...log.matchAll(/blender frames (\d+)-(\d+): [0-9.]+ s per frame/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

/** Chunks that tile 0–24 exactly once. */
function expectTiling(chunks: Array<[number, number]>): void {
  const sorted = [...chunks].sort((a, b) => a[0] - b[0]);
  expect(sorted[0][0]).toBe(0);
  for (let i = 1; i < sorted.length; i++) expect(sorted[i][0]).toBe(sorted[i - 1][1]);
  expect(sorted.at(-1)![1]).toBe(FRAMES);
}

/** Blender processes (their command line names the fixture's scenes) below `pid`. */
const blenderBelow = (pid: number) => descendants(pid).filter((p) => /blender/.test(commandOf(p)) && commandOf(p).includes(FIXTURES));

const REAL_BLENDER = process.env.BLENDER_PATH || execFileSync('sh', ['-c', 'command -v blender'], { encoding: 'utf8' }).trim();

/**
 * A Blender that answers the devices (and inventory) queries as the real one does, and fails
 * every render (one-off `-a` or a serving Blender) the way a broken GPU driver would: Blender's
 * own error line, exit 1.
 */
function failingBlender(): string {
  const file = path.join(work, 'blender-crashing-gpu');
  fs.writeFileSync(
    file,
    [
      '#!/bin/sh',
      'for arg in "$@"; do',
      '  case "$arg" in',
      `    *'"mode":"devices"'* | *'"mode":"inventory"'*) exec ${JSON.stringify(REAL_BLENDER)} "$@" ;;`,
      '  esac',
      'done',
      'echo "Blender 3.4.1 (hash 000000000000 built 2023-01-01 00:00:00)"',
      'echo "Error: simulated GPU driver crash" >&2',
      'exit 1',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return file;
}

describe('an API with its embedded render node', () => {
  const { track } = scope();
  let api: ApiProc;

  beforeAll(async () => {
    api = track(await startApiProcess({ ...BLENDER_ENV }));
    await eventually('the embedded node with Blender', async () => ((await nodes(api)).some((n) => n.blender) ? true : undefined), 30_000);
  }, 90_000);

  it('renders a Blender movie: h264 320×180, exactly duration × fps frames, a silent sound track, progress to the last frame, and stills of any frame', async () => {
    const [node] = await nodes(api);
    expect(node.engines).toEqual(expect.arrayContaining(['ffmpeg-composite', 'blender']));
    expect(node.blender).toEqual({ version: expect.stringMatching(/^3\.4/), devices: ['CPU'] });

    const token = await post(api, { movie: 'title', params: { name: 'Hello' } });
    const mp4 = await download(`${api.url}/v2/get/${token}.mp4`, 'embedded.mp4');
    expect(mp4.status).toBe(200);
    expect(mp4.type).toMatch(/^video\/mp4/);
    const p = await probe(mp4.file);
    expect(p.video).toMatchObject({ codec_name: 'h264', width: WIDTH, height: HEIGHT, nb_read_frames: String(FRAMES) });
    // Like a composite without sound: an AAC track of silence, as long as the picture.
    expect(p.audio?.codec_name).toBe('aac');
    expect(await meanVolume(mp4.file, 0, 2)).toBeLessThan(-80);
    expect(p.durationSec).toBeCloseTo(2, 0);
    const frames = await rgbFrames(mp4.file);
    expect(frames).toHaveLength(FRAMES);
    expect(markerX(frames[FRAMES - 1])).toBeGreaterThan(markerX(frames[0]) + 200);

    await done(api, token);
    const finished = await progress(api, token);
    expect(finished).toMatchObject({ status: 'done', framesDone: FRAMES, totalFrames: FRAMES });
    expect(finished.formats.mp4).toMatchObject({ status: 'done', framesDone: FRAMES, totalFrames: FRAMES });

    // A still of frame 12 (0-based): a 320×180 JPEG of the same picture as the video's frame 12.
    const jpg = await download(`${api.url}/v2/get/${token}.jpg?frame=12`, 'embedded-12.jpg');
    expect(jpg.status).toBe(200);
    expect(jpg.type).toMatch(/^image\/jpeg/);
    expect(jpg.body.subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff]));
    expect((await probe(jpg.file)).video).toMatchObject({ codec_name: 'mjpeg', width: WIDTH, height: HEIGHT });
    const [still] = await rgbFrames(jpg.file);
    expect(Math.abs(markerX(still) - markerX(frames[12]))).toBeLessThan(3);
  }, 120_000);

  it('binds the text param into the scene: the picture changes where the title is and nowhere else', async () => {
    // Stills of one frame as PNG (lossless): only the binding differs between the two.
    const short = await post(api, { movie: 'title', params: { name: 'AAAA' } });
    const wide = await post(api, { movie: 'title', params: { name: 'WWWWWW' } });
    const a = await download(`${api.url}/v2/get/${short}.png?frame=6`, 'aaaa.png');
    const w = await download(`${api.url}/v2/get/${wide}.png?frame=6`, 'wwwwww.png');
    expect([a.status, w.status]).toEqual([200, 200]);
    const [fa] = await rgbFrames(a.file);
    const [fw] = await rgbFrames(w.file);

    // The title is 3D text across the lower middle (rows ~110–150); "WWWWWW" is wider and another shape.
    const title: Rect = { x: 10, y: 105, w: 300, h: 50 };
    expect(meanDiff(fa, fw, title)).toBeGreaterThan(20);
    expect(changedShare(fa, fw, title)).toBeGreaterThan(0.15);
    // The sky above the marker and below the title is the world's colour in both, and the marker is where frame 6 puts it.
    for (const sky of [{ x: 0, y: 0, w: WIDTH, h: 12 }, { x: 0, y: 165, w: WIDTH, h: 15 }]) expect(meanDiff(fa, fw, sky)).toBeLessThan(1);
    expect(Math.abs(markerX(fa) - markerX(fw))).toBeLessThan(0.5);
  }, 120_000);

  it('a binding naming an object the scene does not have: POST answers a 400 naming movie.yaml:<line> and the object', async () => {
    // This API has Blender: it asks the scene what it has before any render is queued.
    const line = lineOf('missing-object', /object: Subtitle/);
    const res = await fetch(`${api.url}/v2/render/${PROJECT}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${keyOf(api)}` },
      body: JSON.stringify({ movie: 'missing-object' }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as { message: string; details: Array<{ field: string; message: string }> };
    expect(body.message).toMatch(/object "Subtitle" is not in the scene \(it has: Camera, Title\)/);
    expect(body.details).toContainEqual({ field: `b3d/missing-object/movie.yaml:${line}`, message: expect.stringMatching(/"Subtitle" is not in the scene/) });
  }, 60_000);

  it('a CUDA job waits in render.default.blender.cuda while only CPU nodes are live, and nothing renders it', async () => {
    const token = await post(api, { movie: 'cuda' });
    const viewer = new AbortController();
    const watching = fetch(`${api.url}/v2/get/${token}.mp4`, { signal: viewer.signal }).catch(() => undefined);
    const connection = new IORedis({ path: path.join(api.dataDir, 'redis', 'redis.sock'), maxRetriesPerRequest: null });
    const cuda = new Queue('render.default.blender.cuda', { connection });
    const cpu = new Queue('render.default.blender', { connection });
    try {
      await eventually('the job in the CUDA queue', async () => {
        const jobs = await cuda.getJobs(['wait', 'prioritized']);
        return jobs.some((j) => (j.data as { movie?: string }).movie === 'cuda') ? true : undefined;
      }, 20_000);
      // A while later: still waiting, nothing taken, no Blender started for it, no frame done.
      await new Promise((r) => setTimeout(r, 3000));
      expect(await cuda.getJobCounts('wait', 'prioritized', 'active', 'completed', 'failed')).toMatchObject({ active: 0, completed: 0, failed: 0 });
      expect((await cuda.getJobs(['wait', 'prioritized'])).map((j) => (j.data as { movie?: string }).movie)).toContain('cuda');
      expect((await cpu.getJobs(['wait', 'prioritized', 'active'])).filter((j) => (j.data as { movie?: string }).movie === 'cuda')).toHaveLength(0);
      expect(await progress(api, token)).toMatchObject({ status: 'queued', framesDone: 0 });
      expect(processesWith(path.join(FIXTURES, PROJECT, 'cuda'))).toEqual([]);
      // The operator is told why.
      expect(api.output()).toMatch(/no live render node takes routing key "default" with blender on CUDA: render \S+ stays queued until one starts/);
    } finally {
      viewer.abort();
      await watching;
      await cuda.close();
      await cpu.close();
      connection.disconnect();
      await fetch(`${api.url}/v2/token/${token}`, { method: 'DELETE', headers: { Authorization: `Bearer ${keyOf(api)}` } });
    }
  }, 60_000);
});

describe('montage templates check of Blender movies', () => {
  it('names a binding that does not fit the scene as movie.yaml:<line>, and passes the valid ones', async () => {
    const line = lineOf('missing-object', /object: Subtitle/);
    let code = 0;
    let stdout = '';
    try {
      ({ stdout } = await execFileP('node', [BIN, 'templates', 'check'], {
        cwd: work,
        env: { ...process.env, MONTAGE_DATA_DIR: path.join(work, 'cli-data'), MONTAGE_TEMPLATES_DIR: FIXTURES },
        timeout: 120_000,
      }));
    } catch (err) {
      ({ code, stdout } = err as { code: number; stdout: string });
    }
    expect(code).toBe(2);
    expect(stdout).toMatch(new RegExp(`^b3d/missing-object/movie\\.yaml:${line}: text object "Subtitle" is not in the scene \\(it has: Camera, Title\\)$`, 'm'));
    expect(stdout).toMatch(/^ok {4}b3d\/title$/m);
    expect(stdout).toMatch(/^ok {4}b3d\/cuda$/m);
    expect(stdout).toMatch(/^3 templates checked, 1 with errors$/m);
  }, 120_000);
});

describe('an API without Blender and two render-node processes on one Redis', () => {
  const { track, later } = scope();
  let redis: RedisProc;
  let api: ApiProc;
  let first: Proc;
  let second: Proc;

  beforeAll(async () => {
    redis = await startRedis(fs.mkdtempSync(path.join(work, 'redis-farm-')));
    later(() => redis.stop());
    // The API machine has no Blender (only the nodes do): it queues Blender movies without asking any scene.
    api = track(await startApiProcess({ ...BLENDER_ENV, BLENDER_PATH: path.join(work, 'no-blender-here'), REDIS_URL: redis.url, EMBEDDED_RENDER_NODE: '0' }));
    first = track(startNodeProcess(api.dataDir, redis.url, BLENDER_ENV));
    second = track(startNodeProcess(api.dataDir, redis.url, BLENDER_ENV));
    await eventually('two nodes with Blender', async () => ((await nodes(api)).filter((n) => n.blender?.devices.includes('CPU')).length === 2 ? true : undefined), 60_000);
  }, 120_000);

  it('parallel: 2 renders chunks on both nodes and joins them into one stream with every frame once, in order', async () => {
    const token = await post(api, { movie: 'title', parallel: 2, params: { name: 'Farm', samples: 3 } });
    const mp4 = await download(`${api.url}/v2/get/${token}.mp4`, 'farm.mp4');
    expect(mp4.status).toBe(200);
    await expectEveryFrameOnceInOrder(mp4.file);
    expect((await probe(mp4.file)).audio?.codec_name).toBe('aac');
    await done(api, token);
    expect(await progress(api, token)).toMatchObject({ status: 'done', framesDone: FRAMES, totalFrames: FRAMES });
    const stored = await download(`${api.url}/v2/get/${token}.mp4`, 'farm-stored.mp4');
    await expectEveryFrameOnceInOrder(stored.file);

    // Six chunks of four frames, each rendered once, by both nodes.
    const mine = [chunksIn(first.output()), chunksIn(second.output())];
    expect(mine[0].length).toBeGreaterThan(0);
    expect(mine[1].length).toBeGreaterThan(0);
    expect([...mine[0], ...mine[1]]).toHaveLength(FRAMES / CHUNK);
    expectTiling([...mine[0], ...mine[1]]);
  }, 150_000);

  it('a binding naming an object the scene does not have: the node refuses it at once and GET answers a 400 naming the binding and the object', async () => {
    const token = await post(api, { movie: 'missing-object' }); // this API cannot ask the scene
    const started = Date.now();
    const res = await fetch(`${api.url}/v2/get/${token}.mp4`);
    const text = await res.text();
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = JSON.parse(text) as { message: string };
    expect(body.message).toMatch(/bindings\.1: object "Subtitle" is not in the scene \(it has: Camera, Title\)/);
    expect(body.message).not.toMatch(/\/tmp\/|Traceback/);
    // Bad input is not retried on another node: one Blender start, seconds.
    expect(Date.now() - started).toBeLessThan(30_000);
    const p = await progress(api, token);
    expect(p.status).toBe('failed');
    expect(p.error).toMatch(/"Subtitle" is not in the scene/);
  }, 60_000);

  it('a node killed while Blender renders its chunk: the chunk moves to the other node, every frame comes once, and no Blender of the dead node is left', async () => {
    // More samples: a chunk takes seconds, long enough to be caught in the middle.
    const token = await post(api, { movie: 'title', parallel: 2, params: { name: 'Survivor', samples: 96 } });
    const viewer = download(`${api.url}/v2/get/${token}.mp4`, 'survivor-stream.mp4').catch(() => undefined);
    // A chunk half rendered: its frames folder (work/blender/<project>-<movie>-<first frame>-<node pid>-…),
    // a Blender below that node, and some but not all of its frames counted in the run's progress hash.
    const frames = path.join(api.dataDir, 'work', 'blender');
    const client = new IORedis({ path: redis.url.replace(/^unix:\/\//, ''), maxRetriesPerRequest: null });
    let caught: { victim: Proc; from: number; blenders: number[]; rendered: number };
    try {
      caught = await eventually('a node half-way through a chunk', async () => {
        const hashes = await Promise.all((await client.keys('montage:progress:*')).map((k) => client.hgetall(k)));
        for (const name of fs.existsSync(frames) ? fs.readdirSync(frames) : []) {
          const m = /^b3d-title-(\d+)-(\d+)-/.exec(name);
          const node = [first, second].find((n) => n.pid === Number(m?.[2]));
          if (!node) continue;
          const from = Number(m![1]);
          const rendered = Math.max(0, ...hashes.map((h) => Number(h[`f${from / CHUNK}`] ?? 0)).filter((n) => n < CHUNK));
          const found = blenderBelow(node.pid);
          if (rendered > 0 && found.length > 0) return { victim: node, from, blenders: found, rendered };
        }
        return undefined;
      }, 60_000);
    } finally {
      client.disconnect();
    }
    const { victim, from, blenders, rendered } = caught;
    expect(rendered).toBeLessThan(CHUNK);
    const survivor = victim === first ? second : first;
    const survivorLogBefore = survivor.output().length;
    const before = descendants(victim.pid);
    process.kill(-victim.pid, 'SIGKILL');
    await victim.exited;

    // Blender runs in a process group of its own, and dies with its node all the same (PR_SET_PDEATHSIG).
    const left = () => [...new Set([...blenders, ...before].filter(alive))];
    await eventually('nothing of the killed node', () => (left().length === 0 ? true : undefined), 5000).catch(() => {
      throw new Error(`left running: ${left().map((p) => `${p} ${commandOf(p)}`).join('; ')}`);
    });
    // Nor a Blender it started after that snapshot: every Blender of these scenes left is the survivor's.
    const strays = () => processesWith(FIXTURES).filter((p) => /blender/.test(commandOf(p)) && !descendants(survivor.pid).includes(p));
    expect(strays()).toEqual([]);

    await viewer;
    await eventually('the render to be stored', async () => ((await progress(api, token)).status === 'done' ? true : undefined), 120_000);
    const stored = await download(`${api.url}/v2/get/${token}.mp4`, 'survivor.mp4');
    expect(stored.status).toBe(200);
    await expectEveryFrameOnceInOrder(stored.file);
    // The chunk the dead node had was rendered again, by the survivor.
    expect(chunksIn(survivor.output().slice(survivorLogBefore))).toContainEqual([from, from + CHUNK]);
    // And the dead node's half-written frames folder went with the survivor's next chunk (same host, writer gone).
    expect(fs.readdirSync(frames).filter((name) => name.includes(`-${victim.pid}-`))).toEqual([]);
  }, 180_000);
});

describe("Flamenco's rules: a node whose Blender fails", () => {
  const { track, later } = scope();
  let redis: RedisProc;
  let api: ApiProc;
  let failing: Proc;
  let healthy: Proc;
  let wrapper: string;
  let redisClient: IORedis;

  beforeAll(async () => {
    wrapper = failingBlender();
    redis = await startRedis(fs.mkdtempSync(path.join(work, 'redis-flamenco-')));
    later(() => redis.stop());
    redisClient = new IORedis({ path: redis.url.replace(/^unix:\/\//, ''), maxRetriesPerRequest: null });
    later(() => redisClient.disconnect());
    api = track(await startApiProcess({ ...BLENDER_ENV, REDIS_URL: redis.url, EMBEDDED_RENDER_NODE: '0' }));
    // Two lanes at once on the failing node: it takes work as soon as there is any.
    failing = track(startNodeProcess(api.dataDir, redis.url, { ...BLENDER_ENV, BLENDER_PATH: wrapper, CONCURRENCY: '2' }));
    healthy = track(startNodeProcess(api.dataDir, redis.url, BLENDER_ENV));
    await eventually('both nodes with Blender', async () => ((await nodes(api)).filter((n) => n.blender?.devices.includes('CPU')).length === 2 ? true : undefined), 60_000);
  }, 120_000);

  it('chunks that fail on one node are rendered by the other, and the failures are on record', async () => {
    const token = await post(api, { movie: 'title', parallel: 2, params: { name: 'Flamenco', samples: 4 } });
    const mp4 = await download(`${api.url}/v2/get/${token}.mp4`, 'flamenco.mp4');
    expect(mp4.status).toBe(200);
    await expectEveryFrameOnceInOrder(mp4.file);
    await done(api, token);

    // Every chunk was rendered by the healthy node; the failing node's failures were counted for the run.
    expect(chunksIn(failing.output())).toEqual([]);
    expectTiling(chunksIn(healthy.output()));
    const failingId = (await nodes(api)).find((n) => n.pid === failing.pid)!.id;
    const runs = await redisClient.keys('montage:failures:run:*');
    expect(runs).toHaveLength(1);
    const counts = await redisClient.hgetall(runs[0]);
    expect(Number(counts[failingId])).toBeGreaterThanOrEqual(1);
    expect(Object.keys(counts)).toEqual([failingId]);
    const jobs = await redisClient.keys('montage:failures:job:*');
    expect(jobs.length).toBeGreaterThanOrEqual(1);
    for (const key of jobs) expect(await redisClient.smembers(key)).toEqual([failingId]);
  }, 150_000);

  it("when every node fails, GET answers in bounded time with Blender's own error text", async () => {
    const earlierJobs = new Set(await redisClient.keys('montage:failures:job:*'));
    process.kill(healthy.pid, 'SIGTERM');
    await healthy.exited;
    const another = track(startNodeProcess(api.dataDir, redis.url, { ...BLENDER_ENV, BLENDER_PATH: wrapper }));
    await eventually('two failing nodes', async () => {
      const live = await nodes(api);
      return live.length === 2 && live.some((n) => n.pid === another.pid) && live.some((n) => n.pid === failing.pid) ? true : undefined;
    }, 60_000);

    const token = await post(api, { movie: 'title', parallel: 2, params: { name: 'Doomed', samples: 5 } });
    const started = Date.now();
    const res = await fetch(`${api.url}/v2/get/${token}.mp4`);
    const text = await res.text();
    const took = Date.now() - started;
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = JSON.parse(text) as { message: string };
    expect(body.message).toMatch(/Blender failed \(exit 1\): Error: simulated GPU driver crash/);
    // Three attempts per chunk, each a Blender that fails at once, a second's wait between hand-overs.
    expect(took).toBeLessThan(45_000);
    const p = await progress(api, token);
    expect(p.status).toBe('failed');
    expect(p.error).toMatch(/simulated GPU driver crash/);
    // A chunk that failed on one node was tried on the other before the render gave up.
    const ids = (await nodes(api)).map((n) => n.id).sort();
    const tried = await Promise.all((await redisClient.keys('montage:failures:job:*')).filter((k) => !earlierJobs.has(k)).map((k) => redisClient.smembers(k)));
    expect(tried.map((n) => [...n].sort())).toContainEqual(ids);
  }, 120_000);
});
