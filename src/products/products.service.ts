import { Inject, Injectable, Logger } from '@nestjs/common';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { badInput, isPermanent, notFound, unusableMedia } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { EngineName } from '../engines/engine';
import { FarmFilesService } from '../farm/farm-files.service';
import { FarmJobsService } from '../farm/farm-jobs.service';
import { plainObject, printable, refuseUnknown, text, whole } from '../farm/farm-request';
import { FarmStore } from '../farm/farm-store';
import { FarmUrlsService } from '../farm/farm-urls.service';
import { type StoredDownload, storedDownload } from '../farm/stored-download';
import { type FarmFileRef, type FarmJobDoc, PRODUCT_VIEWS, PRODUCTS_COLLECTION } from '../farm/farm.types';
import { FARM_QUEUE, type JobContext, JobName, queueName, type TrackProductRenderPayload } from '../jobs/job.types';
import { JOB_QUEUE } from '../jobs/queue.module';
import { FarmSpoolRepository } from '../repositories/farm-spool.repository';
import type { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { OUTPUT_STORAGE, type OutputStorage } from '../repositories/output-storage/port';
import { WebhooksService } from '../webhooks/webhooks.service';
import type { WebhookEventType } from '../webhooks/webhook.types';
import { PRODUCT_RENDERS_COLLECTION, type ProductAttachment, type ProductDoc, type ProductRenderDoc, type ProductRenderStatus, type TurntableOptions } from './products.types';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const IMAGE_FORMATS = { PNG: 'PNG', JPG: 'JPEG', WEBP: 'WEBP' } as const;
/** Stills and turntable frames are rendered with this many Cycles samples. */
export const PRODUCT_SAMPLES = 16;
/** How often a tracker looks at its jobs. */
const TRACK_POLL_MS = 1000;
/** A request younger than this may not have its tracker queued yet: the next request does not judge it. */
const TRACKER_GRACE_MS = 60_000;

/** A product attachment's own storage key (never a farm frame's: deleting a farm job cannot break an attachment). */
export function attachmentKey(uuid: string): string {
  return `pa-${uuid}`;
}

/** The uuid of one attachment of a render request: the same on every try of its tracker (a second copy overwrites the first). */
export function attachmentUuid(productRender: string, slot: string): string {
  const h = createHash('sha256').update(`${productRender}\0${slot}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** VNTANA's webhook payload for one product of a render request. */
export function productEventPayload(event: WebhookEventType, project: string, product: ProductDoc, productRender: string): Record<string, unknown> {
  return {
    event,
    organization: { uuid: project },
    product: {
      uuid: product._id,
      name: product.name,
      description: product.description,
      status: 'LIVE_PUBLIC',
      asset: { assetOriginalName: product.asset.assetOriginalName, assetOriginalSize: product.asset.assetOriginalSize, generationRequestUuid: productRender },
    },
    client: { uuid: project },
  };
}

/** A VNTANA answer. */
const ok = <T>(response: T) => ({ success: true as const, errors: [] as string[], response });

/** A product render request, checked (sizes 16–4096, imageCount 1–720, frameRate 1–60). */
export function parseRendersRequest(raw: unknown) {
  const body = plainObject(raw);
  refuseUnknown(body, ['productUuids', 'imageWidth', 'imageHeight', 'imageFormat', 'turntable']);
  const uuids = body.productUuids;
  if (!Array.isArray(uuids) || uuids.length === 0 || uuids.length > 100) throw badInput('productUuids must be a list of 1 to 100 product uuids', [{ field: 'productUuids', message: 'not a list of 1 to 100 uuids' }]);
  uuids.forEach((u, i) => {
    if (typeof u !== 'string' || !UUID.test(u)) throw badInput(`productUuids[${i}] is not a product uuid`, [{ field: `productUuids[${i}]`, message: 'not a uuid' }]);
  });
  const required = (obj: Record<string, unknown>, field: string, path: string, min: number, max: number) => {
    if (obj[field] === undefined || obj[field] === null) throw badInput(`${path} is required`, [{ field: path, message: 'required' }]);
    try {
      return whole(obj, field, min, max)!;
    } catch {
      throw badInput(`${path} must be a whole number from ${min} to ${max}`, [{ field: path, message: `not a whole number from ${min} to ${max}` }]);
    }
  };
  const format = typeof body.imageFormat === 'string' ? IMAGE_FORMATS[body.imageFormat.toUpperCase() as keyof typeof IMAGE_FORMATS] : undefined;
  if (!format) throw badInput('imageFormat must be PNG, JPG or WEBP', [{ field: 'imageFormat', message: 'not PNG, JPG or WEBP' }]);
  const tt = body.turntable;
  if (tt === null || typeof tt !== 'object' || Array.isArray(tt)) throw badInput('turntable must be an object {includeGif, imageCount, frameRate, width, height}', [{ field: 'turntable', message: 'not an object' }]);
  const t = tt as Record<string, unknown>;
  const unknown = Object.keys(t).filter((k) => !['includeGif', 'imageCount', 'frameRate', 'width', 'height'].includes(k));
  if (unknown.length) throw badInput(`unknown field turntable.${printable(unknown[0], 40)}`, [{ field: `turntable.${printable(unknown[0], 40)}`, message: 'unknown field' }]);
  if (typeof t.includeGif !== 'boolean') throw badInput('turntable.includeGif must be true or false', [{ field: 'turntable.includeGif', message: 'not a boolean' }]);
  const turntable: TurntableOptions = {
    includeGif: t.includeGif,
    imageCount: required(t, 'imageCount', 'turntable.imageCount', 1, 720),
    frameRate: required(t, 'frameRate', 'turntable.frameRate', 1, 60),
    width: required(t, 'width', 'turntable.width', 16, 4096),
    height: required(t, 'height', 'turntable.height', 16, 4096),
  };
  return {
    productUuids: [...new Set(uuids as string[])],
    imageWidth: required(body, 'imageWidth', 'imageWidth', 16, 4096),
    imageHeight: required(body, 'imageHeight', 'imageHeight', 16, 4096),
    imageFormat: (body.imageFormat as string).toUpperCase() as 'PNG' | 'JPG' | 'WEBP',
    format,
    turntable,
  };
}

/**
 * Products and their renders (VNTANA's contract): a product is an uploaded model; a render
 * request makes a stills job and a turntable job on the farm per product, followed by a
 * TrackProductRender job in an API process that emits the webhooks, has the turntable encoded
 * and records the attachments (replacing the previous request's).
 */
@Injectable()
export class ProductsService {
  private readonly logger = new Logger('Products');

  constructor(
    private readonly store: FarmStore,
    private readonly files: FarmFilesService,
    private readonly jobs: FarmJobsService,
    private readonly webhooks: WebhooksService,
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    private readonly urls: FarmUrlsService,
    private readonly spool: FarmSpoolRepository,
  ) {}

  private get products() {
    return this.store.collection<ProductDoc>(PRODUCTS_COLLECTION);
  }

  private get renders() {
    return this.store.collection<ProductRenderDoc>(PRODUCT_RENDERS_COLLECTION);
  }

  /** POST /v1/products {name, upload_id, description?}. */
  async create(key: string | undefined, raw: unknown) {
    const project = await this.store.authenticateKey(key);
    const body = plainObject(raw);
    refuseUnknown(body, ['name', 'upload_id', 'description', 'api_key']);
    const name = text(body, 'name', { max: 256 });
    if (!name) throw badInput('name is required', [{ field: 'name', message: 'required' }]);
    const uploadId = text(body, 'upload_id', { max: 128, pattern: /^[A-Za-z0-9_-]+$/, patternMessage: 'letters, digits, - and _ only' });
    if (!uploadId) throw badInput('upload_id is required', [{ field: 'upload_id', message: 'required' }]);
    const description = body.description === undefined || body.description === '' ? '' : text(body, 'description', { max: 4096 })!;
    const upload = await this.files.get(project._id, uploadId);
    if (upload.kind !== 'model') throw badInput(`upload_id: not a glTF/GLB model (it is a${upload.kind === 'asset' ? 'n' : ''} ${upload.kind})`, [{ field: 'upload_id', message: 'not a model' }]);
    // A node lays out the model file alone: a .gltf must embed its buffers and images (or be sent as a .glb).
    const external = upload.model?.external ?? [];
    if (external.length > 0) {
      throw unusableMedia(
        `upload_id: this .gltf refers to files beside it (${external.slice(0, 5).map((u) => printable(u, 80)).join(', ')}${external.length > 5 ? ', …' : ''}): embed its buffers and images (data: URIs) or send a .glb`,
        external.slice(0, 20).map((u) => ({ field: 'upload_id', message: `external URI ${printable(u, 200)}` })),
      );
    }
    const now = new Date().toISOString();
    const doc: ProductDoc = {
      _id: randomUUID(),
      project: project._id,
      name,
      description,
      upload: upload._id,
      asset: { assetOriginalName: upload.path.split('/').pop() ?? upload.path, assetOriginalSize: upload.size },
      attachments: [],
      createdAt: now,
      updatedAt: now,
    };
    await this.products.insertOne(doc);
    return ok({ uuid: doc._id });
  }

  private async ownProduct(project: string, uuid: unknown, field = 'uuid'): Promise<ProductDoc> {
    const doc = typeof uuid === 'string' && UUID.test(uuid) ? await this.products.findOne({ _id: uuid, project }) : null;
    if (!doc) throw notFound(`unknown product ${typeof uuid === 'string' ? printable(uuid, 40) : ''}`.trim(), [{ field, message: 'no product of this project has this uuid' }]);
    return doc;
  }

  private view(p: ProductDoc) {
    return { uuid: p._id, name: p.name, description: p.description, status: 'LIVE_PUBLIC', asset: { ...p.asset, ...(p.lastRender ? { generationRequestUuid: p.lastRender } : {}) }, createdAt: p.createdAt, updatedAt: p.updatedAt };
  }

  async get(key: string | undefined, uuid: string) {
    const project = await this.store.authenticateKey(key);
    const product = await this.ownProduct(project._id, uuid);
    if (product.lastRender) await this.failIfUntracked(product.lastRender);
    return ok(this.view(product));
  }

  async list(key: string | undefined, query: Record<string, unknown>) {
    const project = await this.store.authenticateKey(key);
    refuseUnknown(query, ['page', 'size', 'api_key']);
    const page = whole(query, 'page', 1, 100_000) ?? 1;
    const size = whole(query, 'size', 1, 100) ?? 20;
    const total = await this.products.countDocuments({ project: project._id });
    const docs = (await this.products.find({ project: project._id }, { sort: { createdAt: -1 }, limit: page * size })).slice((page - 1) * size);
    return ok({ totalCount: total, page, size, grid: docs.map((d) => this.view(d)) });
  }

  /** POST /v1/products/renders: VNTANA's answer exactly. */
  async requestRenders(key: string | undefined, raw: unknown) {
    const project = await this.store.authenticateKey(key);
    const request = parseRendersRequest(raw);
    const products: ProductDoc[] = [];
    for (const [i, uuid] of request.productUuids.entries()) products.push(await this.ownProduct(project._id, uuid, `productUuids[${i}]`));
    // Product jobs go where this deployment's nodes listen (its first routing key), not to a fixed 'default'.
    const routingKey = this.config.routingKeys[0] ?? 'default';
    for (const product of products) {
      if (product.lastRender) await this.failIfUntracked(product.lastRender);
      const upload = await this.files.get(project._id, product.upload);
      const id = `prr_${randomBytes(12).toString('base64url').replace(/[-_]/g, '').slice(0, 16)}`;
      const count = PRODUCT_VIEWS.length;
      const base = { upload, product: product._id, productRender: id, routingKey };
      const stills = await this.jobs.create(project._id, {
        ...base,
        kind: 'product-stills',
        settings: { frames: range(count), framesSpec: `1-${count}[1]`, format: request.format, resolutionPercent: 100, samples: PRODUCT_SAMPLES, device: 'CPU' },
        shot: { mode: 'stills', count, width: request.imageWidth, height: request.imageHeight, samples: PRODUCT_SAMPLES },
        parallel: 1,
      });
      const n = request.turntable.imageCount;
      const turntable = await this.jobs.create(project._id, {
        ...base,
        kind: 'product-turntable',
        settings: { frames: range(n), framesSpec: `1-${n}[1]`, format: 'PNG', resolutionPercent: 100, samples: PRODUCT_SAMPLES, device: 'CPU' },
        shot: { mode: 'turntable', count: n, width: request.turntable.width, height: request.turntable.height, samples: PRODUCT_SAMPLES },
        parallel: 2,
      });
      const now = new Date().toISOString();
      await this.renders.insertOne({
        _id: id,
        project: project._id,
        product: product._id,
        image: { width: request.imageWidth, height: request.imageHeight, format: request.imageFormat },
        turntable: request.turntable,
        stillsJob: stills._id,
        turntableJob: turntable._id,
        renders: 'pending',
        turntableStatus: 'pending',
        createdAt: now,
        updatedAt: now,
      });
      const updated = (await this.products.findOneAndUpdate({ _id: product._id }, { $set: { lastRender: id, updatedAt: now } })) ?? product;
      await this.emit(project._id, updated, id, 'renders.pending');
      await this.emit(project._id, updated, id, 'turntable.pending');
      await this.queue.enqueue(FARM_QUEUE, JobName.TrackProductRender, { productRender: id }, `track-${id}`, { attempts: 5, backoffMs: 2000 });
    }
    return ok({ uuids: request.productUuids, errors: null });
  }

  private emit(project: string, product: ProductDoc, productRender: string, type: WebhookEventType): Promise<void> {
    // VNTANA's receivers read body.event and body.product: the payload is the whole body.
    return this.webhooks.emit(project, type, productEventPayload(type, project, product, productRender), { eventId: `${productRender}:${type}`, orderKey: productRender, bodyIsData: true });
  }

  /**
   * A request whose tracker BullMQ gave up on (failed for good, or lost) while the request was
   * unfinished: failed now, with its failed webhooks (the tracker's own catch covers errors;
   * this covers stalls and lost jobs, found by the next request of the product).
   */
  private async failIfUntracked(productRender: string): Promise<void> {
    const prr = await this.renders.findOne({ _id: productRender });
    if (!prr || (isFinal(prr.renders) && isFinal(prr.turntableStatus))) return;
    if (Date.now() - Date.parse(prr.createdAt) < TRACKER_GRACE_MS) return;
    const tracker = await this.queue.jobState(FARM_QUEUE, `track-${prr._id}`).catch(() => ({ state: 'unknown' }));
    if (tracker && tracker.state !== 'failed') return;
    const product = await this.products.findOne({ _id: prr.product });
    if (product) await this.failRender(prr, product, 'the render request stopped being followed (its tracker failed)');
  }

  /** Every family of the request not final yet becomes failed (with its webhook); its farm jobs are stopped. */
  private async failRender(prr: ProductRenderDoc, product: ProductDoc, reason: string): Promise<void> {
    for (const id of [prr.stillsJob, prr.turntableJob]) {
      const job = await this.store.jobs.findOne({ _id: id });
      if (job) await this.jobs.stopJob(job).catch((err: Error) => this.logger.warn(`could not stop farm job ${id}: ${err.message}`));
    }
    if (!isFinal(prr.renders)) await this.setStatus(prr, product, 'renders', 'failed', reason);
    if (!isFinal(prr.turntableStatus)) await this.setStatus(prr, product, 'turntableStatus', 'failed', reason);
  }

  // ——— Tracking (TrackProductRender, in API processes) ———

  /** Follows one product's render request until its stills and turntable are recorded (or failed). */
  async track({ productRender }: TrackProductRenderPayload, ctx: JobContext): Promise<{ status: string }> {
    try {
      return await this.follow(productRender, ctx);
    } catch (err) {
      // BullMQ gives up after this try: the request fails now rather than stay pending for ever.
      if ((ctx.lastAttempt || isPermanent(err)) && !ctx.signal.aborted) {
        const prr = await this.renders.findOne({ _id: productRender }).catch(() => null);
        const product = prr ? await this.products.findOne({ _id: prr.product }).catch(() => null) : null;
        if (prr && product) await this.failRender(prr, product, 'the render request failed unexpectedly').catch((e: Error) => this.logger.warn(`could not fail ${productRender}: ${e.message}`));
      }
      throw err;
    }
  }

  private async follow(productRender: string, ctx: JobContext): Promise<{ status: string }> {
    for (;;) {
      const prr = await this.renders.findOne({ _id: productRender });
      if (!prr) return { status: 'gone' };
      const product = await this.products.findOne({ _id: prr.product });
      if (!product) return { status: 'gone' };
      if (isFinal(prr.renders) && isFinal(prr.turntableStatus)) return { status: `${prr.renders}/${prr.turntableStatus}` };
      if (product.lastRender !== prr._id) {
        await this.failRender(prr, product, `superseded by a newer render request (${product.lastRender ?? 'none'})`);
        return { status: 'superseded' };
      }
      const deadline = Date.parse(prr.createdAt) + this.config.farm.productDeadlineSec * 1000;
      if (Date.now() >= deadline) {
        await this.failRender(prr, product, `not finished within ${formatDuration(this.config.farm.productDeadlineSec)}`);
        return { status: `${prr.renders}/${prr.turntableStatus}` };
      }
      if (!isFinal(prr.renders)) await this.followStills(prr, product);
      if (!isFinal(prr.turntableStatus)) await this.followTurntable(prr, product, ctx, deadline);
      const again = await this.renders.findOne({ _id: productRender });
      if (again && isFinal(again.renders) && isFinal(again.turntableStatus)) return { status: `${again.renders}/${again.turntableStatus}` };
      await sleep(TRACK_POLL_MS, ctx.signal);
    }
  }

  private async jobProgress(id: string) {
    const job = await this.store.jobs.findOne({ _id: id });
    if (!job) return undefined;
    return this.jobs.refresh(job);
  }

  private async setStatus(prr: ProductRenderDoc, product: ProductDoc, field: 'renders' | 'turntableStatus', status: ProductRenderStatus, error?: string): Promise<void> {
    await this.renders.findOneAndUpdate({ _id: prr._id }, { $set: { [field]: status, updatedAt: new Date().toISOString(), ...(error ? { error } : {}) } });
    (prr as unknown as Record<string, string>)[field] = status;
    const family = field === 'renders' ? 'renders' : 'turntable';
    await this.emit(prr.project, product, prr._id, `${family}.${status}` as WebhookEventType);
  }

  private async followStills(prr: ProductRenderDoc, product: ProductDoc): Promise<void> {
    const state = await this.jobProgress(prr.stillsJob);
    if (!state) return this.setStatus(prr, product, 'renders', 'failed', 'the stills job is gone');
    const { progress } = state;
    if (prr.renders === 'pending' && progress.frames.some((f) => f.status === 'rendering' || f.status === 'done')) await this.setStatus(prr, product, 'renders', 'processing');
    if (!progress.settled) return;
    if (progress.status !== 'Finished') return this.setStatus(prr, product, 'renders', 'failed', firstError(progress.frames) ?? `the stills job ended ${progress.status.toLowerCase()}`);
    const now = new Date().toISOString();
    // Each still is copied to a key of its own: the farm job and its frames can go without breaking it.
    const attachments: ProductAttachment[] = [];
    for (const f of progress.frames) {
      const view = PRODUCT_VIEWS[f.frame - 1] ?? `view-${f.frame}`;
      const uuid = attachmentUuid(prr._id, `RENDER:${view}`);
      const ext = f.state!.ext!;
      await this.storage.storeOutput(attachmentKey(uuid), ext, async (file) => this.spool.writeTo(await this.storage.read(f.state!.storageKey!, ext), file));
      attachments.push({ uuid, type: 'RENDER', view, format: prr.image.format, width: prr.image.width, height: prr.image.height, size: f.state?.bytes ?? 0, storageKey: attachmentKey(uuid), ext, productRender: prr._id, createdAt: now });
    }
    await this.record(prr, ['RENDER'], attachments);
    if (prr.renders === 'pending') await this.setStatus(prr, product, 'renders', 'processing');
    await this.setStatus(prr, product, 'renders', 'completed');
    await this.removeFrames(progress.frames);
  }

  /** A product job's stored frames, once copied or encoded (its document says what they were). */
  private async removeFrames(frames: Array<{ state?: { storageKey?: string; ext?: string } }>): Promise<void> {
    for (const f of frames) if (f.state?.storageKey && f.state.ext) await this.storage.remove(f.state.storageKey, f.state.ext).catch(() => undefined);
  }

  private async followTurntable(prr: ProductRenderDoc, product: ProductDoc, ctx: JobContext, deadline: number): Promise<void> {
    const state = await this.jobProgress(prr.turntableJob);
    if (!state) return this.setStatus(prr, product, 'turntableStatus', 'failed', 'the turntable job is gone');
    const { job, progress } = state;
    if (prr.turntableStatus === 'pending' && progress.frames.some((f) => f.status === 'rendering' || f.status === 'done')) await this.setStatus(prr, product, 'turntableStatus', 'processing');
    if (!progress.settled) return;
    if (progress.status !== 'Finished') return this.setStatus(prr, product, 'turntableStatus', 'failed', firstError(progress.frames) ?? `the turntable job ended ${progress.status.toLowerCase()}`);
    const frames: FarmFileRef[] = progress.frames.map((f) => ({
      path: `frame_${String(f.frame).padStart(6, '0')}.${f.state!.ext}`,
      storageKey: f.state!.storageKey!,
      ext: f.state!.ext!,
      sha256: f.state!.sha256 ?? '',
      size: f.state!.bytes ?? 0,
    }));
    const mp4Key = `tt-${prr._id}`;
    const gifKey = prr.turntable.includeGif ? `tg-${prr._id}` : undefined;
    const encodeQueue = queueName(job.routingKey ?? 'default', EngineName.Blender, 'CPU');
    const encodeId = `encode-${prr._id}`;
    const storageId = await this.storage.identity().catch(() => undefined);
    await this.queue.enqueue(
      encodeQueue,
      JobName.EncodeTurntable,
      { job: job._id, project: prr.project, frames, frameRate: prr.turntable.frameRate, width: prr.turntable.width, height: prr.turntable.height, includeGif: prr.turntable.includeGif, mp4Key, ...(gifKey ? { gifKey } : {}), ...(storageId ? { storageId } : {}) },
      encodeId,
    );
    let result;
    // The encode, too, ends by the request's deadline.
    const late = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
    try {
      result = await this.queue.waitFor<JobName.EncodeTurntable>(encodeQueue, encodeId, { signal: AbortSignal.any([ctx.signal, late]) });
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      if (late.aborted) return this.failRender(prr, product, `not finished within ${formatDuration(this.config.farm.productDeadlineSec)}`);
      return this.setStatus(prr, product, 'turntableStatus', 'failed', `the turntable could not be encoded: ${(err as Error).message.split('\n')[0].slice(0, 200)}`);
    }
    const now = new Date().toISOString();
    const common = { format: 'MP4', width: prr.turntable.width, height: prr.turntable.height, productRender: prr._id, createdAt: now };
    const attachments: ProductAttachment[] = [{ ...common, uuid: attachmentUuid(prr._id, 'TURNTABLE'), type: 'TURNTABLE', size: result.mp4.bytes, storageKey: mp4Key, ext: 'mp4' }];
    if (gifKey && result.gif) attachments.push({ ...common, uuid: attachmentUuid(prr._id, 'TURNTABLE_GIF'), type: 'TURNTABLE_GIF', format: 'GIF', size: result.gif.bytes, storageKey: gifKey, ext: 'gif' });
    await this.record(prr, ['TURNTABLE', 'TURNTABLE_GIF'], attachments);
    if (prr.turntableStatus === 'pending') await this.setStatus(prr, product, 'turntableStatus', 'processing');
    await this.setStatus(prr, product, 'turntableStatus', 'completed');
    // The PNG frames were only the encode's input.
    await this.removeFrames(progress.frames);
  }

  /**
   * The product's attachments of these types become `fresh` (VNTANA: a new request replaces the
   * previous renders; a GIF not asked for again is gone); replaced ones' stored objects are removed.
   * A request that a newer one superseded records nothing (its objects go instead).
   */
  private async record(prr: ProductRenderDoc, types: ProductAttachment['type'][], fresh: ProductAttachment[]): Promise<void> {
    const product = await this.products.findOne({ _id: prr.product });
    if (!product || product.lastRender !== prr._id) {
      for (const a of fresh) await this.storage.remove(a.storageKey, a.ext).catch(() => undefined);
      return;
    }
    const replaced = product.attachments.filter((a) => types.includes(a.type) && a.productRender !== prr._id);
    const kept = product.attachments.filter((a) => !types.includes(a.type));
    await this.products.findOneAndUpdate({ _id: product._id }, { $set: { attachments: [...kept, ...fresh], updatedAt: new Date().toISOString() } });
    for (const a of replaced) await this.storage.remove(a.storageKey, a.ext).catch(() => undefined);
    await this.removeSuperseded(prr, types.includes('RENDER') ? 'stillsJob' : 'turntableJob');
  }

  /**
   * Older requests of the product whose attachments of this family were just replaced: their
   * farm job of the family goes (document and frames); a finished request with neither job
   * left goes too. An unfinished one is its tracker's to end (it sees it was superseded).
   */
  private async removeSuperseded(prr: ProductRenderDoc, family: 'stillsJob' | 'turntableJob'): Promise<void> {
    const older = (await this.renders.find({ product: prr.product })).filter((r) => r._id !== prr._id && r.createdAt <= prr.createdAt);
    for (const old of older) {
      const job = await this.store.jobs.findOne({ _id: old[family] });
      if (job) await this.removeProductJob(job);
      // A removed job whose chunk still runs waits (removedAt) for its frames to be swept: it is gone already.
      const left = await this.store.jobs.countDocuments({ _id: { $in: [old.stillsJob, old.turntableJob] }, removedAt: { $exists: false } } as never);
      if (left === 0 && isFinal(old.renders) && isFinal(old.turntableStatus)) await this.renders.deleteOne({ _id: old._id });
    }
  }

  private async removeProductJob(job: FarmJobDoc): Promise<void> {
    await this.jobs.removeJob(job).catch((err: Error) => this.logger.warn(`could not remove superseded farm job ${job._id}: ${err.message}`));
  }

  // ——— Attachments ———

  /** GET /v1/products/:uuid/attachments: VNTANA's attachments with signed download URLs (FarmUrlsService's, no key needed). */
  async attachments(key: string | undefined, uuid: string, baseUrl: string) {
    const project = await this.store.authenticateKey(key);
    const product = await this.ownProduct(project._id, uuid);
    const expires = this.urls.expiresAt();
    return ok({
      attachments: product.attachments.map((a) => ({
        uuid: a.uuid,
        type: a.type,
        ...(a.view ? { view: a.view } : {}),
        format: a.format,
        width: a.width,
        height: a.height,
        size: a.size,
        url: this.urls.signedApiUrl(baseUrl, `/v1/products/${product._id}/attachments/${a.uuid}`, {}, expires),
      })),
    });
  }

  /** GET /v1/products/:uuid/attachments/:attachment?expires&sig: the stored bytes. */
  async attachment(uuid: string, attachmentId: string, query: Record<string, unknown>): Promise<StoredDownload> {
    this.urls.verifySignedApiUrl(`/v1/products/${uuid}/attachments/${attachmentId}`, query, 'list the attachments again for a new one');
    const product = UUID.test(uuid) ? await this.products.findOne({ _id: uuid }) : null;
    const a = product?.attachments.find((x) => x.uuid === attachmentId);
    if (!a) throw notFound('this attachment was replaced by a newer render', [{ field: 'attachment', message: 'unknown attachment' }]);
    const stat = await this.storage.stat(a.storageKey, a.ext);
    if (!stat) throw notFound('this attachment is no longer stored', [{ field: 'attachment', message: 'not stored' }]);
    const name = `${a.type.toLowerCase()}${a.view ? `-${a.view}` : ''}.${a.ext}`;
    return storedDownload(this.storage, a.storageKey, a.ext, stat.size, name);
  }
}

const isFinal = (s: ProductRenderStatus) => s === 'completed' || s === 'failed';
const formatDuration = (sec: number) => (sec % 3600 === 0 ? `${sec / 3600} h` : sec % 60 === 0 ? `${sec / 60} min` : `${sec} s`);
/** A product shot's frames: 1…n (the node's script keys pose i at frame i + 1). */
const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const firstError = (frames: Array<{ error?: string }>) => frames.find((f) => f.error)?.error;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error('stopped'));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(new Error('stopped'));
    };
    signal.addEventListener('abort', abort, { once: true });
  });
}
