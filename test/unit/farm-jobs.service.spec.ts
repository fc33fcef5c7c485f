import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { MontageError } from '../../src/common/errors';
import { loadConfig } from '../../src/config/config';
import type { FarmFilesService } from '../../src/farm/farm-files.service';
import { FarmJobsService, parseHave } from '../../src/farm/farm-jobs.service';
import { CHUNK_FAILED, deriveProgress } from '../../src/farm/farm-progress';
import type { FarmStore } from '../../src/farm/farm-store';
import { FarmUrlsService } from '../../src/farm/farm-urls.service';
import { FARM_JOBS_COLLECTION, type FarmFileDoc, type FarmJobDoc, type FrameState, type SceneInventory } from '../../src/farm/farm.types';
import type { NodeHeartbeat } from '../../src/jobs/job.types';
import { ArchiveRepository } from '../../src/repositories/archive.repository';
import { NedbDocumentStore } from '../../src/repositories/document-store/nedb';
import { failedByMontage, type JobQueueRepository } from '../../src/repositories/job-queue/job-queue.repository';
import type { OutputStorage } from '../../src/repositories/output-storage/port';
import { sign } from '../../src/projects/url-signing';
import { SecretBox } from '../../src/secrets/secret-box';

// The job service with its neighbours replaced: the real embedded document store (nedb, in a
// temp dir), a queue and a storage that record calls, files and projects as fixed answers.

const INVENTORY: SceneInventory = {
  scene: 'Scene',
  cameras: ['Camera', 'Closeup'],
  camera: 'Camera',
  viewLayers: ['ViewLayer', 'ball'],
  frameStart: 1,
  frameEnd: 10,
  frameStep: 1,
  fps: 24,
  width: 160,
  height: 90,
  resolutionPercent: 100,
  engine: 'CYCLES',
  externalFiles: [],
  savedWith: '3.4.1',
};

const BLEND: FarmFileDoc = { _id: 'up_blend', project: 'p1', path: 'shot/lgt.blend', kind: 'blend', sha256: 'a'.repeat(64), size: 1000, storageKey: 'ffblend', ext: 'blend', inventory: INVENTORY, createdAt: '2026-01-01T00:00:00.000Z' };
const TEXTURE: FarmFileDoc = { ...BLEND, _id: 'up_tex', path: 'shot/tex/wood.png', kind: 'asset', storageKey: 'fftex', ext: 'png', inventory: undefined };
const PROJECT = { _id: 'p1', keyHashes: [], signingSecret: 's'.repeat(64), public: false, limits: {}, createdAt: '' };

class FakeQueue {
  enqueued: Array<{ queue: string; name: string; jobs: Array<{ payload: unknown; jobId: string }> }> = [];
  states: Record<string, Record<number, FrameState>> = {};
  chunkStates = new Map<string, { state: string; failedReason?: string; ours?: boolean }>();
  nodes: NodeHeartbeat[] = [];
  stopped = new Set<string>();
  removedJobs = new Set<string>();
  resumed: string[] = [];
  removedWaiting: string[] = [];
  removedState: string[] = [];
  /** jobState calls in flight now, and the most at once. */
  inFlight = 0;
  mostInFlight = 0;
  stateDelayMs = 0;

  async enqueueBulk(queue: string, name: string, jobs: Array<{ payload: unknown; jobId: string }>) {
    this.enqueued.push({ queue, name, jobs });
    for (const j of jobs) this.chunkStates.set(j.jobId, { state: 'waiting' });
  }
  async farmFrameStates(job: string) {
    return { ...(this.states[job] ?? {}) };
  }
  async setFarmFrameState(job: string, frame: number, state: FrameState) {
    (this.states[job] ??= {})[frame] = state;
  }
  async jobState(_queue: string, id: string) {
    this.mostInFlight = Math.max(this.mostInFlight, ++this.inFlight);
    if (this.stateDelayMs) await new Promise((r) => setTimeout(r, this.stateDelayMs));
    this.inFlight--;
    return this.chunkStates.get(id);
  }
  async liveNodes() {
    return this.nodes;
  }
  async stopFarmJob(job: string) {
    this.stopped.add(job);
  }
  async removeWaiting(_queue: string, id: string) {
    if (!['waiting', 'delayed'].includes(this.chunkStates.get(id)?.state ?? '')) return false;
    this.chunkStates.delete(id);
    this.removedWaiting.push(id);
    return true;
  }
  async removeFarmJob(job: string) {
    this.removedJobs.add(job);
  }
  async farmJobRemoved(job: string) {
    return this.removedJobs.has(job);
  }
  async resumeFarmJob(job: string) {
    this.resumed.push(job);
    this.stopped.delete(job);
  }
  // As the repository: the frame states only; the stop and removal flags stay until they expire.
  async removeFarmJobState(job: string) {
    this.removedState.push(job);
    delete this.states[job];
  }
}

