import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { MontageError } from '../../src/common/errors';
import { loadConfig } from '../../src/config/config';
import type { FarmFilesService } from '../../src/farm/farm-files.service';
import { FarmJobsService } from '../../src/farm/farm-jobs.service';
import type { FarmStore } from '../../src/farm/farm-store';
import { FarmUrlsService } from '../../src/farm/farm-urls.service';
import { FARM_JOBS_COLLECTION, type FarmFileDoc, type FarmJobDoc, type FrameState } from '../../src/farm/farm.types';
import type { JobContext } from '../../src/jobs/job.types';
import { attachmentKey, attachmentUuid, ProductsService, parseRendersRequest, productEventPayload } from '../../src/products/products.service';
import type { ProductDoc, ProductRenderDoc } from '../../src/products/products.types';
import { sign } from '../../src/projects/url-signing';
import { ArchiveRepository } from '../../src/repositories/archive.repository';
import { NedbDocumentStore } from '../../src/repositories/document-store/nedb';
import type { JobQueueRepository } from '../../src/repositories/job-queue/job-queue.repository';
import { FarmSpoolRepository } from '../../src/repositories/farm-spool.repository';
import type { OutputStorage } from '../../src/repositories/output-storage/port';
import { SecretBox } from '../../src/secrets/secret-box';
import type { WebhooksService } from '../../src/webhooks/webhooks.service';

// Products with the farm's neighbours replaced (the real embedded store; a queue whose nodes
// are played by the test), and the real FarmJobsService between them.

const MODEL: FarmFileDoc = { _id: 'up_model', project: 'p1', path: 'models/chair.glb', kind: 'model', sha256: 'b'.repeat(64), size: 4242, storageKey: 'ffmodel', ext: 'glb', model: { container: 'glb', meshes: 1, nodes: 1 }, createdAt: '' };
const PROJECT = { _id: 'p1', keyHashes: [], signingSecret: 's'.repeat(64), public: false, limits: {}, createdAt: '' };
const REQUEST = { productUuids: [] as string[], imageWidth: 64, imageHeight: 48, imageFormat: 'JPG', turntable: { includeGif: true, imageCount: 4, frameRate: 12, width: 32, height: 32 } };

