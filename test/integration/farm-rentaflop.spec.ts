import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { type ApiProc, killGroup, type Proc, type RedisProc, startApiProcess, startNodeProcess, startRedis, eventually } from '../helpers/processes';
import { type S3Server, startS3Server } from '../helpers/s3-server';

// Rentaflop's own Python example (test/fixtures/farm/rentaflop_example.py, copied verbatim from
// their API document) run against Montage with only its base URL changed: upload through the
// presigned POST, confirm, render, poll progress, download the zip — with real Python
// `requests`, a real API process, a real render node with Debian's Blender, Redis, and both
// storages (radosgw S3: the POST goes to S3 itself; local: to the API's signed upload target).
// Only `time.sleep` is shortened (their loop sleeps 60 s between polls).
const run = promisify(execFile);
const ROOT = path.join(__dirname, '..', '..');
const EXAMPLE = path.join(ROOT, 'test', 'fixtures', 'farm', 'rentaflop_example.py');
const SCENE_SCRIPT = path.join(ROOT, 'bench', 'farm', 'make_bench_scene.py');
const BLENDER = process.env.BLENDER_PATH || execFileSync('sh', ['-c', 'command -v blender'], { encoding: 'utf8' }).trim();

let s3: S3Server;
let redis: RedisProc;
const procs: Proc[] = [];
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-rentaflop-'));

beforeAll(async () => {
  [s3, redis] = await Promise.all([startS3Server(), startRedis()]);
  // Their example uploads `my_project.blend` from the working directory: 3 frames at 64×36, one Cycles sample.
  await run(BLENDER, ['-b', '--factory-startup', '--python-exit-code', '3', '-P', SCENE_SCRIPT, '--', path.join(work, 'my_project.blend'), '64', '36', '3', '1']);
}, 180_000);

// Each case's API and node go when it ends: the cases share one Redis, and a node left from the
// S3 case would take the next case's chunks and refuse them (another storage than its API's).
afterEach(async () => {
  for (const p of procs.splice(0)) {
    killGroup(p.pid);
    await p.exited;
  }
});

afterAll(async () => {
  for (const p of procs) killGroup(p.pid);
  await redis?.stop();
  await s3?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

async function farmWith(storageUrl: string | undefined): Promise<ApiProc> {
  const env = { EMBEDDED_RENDER_NODE: '0', REDIS_URL: redis.url, BLENDER_THREADS: '1', ...(storageUrl ? { STORAGE_URL: storageUrl } : {}) };
  const api = await startApiProcess(env);
  procs.push(api);
  const node = startNodeProcess(api.dataDir, redis.url, env);
  procs.push(node);
  await eventually('a render node with Blender', async () => {
    if (!node.running()) throw new Error(`the node exited: ${node.output().slice(-2000)}`);
    const { nodes } = (await (await fetch(`${api.url}/v2/nodes`)).json()) as { nodes: Array<{ pid: number; engines: string[] }> };
    return nodes.some((n) => n.pid === node.pid && n.engines.includes('blender')) ? true : undefined;
  }, 60_000);
  return api;
}

describe.each([
  ['radosgw S3', 's3', () => s3.storageUrl(`rentaflop-${Date.now().toString(36)}`)],
  ['local storage', 'local', () => undefined],
])("Rentaflop's example against Montage (%s)", (_name, storageKind, storage) => {
  it('uploads, confirms, renders, polls and downloads a zip of every frame, changing only the base URL', async () => {
    const api = await farmWith(storage());
    const dir = fs.mkdtempSync(path.join(work, 'client-'));
    fs.copyFileSync(path.join(work, 'my_project.blend'), path.join(dir, 'my_project.blend'));
    const original = fs.readFileSync(EXAMPLE, 'utf8');
    const script = original.replace('rentaflop_api_url = "https://api.rentaflop.com/v1/"', `rentaflop_api_url = "${api.url}/v1/farm/"`);
    // The only change: one line.
    const changed = script.split('\n').filter((line, i) => line !== original.split('\n')[i]);
    expect(changed).toEqual([`rentaflop_api_url = "${api.url}/v1/farm/"`]);
    fs.writeFileSync(path.join(dir, 'example.py'), script);
    const shortSleep = 'import time, runpy; _sleep = time.sleep; time.sleep = lambda s: _sleep(min(s, 0.5)); runpy.run_path("example.py", run_name="__main__")';
    const { stdout } = await run('python3', ['-c', shortSleep], { cwd: dir, env: { ...process.env, RENTAFLOP_KEY: api.key() }, timeout: 240_000 });
    expect(stdout).toContain('Completed 3 out of 3 frames.');
    expect(stdout).toContain('Download complete.');

    // A real zip (unzip -t) with the three frames, each a 64×36 picture that is not blank.
    const zip = path.join(dir, 'output.zip');
    const { stdout: tested } = await run('unzip', ['-t', zip]);
    expect(tested).toContain('No errors detected');
    const { stdout: listing } = await run('unzip', ['-Z1', zip]);
    const names = listing.trim().split('\n').sort();
    expect(names).toHaveLength(3);
    expect(names.every((n) => /frame_0*[123]\.png$/.test(n))).toBe(true);
    await run('unzip', ['-q', zip, '-d', path.join(dir, 'out')]);
    for (const name of names) {
      const { data, info } = await sharp(path.join(dir, 'out', name)).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height]).toEqual([64, 36]);
      let min = 255;
      let max = 0;
      for (const v of data) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      expect(max - min).toBeGreaterThan(20); // the spheres on the floor, not one flat colour
    }

    // A single frame (which Fox lacks), through the manifest's signed URL: with S3 a redirect to
    // the bucket's own presigned GET (the bytes never pass through the API), with local storage
    // the API sends it; either way the bytes are the zip's.
    const key = api.key();
    const tasks = (await (await fetch(`${api.url}/v1/farm/tasks`, { headers: { 'X-Api-Key': key } })).json()) as { tasks: Array<{ job_id: string }> };
    const jobId = tasks.tasks[0].job_id;
    const download = (await (await fetch(`${api.url}/v1/farm/download`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ api_key: key, job_id: jobId }) })).json()) as { manifest_url: string };
    const manifest = (await (await fetch(download.manifest_url)).json()) as { frames: Array<{ frame: number; name: string; sha256: string; url: string }> };
    expect(manifest.frames.map((f) => f.frame)).toEqual([1, 2, 3]);
    const second = manifest.frames[1];
    const first = await fetch(second.url, { redirect: 'manual' });
    const bytes = async (res: Response) => Buffer.from(await res.arrayBuffer());
    let frameBytes: Buffer;
    if (storageKind === 's3') {
      expect(first.status).toBe(302);
      const location = first.headers.get('location')!;
      expect(location.startsWith(s3.endpoint)).toBe(true);
      expect(location).toContain('X-Amz-Signature=');
      const fromBucket = await fetch(location);
      expect(fromBucket.status).toBe(200);
      frameBytes = await bytes(fromBucket);
    } else {
      expect(first.status).toBe(200);
      frameBytes = await bytes(first);
    }
    expect(frameBytes.equals(fs.readFileSync(path.join(dir, 'out', names.find((n) => n.endsWith(path.basename(second.name)))!)))).toBe(true);
    expect(createHash('sha256').update(frameBytes).digest('hex')).toBe(second.sha256);
  }, 300_000);
});