describe('FarmJobsService', () => {
  let dir: string;
  let db: NedbDocumentStore;
  let queue: FakeQueue;
  let service: FarmJobsService;
  const stored = new Map<string, Buffer>();
  const removed: string[] = [];
  let storageDown = false;

  beforeEach(() => {
    stored.clear();
    removed.length = 0;
    storageDown = false;
    dir = mkdtempSync(path.join(tmpdir(), 'farm-jobs-'));
    db = new NedbDocumentStore(dir);
    queue = new FakeQueue();
    const store = {
      jobs: db.collection(FARM_JOBS_COLLECTION),
      downloads: db.collection('farm_downloads'),
      collection: (name: string) => db.collection(name),
      authenticateKey: async (key?: string) => {
        if (key !== 'k1') throw new MontageError('unauthorized', 'invalid API key');
        return PROJECT;
      },
      project: async (id: string) => (id === 'p1' ? PROJECT : undefined),
    } as unknown as FarmStore;
    const files = {
      get: async (_p: string, id: string) => {
        const doc = [BLEND, TEXTURE].find((d) => d._id === id);
        if (!doc) throw new MontageError('not_found', 'unknown upload_id', [{ field: 'upload_id', message: 'unknown' }]);
        return doc;
      },
      byPath: async (_p: string, p: string) => [BLEND, TEXTURE].find((d) => d.path === p) ?? Promise.reject(new MontageError('not_found', 'no such path')),
      filesBeside: async () => [{ path: TEXTURE.path, storageKey: TEXTURE.storageKey, ext: 'png', sha256: TEXTURE.sha256, size: TEXTURE.size }],
      ref: (d: FarmFileDoc) => ({ path: d.path, storageKey: d.storageKey, ext: d.ext, sha256: d.sha256, size: d.size }),
    } as unknown as FarmFilesService;
    const storage = {
      identity: async () => 'storage-1',
      stat: async (key: string, ext: string) => {
        if (storageDown) throw new Error('storage is away');
        return stored.has(`${key}.${ext}`) ? { size: stored.get(`${key}.${ext}`)!.length, mtime: new Date('2026-02-01T00:00:00.000Z') } : undefined;
      },
      read: async (key: string, ext: string) => Readable.from([stored.get(`${key}.${ext}`)!]),
      // Local storage: no presigned GET, the API sends the bytes.
      presignDownload: async () => undefined,
      remove: async (key: string, ext: string) => {
        removed.push(`${key}.${ext}`);
        stored.delete(`${key}.${ext}`);
      },
    } as unknown as OutputStorage;
    const config = loadConfig({ FARM_CHUNK_FRAMES: '4' });
    service = new FarmJobsService(store, files, new ArchiveRepository(), queue as unknown as JobQueueRepository, storage, config, new FarmUrlsService(new SecretBox(randomBytes(32)), config));
  });

  afterEach(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function refusal(call: Promise<unknown>): Promise<MontageError> {
    try {
      await call;
    } catch (err) {
      return err as MontageError;
    }
    throw new Error('expected a refusal');
  }

  const done = (frame: number, node = 'n1'): FrameState => ({ status: 'done', node, storageKey: `fr-${frame}`, ext: 'png', bytes: 3, sha256: String(frame).padStart(64, '0'), at: new Date().toISOString() });

  it('starts a job: the scene range by default, chunks on the Blender queue with the whole payload', async () => {
    const answer = await service.render('k1', { api_key: 'k1', upload_id: 'up_blend', blender_version: '3.4.1' });
    expect(answer).toEqual({ status: 200, job_id: expect.stringMatching(/^job_[A-Za-z0-9]+$/), total_frames: 10 });
    expect(queue.enqueued).toHaveLength(1);
    const [bulk] = queue.enqueued;
    expect(bulk.queue).toBe('render.default.blender');
    expect(bulk.name).toBe('render-farm-frames');
    expect(bulk.jobs.map((j) => j.jobId)).toEqual([0, 1, 2].map((i) => `farm-${answer.job_id}-c${i}-a1`));
    expect(bulk.jobs[0].payload).toEqual({
      engine: 'blender',
      job: answer.job_id,
      project: 'p1',
      chunk: 0,
      attempt: 1,
      frames: [1, 2, 3, 4],
      source: {
        kind: 'blend',
        main: { path: 'shot/lgt.blend', storageKey: 'ffblend', ext: 'blend', sha256: 'a'.repeat(64), size: 1000 },
        files: [{ path: 'shot/tex/wood.png', storageKey: 'fftex', ext: 'png', sha256: 'a'.repeat(64), size: 1000 }],
      },
      settings: { format: 'PNG', resolutionPercent: 100, device: 'CPU', blenderVersion: '3.4.1' },
      storageId: 'storage-1',
    });
  });

  it("takes Fox's fields: a scene by path, frames, layer, camera; format aliases, device and parallel pick the queue and chunks", async () => {
    const answer = await service.render('k1', { input_scene_path: 'shot/lgt.blend', frames: '1073-1073[1],1-3', render_layer: 'ball', camera: 'Closeup', format: 'jpg', device: 'optix', parallel: 4, routingkey: 'gpu', project_name: 'api', samples: 8, resolution_percent: 50 });
    expect(answer.total_frames).toBe(4);
    const [bulk] = queue.enqueued;
    expect(bulk.queue).toBe('render.gpu.blender.optix');
    expect(bulk.jobs.map((j) => (j.payload as { frames: number[] }).frames)).toEqual([[1], [2], [3], [1073]]);
    expect((bulk.jobs[0].payload as { settings: unknown }).settings).toEqual({ renderLayer: 'ball', camera: 'Closeup', format: 'JPEG', resolutionPercent: 50, samples: 8, device: 'OPTIX' });
  });

  it('refuses bad requests with a 400 naming the field, and what the scene has', async () => {
    expect((await refusal(service.render('k1', { upload_id: 'up_blend', camera: 'Nope' }))).message).toBe('camera: the scene has no camera "Nope"; it has "Camera", "Closeup"');
    const layer = await refusal(service.render('k1', { upload_id: 'up_blend', render_layer: 'x', camera: 'y' }));
    expect(layer.httpStatus).toBe(400);
    expect(layer.details.map((d) => d.field)).toEqual(['render_layer', 'camera']);
    expect(layer.details[0].message).toBe('the scene has no view layer "x"; it has "ViewLayer", "ball"');
    const unknown = await refusal(service.render('k1', { upload_id: 'up_blend', fps: 3, $where: 1 }));
    expect(unknown.message).toMatch(/^unknown fields: fps, \$where/);
    expect(unknown.details).toEqual([{ field: 'fps', message: 'unknown field' }, { field: '$where', message: 'unknown field' }]);
    expect((await refusal(service.render('k1', { upload_id: 'up_blend', format: 'gif' }))).details[0].field).toBe('format');
    expect((await refusal(service.render('k1', { upload_id: 'up_blend', resolution_percent: 101 }))).message).toBe('resolution_percent must be a whole number from 1 to 100');
    expect((await refusal(service.render('k1', { upload_id: 'up_blend', samples: 0 }))).message).toBe('samples must be a whole number from 1 to 4096');
    expect((await refusal(service.render('k1', { upload_id: 'up_blend', device: 'TPU' }))).details[0].field).toBe('device');
    expect((await refusal(service.render('k1', { upload_id: 'up_blend', frames: '10-1' }))).message).toBe("frames: '10-1' ends before it starts");
    expect((await refusal(service.render('k1', { upload_id: 'up_tex' }))).message).toBe('upload_id: not a .blend scene (it is an asset)');
    expect((await refusal(service.render('k1', { upload_id: 'up_\u0000' }))).details[0].field).toBe('upload_id');
    expect((await refusal(service.render('k1', {}))).message).toBe('upload_id (or input_scene_path) is required');
    expect((await refusal(service.render('k1', ['x']))).httpStatus).toBe(400);
    expect((await refusal(service.render(undefined, { upload_id: 'up_blend' }))).httpStatus).toBe(401);
    expect(queue.enqueued).toHaveLength(0);
  });

  it("checks blender_version against the live nodes' (major.minor), and accepts any when none is up", async () => {
    await expect(service.render('k1', { upload_id: 'up_blend', blender_version: '4.2' })).resolves.toMatchObject({ status: 200 });
    queue.nodes = [{ blender: { version: '3.4.1', devices: ['CPU'] } } as NodeHeartbeat, { blender: { version: '3.6.5', devices: ['CPU'] } } as NodeHeartbeat];
    const refused = await refusal(service.render('k1', { upload_id: 'up_blend', blender_version: '4.2' }));
    expect(refused.message).toBe('blender_version: no render node runs Blender 4.2; available: 3.4.1, 3.6.5');
    await expect(service.render('k1', { upload_id: 'up_blend', blender_version: '3.4.0' })).resolves.toMatchObject({ status: 200 });
    expect((await refusal(service.render('k1', { upload_id: 'up_blend', blender_version: '3.4; rm' }))).details[0].field).toBe('blender_version');
  });

  it('reports progress from frame and chunk states, and settles a finished job into the store', async () => {
    const { job_id: job } = await service.render('k1', { upload_id: 'up_blend', frames: '1-6' });
    const chunks = queue.enqueued[0].jobs.map((j) => j.jobId);
    expect(chunks).toHaveLength(2);
    queue.chunkStates.set(chunks[0], { state: 'active' });
    queue.states[job] = { 1: done(1), 2: { status: 'rendering', node: 'n1', at: new Date().toISOString() } };
    const running = await service.progress('k1', { job_id: job });
    expect(running).toMatchObject({ status: 200, frames_completed: 1, total_frames: 6, job_status: 'In progress' });
    expect(running.frames.slice(0, 3)).toEqual([
      { frame: 1, status: 'done', node: 'n1' },
      { frame: 2, status: 'rendering', node: 'n1' },
      { frame: 3, status: 'waiting' },
    ]);
    for (const f of [1, 2, 3, 4, 5, 6]) queue.states[job][f] = done(f, f > 3 ? 'n2' : 'n1');
    for (const c of chunks) queue.chunkStates.set(c, { state: 'completed' });
    const finished = await service.progress('k1', { job_id: job });
    expect(finished).toMatchObject({ frames_completed: 6, job_status: 'Finished' });
    expect(queue.removedState).toEqual([job]);
    const doc = (await db.collection<FarmJobDoc>(FARM_JOBS_COLLECTION).findOne({ _id: job }))!;
    expect(doc.status).toBe('Finished');
    expect(doc.settledAt).toBeDefined();
    expect(Object.keys(doc.frames!)).toEqual(['1', '2', '3', '4', '5', '6']);
    // Settled: Redis is no longer asked, the stored copy answers.
    queue.chunkStates.clear();
    expect(await service.progress('k1', { job_id: job })).toMatchObject({ frames_completed: 6, job_status: 'Finished' });
    expect((await refusal(service.progress('k1', { job_id: 'job_unknown' }))).httpStatus).toBe(404);
    expect((await refusal(service.progress('k1', { job_id: job, extra: 1 }))).httpStatus).toBe(400);
  });

  it('marks the frames of a chunk that failed for good as failed, with its reason, and the job Failed once nothing runs', async () => {
    const { job_id: job } = await service.render('k1', { upload_id: 'up_blend', frames: '1-8' });
    const [c0, c1] = queue.enqueued[0].jobs.map((j) => j.jobId);
    queue.states[job] = { 1: done(1), 2: done(2), 3: done(3), 4: done(4) };
    queue.chunkStates.set(c0, { state: 'completed' });
    queue.chunkStates.set(c1, { state: 'failed', failedReason: 'Blender crashed\nstack trace here', ours: true });
    const p = await service.progress('k1', { job_id: job });
    expect(p.job_status).toBe('Failed');
    expect(p.frames.slice(4)).toEqual([5, 6, 7, 8].map((frame) => ({ frame, status: 'failed', error: 'Blender crashed' })));
  });

  it("shows a chunk's failure reason only when it is ours; anything else (a path, BullMQ's words) is a fixed sentence", async () => {
    const { job_id: job } = await service.render('k1', { upload_id: 'up_blend', frames: '1-8' });
    const [c0, c1] = queue.enqueued[0].jobs.map((j) => j.jobId);
    queue.chunkStates.set(c0, { state: 'failed', failedReason: "ENOENT: no such file or directory, open '/var/lib/montage/farm/job_x/scene.blend'", ours: false });
    queue.chunkStates.set(c1, { state: 'failed', failedReason: 'job stalled more than allowable limit' });
    const p = await service.progress('k1', { job_id: job });
    expect(p.job_status).toBe('Failed');
    expect(new Set(p.frames.map((f) => f.error))).toEqual(new Set([CHUNK_FAILED]));
    expect(JSON.stringify(p)).not.toContain('/var/lib');
  });

  it('stops: waiting chunks removed, a running one finishes, Stopped once it has ended', async () => {
    const { job_id: job } = await service.render('k1', { upload_id: 'up_blend', frames: '1-12' });
    const [c0, c1, c2] = queue.enqueued[0].jobs.map((j) => j.jobId);
    queue.chunkStates.set(c0, { state: 'active' });
    const stopped = await service.stop('k1', job);
    expect(queue.stopped.has(job)).toBe(true);
    expect(queue.removedWaiting).toEqual([c1, c2]);
    expect(stopped.job_status).toBe('In progress'); // its running chunk goes on
    queue.chunkStates.set(c0, { state: 'completed' });
    queue.states[job] = { 1: done(1), 2: done(2), 3: done(3), 4: done(4) };
    const p = await service.progress('k1', { job_id: job });
    expect(p).toMatchObject({ job_status: 'Stopped', frames_completed: 4 });
    expect(p.frames[5]).toEqual({ frame: 6, status: 'waiting' });
    // Nothing failed: nothing to retry.
    const nothing = await refusal(service.retry('k1', job));
    expect(nothing.httpStatus).toBe(409);
    expect(nothing.message).toBe('no frame of this job failed: nothing to retry');
  });

  it('retries failed frames as new chunks of the next attempt; the job is In progress again and keeps its done frames', async () => {
    const { job_id: job } = await service.render('k1', { upload_id: 'up_blend', frames: '1-8' });
    const [c0, c1] = queue.enqueued[0].jobs.map((j) => j.jobId);
    queue.states[job] = { 1: done(1), 2: done(2), 3: done(3), 4: done(4), 5: done(5), 6: { status: 'failed', node: 'n2', error: 'out of memory', at: new Date(Date.now() - 1000).toISOString() } };
    queue.chunkStates.set(c0, { state: 'completed' });
    queue.chunkStates.set(c1, { state: 'failed', failedReason: 'out of memory' });
    expect((await service.progress('k1', { job_id: job })).job_status).toBe('Failed');
    const retried = await service.retry('k1', job);
    expect(retried).toEqual({ status: 200, job_id: job, job_status: 'In progress', retried_frames: 3, total_frames: 8 });
    const bulk = queue.enqueued[1];
    expect(bulk.jobs.map((j) => j.jobId)).toEqual([`farm-${job}-c2-a2`]);
    expect(bulk.jobs[0].payload).toMatchObject({ chunk: 2, attempt: 2, frames: [6, 7, 8] });
    const p = await service.progress('k1', { job_id: job });
    expect(p).toMatchObject({ job_status: 'In progress', frames_completed: 5 });
    expect(p.frames.slice(5)).toEqual([6, 7, 8].map((frame) => ({ frame, status: 'waiting' })));
    for (const f of [6, 7, 8]) (queue.states[job] ??= {})[f] = done(f);
    queue.chunkStates.set(`farm-${job}-c2-a2`, { state: 'completed' });
    expect(await service.progress('k1', { job_id: job })).toMatchObject({ job_status: 'Finished', frames_completed: 8 });
  });

  it('signs download URLs that leave out the frames the client has; a tampered or expired URL is refused', async () => {
    const { job_id: job } = await service.render('k1', { upload_id: 'up_blend', frames: '1-3' });
    queue.states[job] = { 1: done(1), 2: done(2), 3: done(3) };
    for (const c of queue.enqueued[0].jobs) queue.chunkStates.set(c.jobId, { state: 'completed' });
    for (const f of [1, 2, 3]) stored.set(`fr-${f}.png`, Buffer.from(`px${f}`));
    const all = await service.download('k1', { job_id: job }, 'http://api.test');
    expect(all).toMatchObject({ status: 200, frames: 3, job_status: 'Finished' });
    const url = new URL(all.url);
    expect(url.pathname).toBe(`/v1/farm/jobs/${job}/frames.zip`);
    const query = Object.fromEntries(url.searchParams);
    expect((await service.zipEntries(job, query)).entries.map((e) => e.name)).toEqual([1, 2, 3].map((f) => `${job}/frame_00000${f}.png`));
    const have = [
      { name: `${job}/frame_000001.png`, sha256: done(1).sha256 },
      { name: 'frame_000003.png', sha256: done(3).sha256 },
      { name: 'frame_000002.png', sha256: 'f'.repeat(64) }, // changed since: downloaded again
    ];
    const partial = await service.download('k1', { job_id: job, have }, 'http://api.test');
    expect(partial.frames).toBe(1);
    const partialQuery = Object.fromEntries(new URL(partial.url).searchParams);
    expect(partialQuery.d).toMatch(/^dl_/);
    const { entries } = await service.zipEntries(job, partialQuery);
    expect(entries.map((e) => e.name)).toEqual([`${job}/frame_000002.png`]);
    const byHash = await service.download('k1', { job_id: job, have: [done(2).sha256] }, 'http://api.test');
    expect(byHash.frames).toBe(2);
    // The zip itself: written as a stream, its bytes are the stored frames.
    const chunks: Buffer[] = [];
    await service.writeZip(entries, new Writable({ write: (c, _e, cb) => (chunks.push(c as Buffer), cb()) }));
    const zip = Buffer.concat(chunks);
    expect(zip.subarray(0, 4)).toEqual(Buffer.from('PK\x03\x04', 'latin1'));
    expect(zip.includes(Buffer.from('px2'))).toBe(true);
    expect(zip.includes(Buffer.from('px1'))).toBe(false);

    expect((await refusal(service.zipEntries(job, { ...query, expires: String(Number(query.expires) + 1) }))).httpStatus).toBe(403);
    expect((await refusal(service.zipEntries(job, { expires: query.expires }))).httpStatus).toBe(403);
    expect((await refusal(service.zipEntries(job, { ...partialQuery, d: 'dl_other' }))).httpStatus).toBe(403); // d is signed too
    // The project's signing secret (handed out for sign-url) cannot mint a farm URL, expiring or not.
    const zipPath = `/v1/farm/jobs/${job}/frames.zip`;
    const forever = { expires: '99999999999' };
    expect((await refusal(service.zipEntries(job, { ...forever, sig: sign(PROJECT.signingSecret, zipPath, forever) }))).httpStatus).toBe(403);
    expect(Number(query.expires)).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 3600);
    expect((await refusal(service.download('k1', { job_id: job, have: ['nothex'] }, 'http://api.test'))).details[0].field).toBe('have');

    const manifest = await service.manifest('k1', job, {}, 'http://api.test');
    expect(manifest.frames.map((f) => [f.frame, f.name, f.sha256, f.bytes])).toEqual([1, 2, 3].map((f) => [f, `${job}/frame_00000${f}.png`, done(f).sha256, 3]));
    const frameQuery = Object.fromEntries(new URL(manifest.frames[1].url).searchParams);
    const one = await service.frame(undefined, job, '2', frameQuery);
    expect(one).toMatchObject({ size: 3, name: 'frame_000002.png', ext: 'png' });
    if (!('stream' in one)) throw new Error('local storage serves the bytes itself');
    const body = await new Promise<string>((resolve) => {
      let text = '';
      one.stream.pipe(new PassThrough()).on('data', (c: Buffer) => (text += c)).on('end', () => resolve(text));
    });
    expect(body).toBe('px2');
    expect((await refusal(service.frame(undefined, job, '3', frameQuery))).httpStatus).toBe(403); // signed for frame 2 only
    expect((await refusal(service.frame('k1', job, '9', {}))).httpStatus).toBe(404);
  });

  it('deletes a job: stopped and flagged removed (the flags stay), its stored frames removed, gone', async () => {
    const { job_id: job } = await service.render('k1', { upload_id: 'up_blend', frames: '1-2' });
    queue.states[job] = { 1: done(1) };
    stored.set(`fr-${job}-000002.png`, Buffer.from('px2'));
    await expect(service.remove('k1', job)).resolves.toEqual({ status: 200, job_id: job, deleted: true });
    expect(removed).toEqual(expect.arrayContaining(['fr-1.png', `fr-${job}-000001.png`, `fr-${job}-000002.png`]));
    expect(stored.has(`fr-${job}-000002.png`)).toBe(false);
    expect(queue.removedState).toEqual([job]); // the frame states went
    expect(queue.stopped.has(job)).toBe(true); // a chunk that wakes up later still renders nothing
    expect(queue.removedJobs.has(job)).toBe(true);
    expect((await refusal(service.view('k1', job))).httpStatus).toBe(404);
    expect(await db.collection<FarmJobDoc>(FARM_JOBS_COLLECTION).findOne({ _id: job })).toBeNull();
  });

  it('deletes a running job: hidden at once; frames its chunk stores afterwards are swept by the settler once the chunk has ended', async () => {
    const { job_id: job } = await service.render('k1', { upload_id: 'up_blend', frames: '1-8' });
    const [c0, c1] = queue.enqueued[0].jobs.map((j) => j.jobId);
    queue.chunkStates.set(c0, { state: 'active' });
    queue.states[job] = { 1: { ...done(1), storageKey: `fr-${job}-000001` } };
    stored.set(`fr-${job}-000001.png`, Buffer.from('px1'));
    await service.remove('k1', job);
    expect(queue.removedJobs.has(job)).toBe(true);
    expect(queue.removedWaiting).toEqual([c1]);
    expect(stored.has(`fr-${job}-000001.png`)).toBe(false); // what was stored went at once
    expect((await refusal(service.view('k1', job))).httpStatus).toBe(404);
    expect((await refusal(service.progress('k1', { job_id: job }))).httpStatus).toBe(404);
    expect((await service.tasks('k1', {})).total).toBe(0);
    // The running chunk stored one more frame before it saw the flag.
    stored.set(`fr-${job}-000002.png`, Buffer.from('px2'));
    expect(await service.settleOpen()).toEqual({ settled: 0, swept: 0 });
    expect(stored.has(`fr-${job}-000002.png`)).toBe(true);
    queue.chunkStates.set(c0, { state: 'failed', failedReason: 'the job was removed', ours: true });
    expect(await service.settleOpen()).toEqual({ settled: 0, swept: 1 });
    expect(stored.has(`fr-${job}-000002.png`)).toBe(false);
    expect(removed).toEqual(expect.arrayContaining([1, 2, 3, 4, 5, 6, 7, 8].map((f) => `fr-${job}-00000${f}.png`)));
    expect(await db.collection<FarmJobDoc>(FARM_JOBS_COLLECTION).findOne({ _id: job })).toBeNull();
    expect(queue.stopped.has(job)).toBe(true);
  });

  it('refuses a retry while the job runs (409), and leaves its done frames alone', async () => {
    const { job_id: job } = await service.render('k1', { upload_id: 'up_blend', frames: '1-8' });
    const [c0, c1] = queue.enqueued[0].jobs.map((j) => j.jobId);
    queue.chunkStates.set(c0, { state: 'failed', failedReason: 'out of memory', ours: true });
    queue.chunkStates.set(c1, { state: 'active' });
    const live = { 5: done(5), 6: done(6) };
    queue.states[job] = { ...live };
    const running = await refusal(service.retry('k1', job));
    expect(running.httpStatus).toBe(409);
    expect(running.message).toBe('the job is still running: retry once it has ended (Failed or Stopped)');
    expect(queue.states[job]).toEqual(live);
    expect(queue.removedState).toEqual([]);
    expect(queue.enqueued).toHaveLength(1);
    // Once it has ended: frames 1-4 again, 5-6 kept.
    queue.chunkStates.set(c1, { state: 'completed' });
    queue.states[job][7] = done(7);
    queue.states[job][8] = done(8);
    const retried = await service.retry('k1', job);
    expect(retried.retried_frames).toBe(4);
    expect((queue.enqueued[1].jobs[0].payload as { frames: number[] }).frames).toEqual([1, 2, 3, 4]);
    expect((await service.progress('k1', { job_id: job })).frames.filter((f) => f.status === 'done').map((f) => f.frame)).toEqual([5, 6, 7, 8]);
  });

  it('keeps the stop flag when a stopped job settles; a retry of it lifts the flag for its new chunks only', async () => {
    const { job_id: job } = await service.render('k1', { upload_id: 'up_blend', frames: '1-8' });
    const [c0, c1] = queue.enqueued[0].jobs.map((j) => j.jobId);
    queue.chunkStates.set(c0, { state: 'active' });
    await service.stop('k1', job);
    // The running chunk fails; BullMQ puts it back (delayed) for another attempt.
    queue.chunkStates.set(c0, { state: 'delayed' });
    queue.states[job] = { 1: done(1), 2: { status: 'failed', node: 'n1', error: 'out of memory', at: new Date().toISOString() } };
    const p = await service.progress('k1', { job_id: job });
    expect(p.job_status).toBe('Stopped');
    expect(queue.removedWaiting).toEqual([c1, c0]); // taken out again: it must not wake up after a retry
    expect(queue.stopped.has(job)).toBe(true);
    const doc = (await db.collection<FarmJobDoc>(FARM_JOBS_COLLECTION).findOne({ _id: job }))!;
    expect(doc.settledAt).toBeDefined();
    await service.retry('k1', job);
    expect(queue.resumed).toEqual([job]);
    expect(queue.enqueued[1].jobs.map((j) => (j.payload as { frames: number[] }).frames)).toEqual([[2]]);
  });

  it('a stopped job with a chunk that cannot be taken out of its queue is Stopped but not settled until it ends', async () => {
    const { job_id: job } = await service.render('k1', { upload_id: 'up_blend', frames: '1-4' });
    const [c0] = queue.enqueued[0].jobs.map((j) => j.jobId);
    queue.chunkStates.set(c0, { state: 'active' });
    await service.stop('k1', job);
    queue.chunkStates.set(c0, { state: 'waiting-children' }); // not one removeWaiting takes
    expect((await service.progress('k1', { job_id: job })).job_status).toBe('Stopped');
    expect((await db.collection<FarmJobDoc>(FARM_JOBS_COLLECTION).findOne({ _id: job }))!.settledAt).toBeUndefined();
    expect((await refusal(service.retry('k1', job))).message).toBe('the job is stopping: retry once its running chunks have ended');
  });

  it('a stop after the last frame was done (not yet looked at) leaves the job Finished', async () => {
    const { job_id: job } = await service.render('k1', { upload_id: 'up_blend', frames: '1-4' });
    const [c0] = queue.enqueued[0].jobs.map((j) => j.jobId);
    queue.chunkStates.set(c0, { state: 'completed' });
    queue.states[job] = { 1: done(1), 2: done(2), 3: done(3), 4: done(4) };
    expect(await service.stop('k1', job)).toEqual({ status: 200, job_id: job, job_status: 'Finished', frames_completed: 4, total_frames: 4 });
    expect(queue.stopped.has(job)).toBe(false);
    const doc = (await db.collection<FarmJobDoc>(FARM_JOBS_COLLECTION).findOne({ _id: job }))!;
    expect(doc).toMatchObject({ status: 'Finished' });
    expect(doc.stoppedAt).toBeUndefined();
  });

  it('the settler settles jobs nobody asks about, while Redis still has their states', async () => {
    const { job_id: job } = await service.render('k1', { upload_id: 'up_blend', frames: '1-4' });
    const open = await service.render('k1', { upload_id: 'up_blend', frames: '5-8' });
    queue.chunkStates.set(queue.enqueued[0].jobs[0].jobId, { state: 'completed' });
    queue.chunkStates.set(queue.enqueued[1].jobs[0].jobId, { state: 'active' });
    const live = { 1: done(1), 2: done(2), 3: done(3), 4: done(4) };
    queue.states[job] = { ...live };
    expect(await service.settleOpen()).toEqual({ settled: 1, swept: 0 });
    const doc = (await db.collection<FarmJobDoc>(FARM_JOBS_COLLECTION).findOne({ _id: job }))!;
    expect(doc).toMatchObject({ status: 'Finished', frames: { 1: live[1], 4: live[4] } });
    expect(queue.states[job]).toBeUndefined();
    expect((await db.collection<FarmJobDoc>(FARM_JOBS_COLLECTION).findOne({ _id: open.job_id }))!.settledAt).toBeUndefined();
  });

  it('a frame whose state Redis lost is looked up in storage (its key is known) before it is called failed', async () => {
    const { job_id: job } = await service.render('k1', { upload_id: 'up_blend', frames: '1-4' });
    // Redis lost the states and the finished chunk has left the queue; frames 1-3 are stored.
    for (const f of [1, 2, 3]) stored.set(`fr-${job}-00000${f}.png`, Buffer.from(`px${f}`));
    queue.chunkStates.clear();
    storageDown = true;
    expect(await service.settleOpen()).toEqual({ settled: 0, swept: 0 }); // storage away: nothing settled as lost
    storageDown = false;
    expect(await service.settleOpen()).toEqual({ settled: 1, swept: 0 });
    const p = await service.progress('k1', { job_id: job });
    expect(p).toMatchObject({ job_status: 'Failed', frames_completed: 3 });
    expect(p.frames[3]).toEqual({ frame: 4, status: 'failed', error: 'its chunk ended without rendering it' });
    const manifest = await service.manifest('k1', job, {}, 'http://api.test');
    expect(manifest.frames.map((f) => [f.frame, f.bytes, f.sha256])).toEqual([1, 2, 3].map((f) => [f, 3, createHash('sha256').update(`px${f}`).digest('hex')]));
  });

  it('asks the queue for chunk states a bounded number at once', async () => {
    const { job_id: job } = await service.render('k1', { upload_id: 'up_blend', frames: '1-200' });
    expect(queue.enqueued[0].jobs).toHaveLength(50);
    queue.stateDelayMs = 5;
    queue.mostInFlight = 0;
    await service.progress('k1', { job_id: job });
    expect(queue.mostInFlight).toBeGreaterThan(1);
    expect(queue.mostInFlight).toBeLessThanOrEqual(16);
  });

  it('caps a job at 10000 frames', async () => {
    expect((await refusal(service.render('k1', { upload_id: 'up_blend', frames: '1-10001' }))).message).toBe('frames: names more than 10000 frames');
    await expect(service.render('k1', { upload_id: 'up_blend', frames: '1-10000' })).resolves.toMatchObject({ total_frames: 10_000 });
  });

  it("keeps product jobs out of the farm's tasks; their progress reads, but stop, retry and delete are 409", async () => {
    const product = await service.create('p1', {
      kind: 'product-stills',
      upload: { ...BLEND, _id: 'up_model', kind: 'model', ext: 'glb', inventory: undefined },
      settings: { frames: [1, 2], framesSpec: '1-2', format: 'PNG', resolutionPercent: 100, device: 'CPU' },
      shot: { mode: 'stills', count: 2, width: 64, height: 64, samples: 4 },
      product: 'prod1',
      routingKey: 'default',
      parallel: 1,
    });
    const scene = await service.render('k1', { upload_id: 'up_blend', frames: '1' });
    expect((await service.tasks('k1', {})).tasks.map((t) => t.task_id)).toEqual([scene.job_id]);
    expect(await service.progress('k1', { job_id: product._id })).toMatchObject({ status: 200, total_frames: 2 });
    for (const call of [service.stop('k1', product._id), service.retry('k1', product._id), service.remove('k1', product._id)]) {
      const refused = await refusal(call);
      expect(refused.httpStatus).toBe(409);
      expect(refused.message).toBe(`${product._id} renders a product: product renders are managed through /v1/products`);
    }
    expect(queue.stopped.size).toBe(0);
    expect(await db.collection<FarmJobDoc>(FARM_JOBS_COLLECTION).findOne({ _id: product._id })).not.toBeNull();
  });

  it('lists tasks with filters and paging', async () => {
    const a = await service.render('k1', { upload_id: 'up_blend', frames: '1', project_name: 'api' });
    await service.render('k1', { upload_id: 'up_blend', frames: '2', project_name: 'other' });
    const listed = await service.tasks('k1', { project_name: 'api' });
    expect(listed).toMatchObject({ status: 200, page: 1, page_size: 20, total: 1 });
    expect(listed.tasks.map((t) => t.task_id)).toEqual([a.job_id]);
    expect((await service.tasks('k1', { page_size: '1', page: '2' })).tasks).toHaveLength(1);
    expect((await service.tasks('k1', { status: 'finished' })).total).toBe(0);
    expect((await service.tasks('k1', { status: 'In progress' })).total).toBe(2);
    expect((await service.tasks('k1', { since: '2999-01-01' })).total).toBe(0);
    expect((await refusal(service.tasks('k1', { page_size: '101' }))).details[0].field).toBe('page_size');
    expect((await refusal(service.tasks('k1', { since: 'yesterday' }))).details[0].field).toBe('since');
    expect((await refusal(service.tasks('k1', { status: 'Start' }))).details[0].field).toBe('status');
  });
});

