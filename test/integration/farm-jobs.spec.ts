import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import sharp from 'sharp';
import { type ApiProc, eventually, killGroup, processesWith, type Proc, type RedisProc, startApiProcess, startNodeProcess, startRedis } from '../helpers/processes';

// Farm jobs end to end, with real components: the built API process, one render-node process
// (Debian's Blender, CPU, one thread), redis-server, local storage in the shared data dir, and
// unzip. A tiny scene is made by Blender itself: 64×48, 1 Cycles sample, frames 1–6, cameras
// "Camera" and "Closeup", view layers "ViewLayer" and "ball". The flow is Rentaflop's example:
// upload → confirm → render → progress → download, with only the base URL changed.
//
// Needs the farm-files slice (upload, confirm-upload) and the farm-node slice (the node's
// InspectScene and RenderFarmFrames handlers) on the same branch.

const execFileP = promisify(execFile);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-farm-jobs-'));
const SCENE = path.join(work, 'my_project.blend');
// These tests poll progress every 50 ms: no requests-per-minute limit (rate-limits.spec.ts covers the farm's).
const ENV = { BLENDER_THREADS: '1', FARM_CHUNK_FRAMES: '2', RATE_LIMIT_REQUESTS_PER_MINUTE: '0' };

const MAKE_SCENE = `
import bpy, sys
out = sys.argv[sys.argv.index('--') + 1]
s = bpy.context.scene
s.render.engine = 'CYCLES'
s.cycles.samples = 1
s.cycles.use_denoising = False
s.render.resolution_x = 64
s.render.resolution_y = 48
s.render.resolution_percentage = 100
s.frame_start = 1
s.frame_end = 6
s.collection.objects.link(bpy.data.objects.new('Closeup', bpy.data.cameras.new('Closeup')))
s.view_layers.new('ball')
cube = bpy.data.objects['Cube']
cube.location = (0, 0, 0)
cube.keyframe_insert('location', frame=1)
cube.location = (2, 0, 0)
cube.keyframe_insert('location', frame=6)
bpy.ops.wm.save_as_mainfile(filepath=out, compress=False)
`;

let redis: RedisProc;
let redisClient: Redis;
let api: ApiProc;
let node: Proc;
let base: string;
let key: string;

async function post(route: string, body: Record<string, unknown>): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function progress(job: string) {
  return (await post('progress', { api_key: key, job_id: job })).json as { job_status: string; frames_completed: number; total_frames: number; frames: Array<{ frame: number; status: string; node?: string }> };
}

async function settled(job: string, ms = 300_000) {
  return eventually(`job ${job} to end`, async () => {
    const p = await progress(job);
    return p.job_status === 'In progress' ? undefined : p;
  }, ms);
}

/** The stored frame files of a job (local storage, in the API's data dir). */
function storedFrames(job: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(path.join(dir, entry.name));
      else if (entry.name.startsWith(`fr-${job}-`)) found.push(path.join(dir, entry.name));
    }
  };
  walk(api.dataDir);
  return found.sort();
}

/** Fetches a URL without any key and writes it to a file; `unzip -l`'s names. */
async function downloadZip(url: string, name: string): Promise<{ file: string; names: string[] }> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/zip');
  const file = path.join(work, name);
  fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
  await execFileP('unzip', ['-t', file]);
  const { stdout } = await execFileP('unzip', ['-Z1', file]);
  return { file, names: stdout.split('\n').filter(Boolean).sort() };
}