describe('ProductsService', () => {
  let dir: string;
  let db: NedbDocumentStore;
  let products: ProductsService;
  const emitted: Array<{ type: string; data: Record<string, unknown>; eventId: string; bodyIsData?: boolean }> = [];
  /** The storage's objects (`key.ext` → bytes): frames the "nodes" stored, copies the service made. */
  const objects = new Map<string, Buffer>();
  const stopped: string[] = [];
  let trackerState: { state: string } | undefined;
  let config = loadConfig({ FARM_CHUNK_FRAMES: '4' });
  let modelInfo: FarmFileDoc['model'];
  const enqueued: Array<{ queue: string; name: string; payload: unknown; jobId: string }> = [];
  const states: Record<string, Record<number, FrameState>> = {};
  const chunkStates = new Map<string, { state: string }>();
  const removed: string[] = [];

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'products-'));
    db = new NedbDocumentStore(dir);
    emitted.length = 0;
    enqueued.length = 0;
    removed.length = 0;
    objects.clear();
    stopped.length = 0;
    trackerState = undefined;
    const store = {
      jobs: db.collection(FARM_JOBS_COLLECTION),
      downloads: db.collection('farm_downloads'),
      collection: (name: string) => db.collection(name),
      authenticateKey: async (key?: string) => {
        if (key !== 'k1') throw new MontageError('unauthorized', 'invalid API key');
        return PROJECT;
      },
      project: async () => PROJECT,
    } as unknown as FarmStore;
    modelInfo = MODEL.model!;
    const files = {
      get: async (_p: string, id: string) => {
        if (id === MODEL._id) return { ...MODEL, model: modelInfo };
        if (id === 'up_blend') return { ...MODEL, _id: 'up_blend', kind: 'blend' };
        throw new MontageError('not_found', 'unknown upload_id');
      },
      ref: (d: FarmFileDoc) => ({ path: d.path, storageKey: d.storageKey, ext: d.ext, sha256: d.sha256, size: d.size }),
      filesBeside: async () => [],
    } as unknown as FarmFilesService;
    const queue = {
      enqueueBulk: async (q: string, name: string, jobs: Array<{ payload: unknown; jobId: string }>) => {
        for (const j of jobs) {
          enqueued.push({ queue: q, name, ...j });
          chunkStates.set(j.jobId, { state: 'waiting' });
        }
      },
      enqueue: async (q: string, name: string, payload: unknown, jobId: string) => void enqueued.push({ queue: q, name, payload, jobId }),
      waitFor: async (_q: string, id: string) => (id.startsWith('encode-') ? { node: 'n1', mp4: { bytes: 900, frames: 4 }, gif: { bytes: 700, frames: 4 } } : Promise.reject(new Error('?'))),
      farmFrameStates: async (job: string) => ({ ...(states[job] ?? {}) }),
      jobState: async (_q: string, id: string) => (id.startsWith('track-') ? trackerState : chunkStates.get(id)),
      removeFarmJobState: async () => undefined,
      stopFarmJob: async (job: string) => void stopped.push(job),
      removeFarmJob: async () => undefined,
      removeWaiting: async () => undefined,
      liveNodes: async () => [],
    } as unknown as JobQueueRepository;
    const storage = {
      identity: async () => 'sid',
      remove: async (k: string, e: string) => {
        removed.push(`${k}.${e}`);
        objects.delete(`${k}.${e}`);
      },
      read: async (k: string, e: string) => Readable.from([objects.get(`${k}.${e}`) ?? Buffer.from(`frame ${k}`)]),
      presignDownload: async () => undefined,
      stat: async (k: string, e: string) => (objects.has(`${k}.${e}`) ? { size: objects.get(`${k}.${e}`)!.length, mtime: new Date() } : undefined),
      storeOutput: async (k: string, e: string, write: (file: string) => Promise<void>) => {
        const file = path.join(dir, `stage-${k}.${e}`);
        await write(file);
        objects.set(`${k}.${e}`, readFileSync(file));
      },
    } as unknown as OutputStorage;
    const webhooks = { emit: async (_p: string, type: string, data: Record<string, unknown>, o: { eventId: string; bodyIsData?: boolean }) => void emitted.push({ type, data, eventId: o.eventId, bodyIsData: o.bodyIsData }) } as unknown as WebhooksService;
    const urls = new FarmUrlsService(new SecretBox(randomBytes(32)), config);
    const jobs = new FarmJobsService(store, files, new ArchiveRepository(), queue, storage, config, urls);
    products = new ProductsService(store, files, jobs, webhooks, queue, storage, config, urls, new FarmSpoolRepository(config));
  });

  afterEach(async () => {
    config = loadConfig({ FARM_CHUNK_FRAMES: '4' });
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const ctx = { attempt: 1, progress: async () => undefined, lastAttempt: false, signal: new AbortController().signal } as JobContext;
  const done = (job: string, frame: number): FrameState => ({ status: 'done', node: 'n1', storageKey: `fr-${job}-${frame}`, ext: 'jpg', bytes: 10 + frame, sha256: 'c'.repeat(64), at: new Date().toISOString() });

  it('checks a renders request, naming the bad field', () => {
    const bad = (over: Record<string, unknown>) => {
      try {
        parseRendersRequest({ ...REQUEST, productUuids: ['00000000-0000-4000-8000-000000000000'], ...over });
      } catch (err) {
        return (err as MontageError).details[0].field;
      }
      return 'accepted';
    };
    expect(bad({})).toBe('accepted');
    expect(bad({ imageWidth: 8 })).toBe('imageWidth');
    expect(bad({ imageHeight: 5000 })).toBe('imageHeight');
    expect(bad({ imageFormat: 'TIFF' })).toBe('imageFormat');
    expect(bad({ turntable: { ...REQUEST.turntable, imageCount: 721 } })).toBe('turntable.imageCount');
    expect(bad({ turntable: { ...REQUEST.turntable, frameRate: 0 } })).toBe('turntable.frameRate');
    expect(bad({ turntable: { ...REQUEST.turntable, includeGif: 'yes' } })).toBe('turntable.includeGif');
    expect(bad({ turntable: { ...REQUEST.turntable, fps: 3 } })).toBe('turntable.fps');
    expect(bad({ productUuids: ['../x'] })).toBe('productUuids[0]');
    expect(bad({ extra: 1 })).toBe('extra');
  });

  it("creates products from models only, and answers VNTANA's shapes", async () => {
    const created = await products.create('k1', { name: 'Chair', upload_id: 'up_model' });
    expect(created).toEqual({ success: true, errors: [], response: { uuid: expect.stringMatching(/^[0-9a-f-]{36}$/) } });
    await expect(products.create('k1', { name: 'Scene', upload_id: 'up_blend' })).rejects.toThrow('upload_id: not a glTF/GLB model (it is a blend)');
    const listed = await products.list('k1', {});
    expect(listed.response.grid.map((p) => p.name)).toEqual(['Chair']);
    await expect(products.requestRenders('k1', { ...REQUEST, productUuids: ['00000000-0000-4000-8000-000000000000'] })).rejects.toMatchObject({ httpStatus: 404 });
  });

  it('renders stills and a turntable per product, emits pending at once, then processing and completed, and records the attachments (replacing the previous ones)', async () => {
    const { response } = await products.create('k1', { name: 'Chair', description: 'oak', upload_id: 'up_model' });
    const answer = await products.requestRenders('k1', { ...REQUEST, productUuids: [response.uuid] });
    expect(answer).toEqual({ success: true, errors: [], response: { uuids: [response.uuid], errors: null } });
    expect(emitted.map((e) => e.type)).toEqual(['renders.pending', 'turntable.pending']);
    const product = (await db.collection<ProductDoc>('products').findOne({ _id: response.uuid }))!;
    expect(emitted[0].data).toEqual(productEventPayload('renders.pending', 'p1', product, product.lastRender!));
    expect(emitted[0].data).toEqual({
      event: 'renders.pending',
      organization: { uuid: 'p1' },
      product: { uuid: response.uuid, name: 'Chair', description: 'oak', status: 'LIVE_PUBLIC', asset: { assetOriginalName: 'chair.glb', assetOriginalSize: 4242, generationRequestUuid: expect.stringMatching(/^prr_/) } },
      client: { uuid: 'p1' },
    });
    const jobs = await db.collection<FarmJobDoc>(FARM_JOBS_COLLECTION).find({}, { sort: { createdAt: 1 } });
    const stills = jobs.find((j) => j.kind === 'product-stills')!;
    const turntable = jobs.find((j) => j.kind === 'product-turntable')!;
    expect(stills.shot).toEqual({ mode: 'stills', count: 6, width: 64, height: 48, samples: 16 });
    expect(stills.settings).toMatchObject({ frames: [1, 2, 3, 4, 5, 6], format: 'JPEG' });
    expect(turntable.shot).toEqual({ mode: 'turntable', count: 4, width: 32, height: 32, samples: 16 });
    expect(turntable.settings).toMatchObject({ frames: [1, 2, 3, 4], format: 'PNG' });
    const chunk = enqueued.find((e) => e.name === 'render-farm-frames')!;
    expect(chunk.payload).toMatchObject({ source: { kind: 'product', model: { path: 'models/chair.glb', storageKey: 'ffmodel' }, shot: stills.shot } });
    expect(enqueued.find((e) => e.name === 'track-product-render')).toMatchObject({ queue: 'montage.farm', jobId: `track-${product.lastRender}`, payload: { productRender: product.lastRender } });

    // The nodes' part: every frame done, every chunk completed.
    for (const job of [stills, turntable]) {
      states[job._id] = Object.fromEntries(job.settings.frames.map((f) => [f, done(job._id, f)]));
      for (const c of job.chunks) chunkStates.set(c.jobId, { state: 'completed' });
    }
    await expect(products.track({ productRender: product.lastRender! }, ctx)).resolves.toEqual({ status: 'completed/completed' });
    expect(emitted.map((e) => e.type)).toEqual(['renders.pending', 'turntable.pending', 'renders.processing', 'renders.completed', 'turntable.processing', 'turntable.completed']);
    const encode = enqueued.find((e) => e.name === 'encode-turntable')!;
    expect(encode).toMatchObject({ queue: 'render.default.blender', jobId: `encode-${product.lastRender}` });
    expect(encode.payload).toMatchObject({ job: turntable._id, frameRate: 12, width: 32, height: 32, includeGif: true, mp4Key: `tt-${product.lastRender}`, gifKey: `tg-${product.lastRender}` });
    const listed = await products.attachments('k1', response.uuid, 'http://api.test');
    expect(listed.response.attachments.map((a) => [a.type, a.view ?? '', a.format, a.width, a.size])).toEqual([
      ['RENDER', 'front', 'JPG', 64, 11],
      ['RENDER', 'front-right', 'JPG', 64, 12],
      ['RENDER', 'right', 'JPG', 64, 13],
      ['RENDER', 'back', 'JPG', 64, 14],
      ['RENDER', 'left', 'JPG', 64, 15],
      ['RENDER', 'top', 'JPG', 64, 16],
      ['TURNTABLE', '', 'MP4', 32, 900],
      ['TURNTABLE_GIF', '', 'GIF', 32, 700],
    ]);
    expect(new URL(listed.response.attachments[0].url).searchParams.get('sig')).toMatch(/^[0-9a-f]{64}$/);
    // VNTANA's payload is each message's whole body.
    expect(emitted.every((e) => e.bodyIsData === true)).toBe(true);

    // Stills are copies under keys of their own; the farm frames are gone (stills once copied, the turntable's once encoded).
    const firstDoc = (await db.collection<ProductDoc>('products').findOne({ _id: response.uuid }))!;
    const stillKeys = firstDoc.attachments.filter((a) => a.type === 'RENDER').map((a) => a.storageKey);
    expect(stillKeys.every((k) => k.startsWith('pa-'))).toBe(true);
    expect(firstDoc.attachments[0].uuid).toBe(attachmentUuid(product.lastRender!, 'RENDER:front'));
    expect(firstDoc.attachments[0].storageKey).toBe(attachmentKey(firstDoc.attachments[0].uuid));
    expect(objects.get(`${stillKeys[0]}.jpg`)?.toString()).toBe(`frame fr-${stills._id}-1`);
    expect(removed).toEqual(expect.arrayContaining([...[1, 2, 3, 4, 5, 6].map((f) => `fr-${stills._id}-${f}.jpg`), ...[1, 2, 3, 4].map((f) => `fr-${turntable._id}-${f}.jpg`)]));
    // A signed URL reads the copy; one signed with the project's secret (sign-url's) is refused.
    const first = listed.response.attachments[0];
    const got = await products.attachment(response.uuid, first.uuid, Object.fromEntries(new URL(first.url).searchParams));
    expect(got).toMatchObject({ ext: 'jpg', name: 'render-front.jpg', size: `frame fr-${stills._id}-1`.length });
    const attachmentPath = `/v1/products/${response.uuid}/attachments/${first.uuid}`;
    const forged = { expires: '99999999999' };
    await expect(products.attachment(response.uuid, first.uuid, { ...forged, sig: sign(PROJECT.signingSecret, attachmentPath, forged) })).rejects.toMatchObject({ httpStatus: 403 });

    // A second request replaces the first one's attachments, and their stored objects go.
    await products.requestRenders('k1', { ...REQUEST, productUuids: [response.uuid], turntable: { ...REQUEST.turntable, includeGif: false } });
    const second = (await db.collection<ProductDoc>('products').findOne({ _id: response.uuid }))!.lastRender!;
    for (const job of await db.collection<FarmJobDoc>(FARM_JOBS_COLLECTION).find({ productRender: second })) {
      states[job._id] = Object.fromEntries(job.settings.frames.map((f) => [f, done(job._id, f)]));
      for (const c of job.chunks) chunkStates.set(c.jobId, { state: 'completed' });
    }
    await products.track({ productRender: second }, ctx);
    const after = await products.attachments('k1', response.uuid, 'http://api.test');
    expect(after.response.attachments.map((a) => a.type)).toEqual(['RENDER', 'RENDER', 'RENDER', 'RENDER', 'RENDER', 'RENDER', 'TURNTABLE']);
    expect(removed).toEqual(expect.arrayContaining([...stillKeys.map((k) => `${k}.jpg`), `tt-${product.lastRender}.mp4`, `tg-${product.lastRender}.gif`]));
    // The first request's farm jobs and its record went once both its families were replaced; the second's stay.
    const left = await db.collection<FarmJobDoc>(FARM_JOBS_COLLECTION).find({});
    expect(left.map((j) => j.productRender)).toEqual([second, second]);
    expect((await db.collection<ProductRenderDoc>('product_renders').find({})).map((r) => r._id)).toEqual([second]);
    // The new stills still read: they never depended on any farm job.
    const now = (await products.attachments('k1', response.uuid, 'http://api.test')).response.attachments[0];
    await expect(products.attachment(response.uuid, now.uuid, Object.fromEntries(new URL(now.url).searchParams))).resolves.toMatchObject({ ext: 'jpg' });
  });

  it('sends product jobs to the configured routing key', async () => {
    config.routingKeys = ['studio', 'default'];
    const { response } = await products.create('k1', { name: 'Chair', upload_id: 'up_model' });
    await products.requestRenders('k1', { ...REQUEST, productUuids: [response.uuid] });
    const queues = enqueued.filter((e) => e.name === 'render-farm-frames').map((e) => e.queue);
    expect(new Set(queues)).toEqual(new Set(['render.studio.blender']));
  });

  it('fails a request that is not done by its deadline: renders.failed and turntable.failed, its jobs stopped', async () => {
    config.farm.productDeadlineSec = 60;
    const { response } = await products.create('k1', { name: 'Chair', upload_id: 'up_model' });
    await products.requestRenders('k1', { ...REQUEST, productUuids: [response.uuid] });
    const prr = (await db.collection<ProductDoc>('products').findOne({ _id: response.uuid }))!.lastRender!;
    await db.collection<ProductRenderDoc>('product_renders').findOneAndUpdate({ _id: prr }, { $set: { createdAt: new Date(Date.now() - 61_000).toISOString() } });
    await expect(products.track({ productRender: prr }, ctx)).resolves.toEqual({ status: 'failed/failed' });
    expect(emitted.map((e) => e.type)).toEqual(['renders.pending', 'turntable.pending', 'renders.failed', 'turntable.failed']);
    const doc = (await db.collection<ProductRenderDoc>('product_renders').findOne({ _id: prr }))!;
    expect(doc.error).toBe('not finished within 1 min');
    expect(stopped).toHaveLength(2);
  });

  it('fails the request when its tracker fails for good, or when the next request finds its tracker failed', async () => {
    const { response } = await products.create('k1', { name: 'Chair', upload_id: 'up_model' });
    await products.requestRenders('k1', { ...REQUEST, productUuids: [response.uuid] });
    const prr = (await db.collection<ProductDoc>('products').findOne({ _id: response.uuid }))!.lastRender!;
    const job = (await db.collection<FarmJobDoc>(FARM_JOBS_COLLECTION).findOne({ productRender: prr, kind: 'product-stills' }))!;
    // The chunk state lookup breaks: not the last try, so nothing is failed yet; on the last, both families are.
    for (const c of job.chunks) chunkStates.delete(c.jobId);
    const broken = { ...ctx };
    const jobState = (products as unknown as { queue: { jobState: unknown } }).queue.jobState;
    (products as unknown as { queue: { jobState: unknown } }).queue.jobState = async () => {
      throw new Error('redis away');
    };
    await expect(products.track({ productRender: prr }, broken)).rejects.toThrow('redis away');
    expect(emitted.map((e) => e.type)).toEqual(['renders.pending', 'turntable.pending']);
    await expect(products.track({ productRender: prr }, { ...broken, lastAttempt: true })).rejects.toThrow('redis away');
    expect(emitted.map((e) => e.type)).toEqual(['renders.pending', 'turntable.pending', 'renders.failed', 'turntable.failed']);
    (products as unknown as { queue: { jobState: unknown } }).queue.jobState = jobState;

    // A request whose tracker BullMQ failed (a stall, say) without the handler's catch: the next look at the product fails it.
    emitted.length = 0;
    await products.requestRenders('k1', { ...REQUEST, productUuids: [response.uuid] });
    const next = (await db.collection<ProductDoc>('products').findOne({ _id: response.uuid }))!.lastRender!;
    trackerState = { state: 'failed' };
    await products.get('k1', response.uuid);
    expect(emitted.map((e) => e.type)).toEqual(['renders.pending', 'turntable.pending']); // too young to judge
    await db.collection<ProductRenderDoc>('product_renders').findOneAndUpdate({ _id: next }, { $set: { createdAt: new Date(Date.now() - 120_000).toISOString() } });
    await products.get('k1', response.uuid);
    expect(emitted.map((e) => e.type)).toEqual(['renders.pending', 'turntable.pending', 'renders.failed', 'turntable.failed']);
    trackerState = { state: 'active' };
    await products.get('k1', response.uuid);
    expect(emitted).toHaveLength(4);
  });

  it('a superseded unfinished request ends failed, its jobs stopped', async () => {
    const { response } = await products.create('k1', { name: 'Chair', upload_id: 'up_model' });
    await products.requestRenders('k1', { ...REQUEST, productUuids: [response.uuid] });
    const first = (await db.collection<ProductDoc>('products').findOne({ _id: response.uuid }))!.lastRender!;
    await products.requestRenders('k1', { ...REQUEST, productUuids: [response.uuid] });
    await expect(products.track({ productRender: first }, ctx)).resolves.toEqual({ status: 'superseded' });
    expect(emitted.filter((e) => e.eventId.startsWith(first)).map((e) => e.type)).toEqual(['renders.pending', 'turntable.pending', 'renders.failed', 'turntable.failed']);
    expect(stopped).toHaveLength(2);
  });

  it('refuses a .gltf whose buffers or images are files beside it (422, naming them)', async () => {
    modelInfo = { container: 'gltf', meshes: 1, nodes: 1, external: ['chair.bin', 'tex/wood.png'] };
    const err = await products.create('k1', { name: 'Chair', upload_id: 'up_model' }).catch((e: MontageError) => e);
    expect(err).toMatchObject({ httpStatus: 422, details: [{ field: 'upload_id', message: 'external URI chair.bin' }, { field: 'upload_id', message: 'external URI tex/wood.png' }] });
    expect((err as MontageError).message).toContain('chair.bin, tex/wood.png');
  });

  it('emits renders.failed when the stills job fails', async () => {
    const { response } = await products.create('k1', { name: 'Chair', upload_id: 'up_model' });
    await products.requestRenders('k1', { ...REQUEST, productUuids: [response.uuid] });
    const prr = (await db.collection<ProductDoc>('products').findOne({ _id: response.uuid }))!.lastRender!;
    for (const job of await db.collection<FarmJobDoc>(FARM_JOBS_COLLECTION).find({ productRender: prr })) {
      for (const c of job.chunks) chunkStates.set(c.jobId, { state: job.kind === 'product-stills' ? 'failed' : 'completed' });
      if (job.kind === 'product-turntable') states[job._id] = Object.fromEntries(job.settings.frames.map((f) => [f, done(job._id, f)]));
    }
    await expect(products.track({ productRender: prr }, ctx)).resolves.toEqual({ status: 'failed/completed' });
    expect(emitted.map((e) => e.type)).toEqual(['renders.pending', 'turntable.pending', 'renders.failed', 'turntable.processing', 'turntable.completed']);
  });
});