describe('deriveProgress', () => {
  const at = '2026-01-01T00:00:00.000Z';
  const job = (over: Partial<FarmJobDoc> = {}) => ({
    settings: { frames: [1, 2], framesSpec: '1-2', format: 'PNG' as const, resolutionPercent: 100, device: 'CPU' as const },
    chunks: [{ jobId: 'c0', queue: 'q', frames: [1, 2], attempt: 1, createdAt: at }],
    totalFrames: 2,
    ...over,
  });

  it('a chunk that ended without a frame, on a job nobody stopped, loses that frame', () => {
    const p = deriveProgress(job(), { 1: { status: 'done', node: 'n', at } }, new Map([['c0', { state: 'completed' }]]));
    expect(p.status).toBe('Failed');
    expect(p.frames[1]).toEqual({ frame: 2, status: 'failed', error: 'its chunk ended without rendering it' });
  });

  it('every frame done wins over a stop: Finished', () => {
    const p = deriveProgress(job({ stoppedAt: at }), { 1: { status: 'done', node: 'n', at }, 2: { status: 'done', node: 'n', at } }, new Map([['c0', { state: 'completed' }]]));
    expect(p).toMatchObject({ status: 'Finished', settled: true });
  });

  it('a gone chunk of a stopped job leaves its frames waiting; Stopped', () => {
    const p = deriveProgress(job({ stoppedAt: at }), {}, new Map());
    expect(p.status).toBe('Stopped');
    expect(p.frames.map((f) => f.status)).toEqual(['waiting', 'waiting']);
  });

  it('a state older than the newest chunk of its frame is ignored', () => {
    const later = '2026-01-02T00:00:00.000Z';
    const p = deriveProgress(
      job({ chunks: [{ jobId: 'c0', queue: 'q', frames: [1, 2], attempt: 1, createdAt: at }, { jobId: 'c1', queue: 'q', frames: [2], attempt: 2, createdAt: later }] }),
      { 1: { status: 'done', node: 'n', at }, 2: { status: 'failed', node: 'n', at, error: 'x' } },
      new Map([['c0', { state: 'failed' }], ['c1', { state: 'waiting' }]]),
    );
    expect(p.status).toBe('In progress');
    expect(p.frames[1]).toEqual({ frame: 2, status: 'waiting' });
  });
});