beforeAll(async () => {
  execFileSync('blender', ['-b', '--factory-startup', '--python-exit-code', '3', '--python-expr', MAKE_SCENE, '--', SCENE], { stdio: 'ignore' });
  redis = await startRedis(fs.mkdtempSync(path.join(work, 'redis-')));
  redisClient = new Redis({ path: redis.url.replace(/^unix:\/\//, ''), maxRetriesPerRequest: 1 });
  api = await startApiProcess({ ...ENV, REDIS_URL: redis.url, EMBEDDED_RENDER_NODE: '0' });
  node = startNodeProcess(api.dataDir, redis.url, ENV);
  base = `${api.url}/v1/farm/`;
  key = api.key();
  await eventually('a node with Blender', async () => {
    const { nodes } = (await (await fetch(`${api.url}/v2/nodes`)).json()) as { nodes: Array<{ blender?: { version?: string } }> };
    return nodes.some((n) => n.blender?.version) ? true : undefined;
  }, 60_000);
}, 120_000);

afterAll(async () => {
  for (const proc of [node, api]) {
    if (!proc) continue;
    killGroup(proc.pid);
    await proc.exited;
  }
  redisClient?.disconnect();
  await redis?.stop();
  if (api) await eventually("the API's children to leave", () => (processesWith(api.dataDir).length === 0 ? true : undefined), 10_000).catch(() => undefined);
  fs.rmSync(work, { recursive: true, force: true });
  if (api) fs.rmSync(api.dataDir, { recursive: true, force: true });
}, 30_000);

describe("Rentaflop's flow against /v1/farm/", () => {
  let uploadId: string;
  let job: string;

  it('answers health like Rentaflop', async () => {
    expect(await (await fetch(`${base}health`)).json()).toEqual({ status: 200 });
  });

  it('uploads and confirms a .blend (as Python requests would: the fields, then the file)', async () => {
    const up = await post('upload', { api_key: key, filename: 'my_project.blend' });
    expect(up.status).toBe(200);
    const form = new FormData();
    for (const [k, v] of Object.entries(up.json.fields as Record<string, string>)) form.append(k, v);
    form.append('file', new Blob([fs.readFileSync(SCENE)]), 'my_project.blend');
    const sent = await fetch(up.json.url as string, { method: 'POST', body: form });
    expect(sent.status).toBeLessThan(300);
    const confirmed = await post('confirm-upload', { api_key: key, filename: up.json.filename });
    expect(confirmed.status).toBe(200);
    uploadId = confirmed.json.upload_id as string;
    expect(uploadId).toBeTruthy();
  });

  it('refuses a camera the scene lacks, naming the ones it has', async () => {
    const refused = await post('render', { api_key: key, upload_id: uploadId, camera: 'Nope' });
    expect(refused.status).toBe(400);
    expect(refused.json).toMatchObject({ statusCode: 400, message: 'camera: the scene has no camera "Nope"; it has "Camera", "Closeup"' });
    const version = await post('render', { api_key: key, upload_id: uploadId, blender_version: '2.79' });
    expect(version.status).toBe(400);
    expect(version.json.message).toMatch(/^blender_version: no render node runs Blender 2\.79; available: 3\.4\.\d+$/);
  });

  it('renders every frame of the scene: progress reaches Finished with each frame done by the node', async () => {
    const started = await post('render', { api_key: key, upload_id: uploadId, blender_version: '3.4.1' });
    expect(started.status).toBe(200);
    expect(started.json).toEqual({ status: 200, job_id: expect.stringMatching(/^job_/), total_frames: 6 });
    job = started.json.job_id as string;
    const done = await settled(job);
    expect(done).toMatchObject({ job_status: 'Finished', frames_completed: 6, total_frames: 6 });
    expect(done.frames.map((f) => [f.frame, f.status])).toEqual([1, 2, 3, 4, 5, 6].map((f) => [f, 'done']));
    expect(done.frames.every((f) => typeof f.node === 'string' && f.node.length > 0)).toBe(true);
  }, 400_000);

  it('downloads the frames as a zip through a signed URL that needs no key; a second download leaves out the frames the client has', async () => {
    const asked = await post('download', { api_key: key, job_id: job });
    expect(asked.json).toMatchObject({ status: 200, frames: 6 });
    const all = await downloadZip(asked.json.url as string, 'all.zip');
    expect(all.names).toEqual([1, 2, 3, 4, 5, 6].map((f) => `${job}/frame_00000${f}.png`));
    await execFileP('unzip', ['-o', '-q', all.file, '-d', path.join(work, 'all')]);
    const first = path.join(work, 'all', job, 'frame_000001.png');
    const last = path.join(work, 'all', job, 'frame_000006.png');
    expect(await sharp(first).metadata()).toMatchObject({ width: 64, height: 48, format: 'png' });
    // The cube moves between frame 1 and 6: the pictures differ.
    const [a, b] = await Promise.all([first, last].map((f) => sharp(f).raw().toBuffer()));
    expect(a.equals(b)).toBe(false);

    const manifest = (await (await fetch(asked.json.manifest_url as string)).json()) as { frames: Array<{ frame: number; name: string; sha256: string; url: string }> };
    expect(manifest.frames).toHaveLength(6);
    const have = manifest.frames.slice(0, 2).map((f) => ({ name: f.name, sha256: f.sha256 }));
    const again = await post('download', { api_key: key, job_id: job, have });
    expect(again.json.frames).toBe(4);
    const partial = await downloadZip(again.json.url as string, 'partial.zip');
    expect(partial.names).toEqual([3, 4, 5, 6].map((f) => `${job}/frame_00000${f}.png`));

    // A single frame: by its signed URL, and with the key.
    const one = await fetch(manifest.frames[2].url);
    expect(one.status).toBe(200);
    expect(await sharp(Buffer.from(await one.arrayBuffer())).metadata()).toMatchObject({ width: 64, height: 48 });
    expect((await fetch(`${base}jobs/${job}/frames/3`)).status).toBe(401);
    expect((await fetch(`${base}jobs/${job}/frames/3`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    // A tampered URL is refused.
    const tampered = new URL(asked.json.url as string);
    tampered.searchParams.set('expires', String(Number(tampered.searchParams.get('expires')) + 60));
    expect((await fetch(tampered)).status).toBe(403);
  });

  it("lists the job among Fox's tasks, with its frames when asked", async () => {
    const list = (await (await fetch(`${base}tasks?status=finished`, { headers: { 'x-api-key': key } })).json()) as { tasks: Array<{ task_id: string }>; total: number };
    expect(list.tasks.map((t) => t.task_id)).toContain(job);
    const one = (await (await fetch(`${base}tasks/${job}?has_frames=1`, { headers: { 'x-api-key': key } })).json()) as { task: { frames: unknown[]; job_status: string } };
    expect(one.task).toMatchObject({ job_status: 'Finished' });
    expect(one.task.frames).toHaveLength(6);
  });

  it('stops a job: nothing more starts, it ends Stopped; a retry has nothing failed to do', async () => {
    // 40 frames in 20 chunks of 2, one node taking one chunk at a time: stopped at once, most never start.
    const started = await post('render', { api_key: key, upload_id: uploadId, frames: '1-40' });
    const stoppedJob = started.json.job_id as string;
    const stop = await post('stop', { api_key: key, job_id: stoppedJob });
    expect(stop.status).toBe(200);
    const end = await settled(stoppedJob);
    expect(end.job_status).toBe('Stopped');
    const waiting = end.frames.filter((f) => f.status === 'waiting').length;
    expect(waiting).toBeGreaterThanOrEqual(30);
    expect(end.frames_completed + waiting).toBe(40); // the chunks that had started finished whole: nothing half done, nothing failed
    const retry = await post(`jobs/${stoppedJob}/retry`, { api_key: key });
    expect(retry.status).toBe(409);
    expect(retry.json).toMatchObject({ statusCode: 409, message: 'no frame of this job failed: nothing to retry' });
    const removed = await fetch(`${base}jobs/${stoppedJob}`, { method: 'DELETE', headers: { 'x-api-key': key } });
    expect(removed.status).toBe(200);
    expect((await post('progress', { api_key: key, job_id: stoppedJob })).status).toBe(404);
    expect(storedFrames(stoppedJob)).toEqual([]);
    // The stop flag outlives the job: a chunk of it that wakes up later renders nothing.
    expect(await redisClient.exists(`montage:farm:${stoppedJob}:stopped`)).toBe(1);
    expect(await redisClient.exists(`montage:farm:${stoppedJob}:removed`)).toBe(1);
  }, 400_000);

  it('settles a job nobody asks about (the settler of an API process with DELIVERY_WORKERS)', async () => {
    const started = await post('render', { api_key: key, upload_id: uploadId, frames: '1-2' });
    const quiet = started.json.job_id as string;
    // Not a single look through the API: its frames appear, then its Redis states are copied and removed.
    await eventually('the frames to be stored', () => (storedFrames(quiet).length === 2 ? true : undefined), 300_000);
    await eventually('the settler to settle it', async () => ((await redisClient.exists(`montage:farm:${quiet}:frames`)) === 0 ? true : undefined), 60_000);
    const asked = await post('download', { api_key: key, job_id: quiet });
    expect(asked.json).toMatchObject({ job_status: 'Finished', frames: 2 });
    const manifest = (await (await fetch(asked.json.manifest_url as string)).json()) as { frames: Array<{ frame: number; sha256: string }> };
    expect(manifest.frames.map((f) => f.sha256)).toEqual(storedFrames(quiet).map((f) => createHash('sha256').update(fs.readFileSync(f)).digest('hex')));
  }, 400_000);

  it('deletes a running job: gone at once; what its running chunk stores afterwards is swept once the chunk has ended', async () => {
    const started = await post('render', { api_key: key, upload_id: uploadId, frames: '1-8' });
    const running = started.json.job_id as string;
    // Deleted between its first stored frame and its chunk's end: the chunk may store more.
    await eventually('a frame of it to be stored', () => (storedFrames(running).length > 0 ? true : undefined), 300_000);
    const removed = await fetch(`${base}jobs/${running}`, { method: 'DELETE', headers: { 'x-api-key': key } });
    expect(removed.status).toBe(200);
    expect((await post('progress', { api_key: key, job_id: running })).status).toBe(404);
    const tasks = (await (await fetch(`${base}tasks`, { headers: { 'x-api-key': key } })).json()) as { tasks: Array<{ task_id: string }> };
    expect(tasks.tasks.map((t) => t.task_id)).not.toContain(running);
    // Its chunks: removed from the queue, or ended (BullMQ's finishedOn).
    const chunksEnded = async () => {
      for (const i of [0, 1, 2, 3]) {
        const jobKey = `bull:render.default.blender:farm-${running}-c${i}-a1`;
        if ((await redisClient.exists(jobKey)) === 1 && !(await redisClient.hget(jobKey, 'finishedOn'))) return undefined;
      }
      return true;
    };
    await eventually('its chunks to end', chunksEnded, 300_000);
    await eventually('its frames to be swept', () => (storedFrames(running).length === 0 ? true : undefined), 60_000);
  }, 400_000);
});