describe('parseHave', () => {
  it('takes [sha256], [{name, sha256}] or {name: sha256} and refuses anything else', () => {
    const h = 'ab'.repeat(32);
    // Object keys carry no "." (the body policy): names without their extension, or frame numbers.
    expect(parseHave({ frame_000001: h }).has(h, 'job_x/frame_000001.png')).toBe(true);
    expect(parseHave({ 'job_x/frame_000001': h }).has(h, 'job_x/frame_000001.png')).toBe(true);
    expect(parseHave({ 1: h }).has(h, 'job_x/frame_000001.png')).toBe(true);
    expect(parseHave({ frame_000001: h }).has(h, 'job_x/frame_000002.png')).toBe(false);
    expect(parseHave([{ name: 'frame_000002.png', sha256: h }]).has(h, 'job_x/frame_000002.png')).toBe(true);
    expect(parseHave([{ name: 'frame_000002.png', sha256: h }]).has('0'.repeat(64), 'job_x/frame_000002.png')).toBe(false);
    expect(parseHave([h.toUpperCase()]).has(h, 'whatever')).toBe(true);
    expect(() => parseHave('x')).toThrow(/have must be/);
    expect(() => parseHave({ a: 'short' })).toThrow(/not a sha-256/);
    expect(() => parseHave([{ sha256: h }])).toThrow(/needs a name/);
  });
});

describe('failedByMontage', () => {
  it("vouches for a reason only when our worker wrote it: a MontageError's (or its permanent form's) last stack, or the worker's plain sentence", () => {
    expect(failedByMontage('Blender saved 2 frames of 4', ['Error: x\n at a', 'MontageError: Blender saved 2 frames of 4\n    at FarmJob.render'])).toBe(true);
    expect(failedByMontage('unknown frame format GIF', ['UnrecoverableError: unknown frame format GIF\n    at Worker'])).toBe(true);
    expect(failedByMontage('the render node failed unexpectedly (its log has the details)', ['Error: the render node failed unexpectedly (its log has the details)'])).toBe(true);
    // A stall after an attempt that failed with a MontageError: that older stack does not vouch for it.
    expect(failedByMontage('job stalled more than allowable limit', ['MontageError: out of memory\n    at x'])).toBe(false);
    expect(failedByMontage("ENOENT: no such file or directory, open '/tmp/x'", ["Error: ENOENT: no such file or directory, open '/tmp/x'"])).toBe(false);
    expect(failedByMontage(undefined, [])).toBe(false);
    expect(failedByMontage('x', null)).toBe(false);
  });
});
