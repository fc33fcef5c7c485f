import { Inject, Injectable, Logger } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import type { Writable } from 'node:stream';
import { badInput, conflict, notFound } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { EngineName } from '../engines/engine';
import { JobName, queueName } from '../jobs/job.types';
import { JOB_QUEUE } from '../jobs/queue.module';
import type { ProjectDoc } from '../projects/project.types';
import { ArchiveRepository } from '../repositories/archive.repository';
import type { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { OUTPUT_STORAGE, type OutputStorage } from '../repositories/output-storage/port';
import { chunkFrames, farmChunkJobId } from './farm-chunks';
import { FarmFilesService } from './farm-files.service';
import { farmFrameKey } from './farm-keys';
import { type ChunkState, deriveProgress, type FrameView, type JobProgress, PENDING } from './farm-progress';
import { parseRenderBody, plainObject, printable, refuseUnknown, settingsFor, text, whole } from './farm-request';
import { FarmStore } from './farm-store';
import { FarmUrlsService } from './farm-urls.service';
import { type StoredDownload, storedDownload } from './stored-download';
import { FARM_FRAME_FORMATS, type FarmChunk, type FarmFileDoc, type FarmJobDoc, type FarmJobKind, type FarmJobStatus, type FrameState, type ProductShot, type RenderFarmFramesPayload, type SceneSettings } from './farm.types';

/** Rentaflop's status words, and the lower-case keys also accepted in filters. */
const STATUS_WORDS: Record<string, FarmJobStatus> = {
  'in progress': 'In progress',
  in_progress: 'In progress',
  running: 'In progress',
  finished: 'Finished',
  done: 'Finished',
  stopped: 'Stopped',
  failed: 'Failed',
};

const JOB_ID = /^job_[A-Za-z0-9]{1,40}$/;

/** Redis (chunk states) and storage calls of one job in flight at once. */
const CALLS_AT_ONCE = 16;
/** Open jobs the settler refreshes per pass (the next pass goes on from where it stopped). */
const SETTLE_BATCH = 100;
/** Deleted jobs whose frames the settler sweeps per pass. */
const SWEEP_BATCH = 20;

/** Not visible to clients: a deleted job waiting for its frames to be swept. */
const LIVE = { removedAt: { $exists: false } } as const;

/** `fn` over `items`, at most `limit` at once; results in order. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

/** What a new farm job is made of (scene jobs from the API, product jobs from products). */
export interface NewFarmJob {
  kind: FarmJobKind;
  upload: FarmFileDoc;
  settings: SceneSettings;
  shot?: ProductShot;
  product?: string;
  productRender?: string;
  projectName?: string;
  routingKey: string;
  parallel: number;
}

/** A zip entry's name: `<job>/frame_000001.png`. */
export function frameFileName(job: string, frame: number, ext: string): string {
  return `${job}/frame_${String(frame).padStart(6, '0')}.${ext}`;
}

/**
 * Farm jobs (Rentaflop's and Fox's contracts): a scene (or a product shot) cut into chunks of
 * frames, each chunk one job on a Blender render queue; progress from what the nodes report;
 * stop, retry, and downloads of the frames (a streamed zip, a manifest, single frames).
 */
@Injectable()
export class FarmJobsService {
  private readonly logger = new Logger('Farm');
  private storageId?: Promise<string | undefined>;
  /** Where the settler's next pass goes on (createdAt of the last open job it looked at). */
  private settleCursor = '';

  constructor(
    private readonly store: FarmStore,
    private readonly files: FarmFilesService,
    private readonly archive: ArchiveRepository,
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    private readonly urls: FarmUrlsService,
  ) {}

  // ——— Creating ———

  /** POST /v1/farm/render (and Fox's POST /v1/farm/tasks). */
  async render(key: string | undefined, raw: unknown): Promise<{ status: 200; job_id: string; total_frames: number }> {
    const project = await this.store.authenticateKey(key);
    const request = parseRenderBody(raw);
    const upload = request.uploadId ? await this.files.get(project._id, request.uploadId) : await this.files.byPath(project._id, request.scenePath!);
    const field = request.uploadId ? 'upload_id' : 'input_scene_path';
    if (upload.kind !== 'blend' || !upload.inventory) throw badInput(`${field}: not a .blend scene (it is a${upload.kind === 'asset' ? 'n' : ''} ${upload.kind})`, [{ field, message: 'not a .blend' }]);
    const nodes = request.blenderVersion ? await this.queue.liveNodes() : [];
    const versions = nodes.map((n) => n.blender?.version).filter((v): v is string => !!v);
    const settings = settingsFor(request, upload.inventory, versions);
    const job = await this.create(project._id, { kind: 'scene', upload, settings, projectName: request.projectName, routingKey: request.routingKey, parallel: request.parallel });
    return { status: 200, job_id: job._id, total_frames: job.totalFrames };
  }

  /** Stores the job and queues its chunks. */
  async create(project: string, spec: NewFarmJob): Promise<FarmJobDoc> {
    const now = new Date().toISOString();
    const id = `job_${randomBytes(12).toString('base64url').replace(/[-_]/g, '').slice(0, 16)}`;
    const queue = queueName(spec.routingKey, EngineName.Blender, spec.settings.device);
    const chunks: FarmChunk[] = chunkFrames(spec.settings.frames, this.config.farm.chunkFrames, spec.parallel).map((frames, index) => ({
      jobId: farmChunkJobId(id, index, 1),
      queue,
      frames,
      attempt: 1,
      createdAt: now,
    }));
    const doc: FarmJobDoc = {
      _id: id,
      project,
      kind: spec.kind,
      upload: spec.upload._id,
      ...(spec.product ? { product: spec.product } : {}),
      ...(spec.productRender ? { productRender: spec.productRender } : {}),
      settings: spec.settings,
      ...(spec.shot ? { shot: spec.shot } : {}),
      ...(spec.projectName ? { projectName: spec.projectName } : {}),
      routingKey: spec.routingKey,
      totalFrames: spec.settings.frames.length,
      chunks,
      status: 'In progress',
      createdAt: now,
      updatedAt: now,
    };
    await this.store.jobs.insertOne(doc);
    await this.enqueueChunks(doc, chunks, spec.upload);
    return doc;
  }

  private async enqueueChunks(doc: FarmJobDoc, chunks: FarmChunk[], upload?: FarmFileDoc): Promise<void> {
    const main = upload ?? (await this.files.get(doc.project, doc.upload));
    const { frames: _frames, framesSpec: _spec, ...settings } = doc.settings;
    const source: RenderFarmFramesPayload['source'] = doc.shot
      ? { kind: 'product', model: this.files.ref(main), shot: doc.shot }
      : { kind: 'blend', main: this.files.ref(main), files: await this.files.filesBeside(doc.project, main) };
    const storageId = await (this.storageId ??= this.storage.identity().catch(() => undefined));
    const byQueue = new Map<string, FarmChunk[]>();
    for (const c of chunks) byQueue.set(c.queue, [...(byQueue.get(c.queue) ?? []), c]);
    for (const [queue, list] of byQueue) {
      await this.queue.enqueueBulk(
        queue,
        JobName.RenderFarmFrames,
        list.map((c) => ({
          jobId: c.jobId,
          payload: {
            engine: 'blender',
            job: doc._id,
            project: doc.project,
            chunk: doc.chunks.findIndex((d) => d.jobId === c.jobId),
            attempt: c.attempt ?? 1,
            frames: c.frames,
            source,
            settings,
            ...(storageId ? { storageId } : {}),
          } satisfies RenderFarmFramesPayload,
        })),
      );
    }
  }

  // ——— Progress ———

  /** A job of the key's project (404 for others': their ids are not confirmed). */
  async jobOf(key: string | undefined, id: unknown, field = 'job_id'): Promise<{ project: ProjectDoc; job: FarmJobDoc }> {
    const project = await this.store.authenticateKey(key);
    return { project, job: await this.ownJob(project._id, id, field) };
  }

  private async ownJob(project: string, id: unknown, field = 'job_id'): Promise<FarmJobDoc> {
    if (id === undefined || id === null) throw badInput(`${field} is required`, [{ field, message: 'required' }]);
    const job = typeof id === 'string' && JOB_ID.test(id) ? await this.store.jobs.findOne({ _id: id, project, ...LIVE }) : null;
    if (!job) throw notFound(`unknown ${field}`, [{ field, message: 'no job of this project has this id' }]);
    return job;
  }

  /**
   * The job's progress now; a job that has settled has its frame states copied into the store
   * (Redis keeps them only while it runs) and its Redis frame states removed. Before a frame
   * is settled as not rendered, storage is asked for it (its key is known): a node may have
   * stored it and died before reporting, or Redis may have lost the states.
   */
  async refresh(job: FarmJobDoc): Promise<{ job: FarmJobDoc; progress: JobProgress }> {
    if (job.settledAt || job.removedAt) return { job, progress: deriveProgress(job, {}, new Map()) };
    const live = await this.queue.farmFrameStates(job._id);
    const states = await this.chunkStates(job);
    let progress = deriveProgress(job, live, states);
    if (job.stoppedAt && progress.busy && (await this.dropWaiting(job, states))) progress = deriveProgress(job, live, states);
    if (!progress.settled) return { job, progress };
    const found = await this.storedFrames(job, live, progress);
    // Storage did not answer: nothing is settled as lost on that account; the next look settles.
    if (found === undefined) return { job, progress: { ...progress, settled: false } };
    if (found > 0) progress = deriveProgress(job, live, states);
    const now = new Date().toISOString();
    const frames: Record<string, FrameState> = {};
    for (const f of progress.frames) {
      if (f.state) frames[String(f.frame)] = f.state;
      else if (f.status === 'failed') frames[String(f.frame)] = { status: 'failed', node: f.node ?? '', ...(f.error ? { error: f.error } : {}), at: now };
    }
    // Guarded: of two processes settling the same job, one writes.
    const settled = await this.store.jobs.findOneAndUpdate(
      { _id: job._id, settledAt: { $exists: false }, updatedAt: job.updatedAt },
      { $set: { frames, settledAt: now, status: progress.status, updatedAt: now } },
    );
    if (settled) await this.queue.removeFarmJobState(job._id);
    const current = settled ?? (await this.store.jobs.findOne({ _id: job._id })) ?? job;
    return { job: current, progress: current.settledAt ? deriveProgress(current, {}, new Map()) : progress };
  }

  /** Every chunk's queue state, a bounded number of Redis calls at once. */
  private async chunkStates(job: FarmJobDoc): Promise<Map<string, ChunkState>> {
    const states = await mapBounded(job.chunks, CALLS_AT_ONCE, (c) => this.queue.jobState(c.queue, c.jobId));
    return new Map(job.chunks.map((c, i) => [c.jobId, states[i]]));
  }

  /** A stopped job's chunks back in their queue (a BullMQ retry after the stop) are taken out; true when one was. */
  private async dropWaiting(job: FarmJobDoc, states: Map<string, ChunkState>): Promise<boolean> {
    const waiting = job.chunks.filter((c) => PENDING.has(states.get(c.jobId)?.state ?? ''));
    const dropped = await mapBounded(waiting, CALLS_AT_ONCE, (c) => this.queue.removeWaiting(c.queue, c.jobId));
    waiting.forEach((c, i) => dropped[i] && states.delete(c.jobId));
    return dropped.some(Boolean);
  }

  /**
   * Frames about to settle as not rendered whose state is missing (or stuck at rendering) but
   * whose object is stored: their done state is made up from storage (size, time, sha-256)
   * and put in `live`. Returns how many were found; undefined when storage failed.
   */
  private async storedFrames(job: FarmJobDoc, live: Record<number, FrameState>, progress: JobProgress): Promise<number | undefined> {
    const ext = FARM_FRAME_FORMATS[job.settings.format];
    if (!ext) return 0;
    const unsure = progress.frames.filter((f) => {
      if (f.status === 'done') return false;
      const state = live[f.frame] ?? job.frames?.[String(f.frame)];
      return !state || state.status === 'rendering';
    });
    const found = await mapBounded(unsure, CALLS_AT_ONCE, async (f) => {
      const key = farmFrameKey(job._id, f.frame);
      const stat = await this.storage.stat(key, ext);
      if (!stat) return false;
      const hash = createHash('sha256');
      for await (const part of await this.storage.read(key, ext)) hash.update(part as Buffer);
      live[f.frame] = { status: 'done', node: live[f.frame]?.node ?? '', storageKey: key, ext, bytes: stat.size, sha256: hash.digest('hex'), at: stat.mtime.toISOString() };
      return true;
    }).catch((err: unknown) => {
      this.logger.warn(`job ${job._id}: could not look for its frames in storage: ${(err as Error).message}`);
      return undefined;
    });
    return found?.filter(Boolean).length;
  }

  /** POST /v1/farm/progress {job_id}: Rentaflop's answer, with every frame's state. */
  async progress(key: string | undefined, raw: unknown) {
    const body = plainObject(raw);
    refuseUnknown(body, ['api_key', 'job_id']);
    const { job } = await this.jobOf(key, body.job_id);
    const { progress } = await this.refresh(job);
    return { status: 200 as const, frames_completed: progress.framesCompleted, total_frames: progress.totalFrames, job_status: progress.status, frames: progress.frames.map(frameOut) };
  }

  /** GET /v1/farm/jobs/:id: the same, with the settings, the chunks and times. */
  async view(key: string | undefined, id: string) {
    const found = await this.jobOf(key, id, 'id');
    const { job, progress } = await this.refresh(found.job);
    return { status: 200 as const, ...this.describe(job, progress, true), chunks: job.chunks.map((c, index) => ({ index, attempt: c.attempt ?? 1, frames: c.frames })) };
  }

  private describe(job: FarmJobDoc, progress: JobProgress, withFrames: boolean) {
    return {
      job_id: job._id,
      task_id: job._id,
      kind: job.kind,
      ...(job.projectName ? { project_name: job.projectName } : {}),
      job_status: progress.status,
      frames_completed: progress.framesCompleted,
      total_frames: progress.totalFrames,
      settings: {
        upload_id: job.upload,
        frames: job.settings.framesSpec,
        ...(job.settings.renderLayer ? { render_layer: job.settings.renderLayer } : {}),
        ...(job.settings.camera ? { camera: job.settings.camera } : {}),
        format: job.settings.format,
        resolution_percent: job.settings.resolutionPercent,
        ...(job.settings.samples ? { samples: job.settings.samples } : {}),
        device: job.settings.device,
        ...(job.settings.blenderVersion ? { blender_version: job.settings.blenderVersion } : {}),
        routingkey: job.routingKey ?? 'default',
      },
      ...(withFrames ? { frames: progress.frames.map(frameOut) } : {}),
      created_at: job.createdAt,
      updated_at: job.updatedAt,
      ...(job.stoppedAt ? { stopped_at: job.stoppedAt } : {}),
      ...(job.settledAt ? { settled_at: job.settledAt } : {}),
    };
  }

  /** GET /v1/farm/tasks: Fox's task list, filtered and paged. */
  async tasks(key: string | undefined, query: Record<string, unknown>) {
    const project = await this.store.authenticateKey(key);
    refuseUnknown(query, ['status', 'project_name', 'since', 'until', 'page', 'page_size', 'api_key']);
    // Product jobs are the products API's: listed (and stopped, deleted) there only.
    const filter: Record<string, unknown> = { project: project._id, kind: 'scene', ...LIVE };
    const status = text(query, 'status', { max: 32 });
    if (status !== undefined) {
      const word = STATUS_WORDS[status.toLowerCase()];
      if (!word) throw badInput(`status must be one of In progress, Finished, Stopped, Failed (or in_progress, finished, stopped, failed)`, [{ field: 'status', message: 'unknown status' }]);
      filter.status = word;
    }
    const projectName = text(query, 'project_name', { max: 128 });
    if (projectName !== undefined) filter.projectName = projectName;
    const created: Record<string, string> = {};
    for (const [field, op] of [['since', '$gte'], ['until', '$lte']] as const) {
      const value = text(query, field, { max: 40 });
      if (value === undefined) continue;
      const ms = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value) ? Date.parse(value) : NaN;
      if (!Number.isFinite(ms)) throw badInput(`${field} must be an ISO date such as 2026-01-31 or 2026-01-31T12:00:00Z`, [{ field, message: 'not an ISO date' }]);
      created[op] = new Date(ms).toISOString();
    }
    if (Object.keys(created).length > 0) filter.createdAt = created;
    const page = whole(query, 'page', 1, 100_000) ?? 1;
    const pageSize = whole(query, 'page_size', 1, 100) ?? 20;
    const total = await this.store.jobs.countDocuments(filter as never);
    const docs = (await this.store.jobs.find(filter as never, { sort: { createdAt: -1 }, limit: page * pageSize })).slice((page - 1) * pageSize);
    const tasks = [];
    for (const doc of docs) {
      const { job, progress } = await this.refresh(doc);
      tasks.push(this.describe(job, progress, false));
    }
    return { status: 200 as const, tasks, page, page_size: pageSize, total };
  }

  /** GET /v1/farm/tasks/:id?has_frames=1 (Fox's get_tasks(task_id, has_frames)). */
  async task(key: string | undefined, id: string, hasFrames: unknown) {
    const found = await this.jobOf(key, id, 'id');
    const { job, progress } = await this.refresh(found.job);
    return { status: 200 as const, task: this.describe(job, progress, hasFrames === '1' || hasFrames === 'true') };
  }

  // ——— Stop, retry, delete ———

  /**
   * Nothing more starts; running chunks finish (their frames count). A job that has already
   * ended (not yet looked at) settles first: a finished job stays Finished.
   */
  async stop(key: string | undefined, id: unknown) {
    const { job: found } = await this.jobOf(key, id);
    sceneOnly(found);
    const first = await this.refresh(found);
    const { progress } = first.progress.settled ? first : await this.refresh(await this.stopJob(first.job));
    return { status: 200 as const, job_id: found._id, job_status: progress.status, frames_completed: progress.framesCompleted, total_frames: progress.totalFrames };
  }

  /**
   * Stops a job (for products too): the flag nodes read (kept until it expires: a chunk that
   * wakes up later must still see it), waiting chunks removed, stoppedAt.
   */
  async stopJob(job: FarmJobDoc): Promise<FarmJobDoc> {
    if (job.settledAt) return job;
    await this.queue.stopFarmJob(job._id);
    await mapBounded(job.chunks, CALLS_AT_ONCE, (c) => this.queue.removeWaiting(c.queue, c.jobId));
    const now = new Date().toISOString();
    return (await this.store.jobs.findOneAndUpdate({ _id: job._id, stoppedAt: { $exists: false } }, { $set: { stoppedAt: now, updatedAt: now } })) ?? (await this.store.jobs.findOne({ _id: job._id })) ?? job;
  }

  /**
   * Failed frames get new chunks (the next attempt). 409 until the job has settled (a running
   * job's done frames live in Redis only: nothing may touch them), and when no frame failed.
   */
  async retry(key: string | undefined, id: unknown) {
    const { job: found } = await this.jobOf(key, id);
    sceneOnly(found);
    const { job, progress } = await this.refresh(found);
    if (!job.settledAt) {
      throw conflict(job.stoppedAt ? 'the job is stopping: retry once its running chunks have ended' : 'the job is still running: retry once it has ended (Failed or Stopped)');
    }
    const failed = progress.frames.filter((f) => f.status === 'failed').map((f) => f.frame);
    if (failed.length === 0) throw conflict('no frame of this job failed: nothing to retry');
    const now = new Date().toISOString();
    const attempt = Math.max(...job.chunks.map((c) => c.attempt ?? 1)) + 1;
    const queue = job.chunks[0]?.queue ?? queueName(job.routingKey ?? 'default', EngineName.Blender, job.settings.device);
    const fresh: FarmChunk[] = chunkFrames(failed, this.config.farm.chunkFrames, 1).map((frames, i) => ({
      jobId: farmChunkJobId(job._id, job.chunks.length + i, attempt),
      queue,
      frames,
      attempt,
      createdAt: now,
    }));
    // Done frames stay in the stored copy: progress reads it beside Redis's new states.
    const kept = Object.fromEntries(Object.entries(job.frames ?? {}).filter(([, s]) => s.status === 'done'));
    const updated = await this.store.jobs.findOneAndUpdate(
      { _id: job._id, updatedAt: job.updatedAt, ...LIVE },
      { $set: { chunks: [...job.chunks, ...fresh], frames: kept, status: 'In progress', updatedAt: now }, $unset: { settledAt: true, stoppedAt: true } },
    );
    if (!updated) throw conflict('the job changed meanwhile: try again');
    // Settled: no chunk of before is left to wake up, so lifting the stop affects the new ones only.
    if (job.stoppedAt) await this.queue.resumeFarmJob(job._id);
    await this.enqueueChunks(updated, fresh);
    return { status: 200 as const, job_id: job._id, job_status: 'In progress' as const, retried_frames: failed.length, total_frames: job.totalFrames };
  }

  /** DELETE /v1/farm/jobs/:id: stopped, its stored frames removed, then the job itself. */
  async remove(key: string | undefined, id: string) {
    const { job } = await this.jobOf(key, id, 'id');
    sceneOnly(job);
    await this.removeJob(job);
    return { status: 200 as const, job_id: job._id, deleted: true };
  }

  /**
   * Removes a job (for products too). It is stopped and flagged removed (a running chunk
   * stores no further frame), and hidden at once. Its frames are swept when none of its
   * chunks is left in a queue: now, or by the settler later (the document waits, with
   * `removedAt`, until then).
   */
  async removeJob(job: FarmJobDoc): Promise<void> {
    await this.queue.removeFarmJob(job._id);
    await this.stopJob(job);
    const now = new Date().toISOString();
    const tombstone = (await this.store.jobs.findOneAndUpdate({ _id: job._id }, { $set: { removedAt: now, updatedAt: now } })) ?? job;
    await this.store.downloads.deleteMany({ job: job._id });
    if (await this.sweepRemoved(tombstone)) return;
    // Still running: what is stored so far goes now, what its chunks store meanwhile later.
    const states: Record<string, FrameState> = { ...(job.frames ?? {}), ...(await this.queue.farmFrameStates(job._id)) };
    await mapBounded(Object.values(states), CALLS_AT_ONCE, async (s) => {
      if (s.status === 'done' && s.storageKey && s.ext) await this.storage.remove(s.storageKey, s.ext).catch(() => undefined);
    });
  }

  /**
   * A removed job whose chunks have all left their queues: every frame it may have stored
   * (the keys are known: fr-<job>-<frame>, and any a state names) removed, then the job.
   * False when a chunk still runs or waits (nothing removed yet).
   */
  private async sweepRemoved(job: FarmJobDoc): Promise<boolean> {
    const states = await this.chunkStates(job);
    if (job.chunks.some((c) => { const s = states.get(c.jobId)?.state ?? ''; return s === 'active' || PENDING.has(s); })) {
      await this.dropWaiting(job, states);
      return false;
    }
    const objects = new Map<string, { key: string; ext: string }>();
    const ext = FARM_FRAME_FORMATS[job.settings.format];
    if (ext) for (const frame of job.settings.frames) objects.set(`${farmFrameKey(job._id, frame)}.${ext}`, { key: farmFrameKey(job._id, frame), ext });
    const live = await this.queue.farmFrameStates(job._id);
    for (const s of [...Object.values(job.frames ?? {}), ...Object.values(live)]) {
      if (s.storageKey && s.ext) objects.set(`${s.storageKey}.${s.ext}`, { key: s.storageKey, ext: s.ext });
    }
    await mapBounded([...objects.values()], CALLS_AT_ONCE, (o) => this.storage.remove(o.key, o.ext).catch(() => undefined));
    await this.queue.removeFarmJobState(job._id);
    await this.store.jobs.deleteOne({ _id: job._id });
    return true;
  }

  // ——— The settler ———

  /**
   * One pass of the settler (API processes with DELIVERY_WORKERS, every few seconds): open
   * jobs are refreshed, so that they settle while Redis still has their states even when no
   * client asks; deleted jobs whose chunks have ended are swept.
   */
  async settleOpen(): Promise<{ settled: number; swept: number }> {
    let settled = 0;
    let swept = 0;
    const open = await this.store.jobs.find({ settledAt: { $exists: false }, createdAt: { $gt: this.settleCursor }, ...LIVE }, { sort: { createdAt: 1 }, limit: SETTLE_BATCH });
    this.settleCursor = open.length < SETTLE_BATCH ? '' : open[open.length - 1].createdAt;
    for (const doc of open) {
      const { job } = await this.refresh(doc).catch((err: unknown) => {
        this.logger.warn(`job ${doc._id}: could not settle: ${(err as Error).message}`);
        return { job: doc };
      });
      if (job.settledAt) settled++;
    }
    const removed = await this.store.jobs.find({ removedAt: { $exists: true } }, { sort: { removedAt: 1 }, limit: SWEEP_BATCH });
    for (const doc of removed) {
      const done = await this.sweepRemoved(doc).catch((err: unknown) => {
        this.logger.warn(`job ${doc._id}: could not sweep its frames: ${(err as Error).message}`);
        return false;
      });
      if (done) swept++;
    }
    return { settled, swept };
  }

  // ——— Downloads ———

  /** POST /v1/farm/download {job_id, have?}: a signed, expiring URL of the frames' zip (no key needed to fetch it). */
  async download(key: string | undefined, raw: unknown, baseUrl: string) {
    const body = plainObject(raw);
    refuseUnknown(body, ['api_key', 'job_id', 'have']);
    const { project, job: found } = await this.jobOf(key, body.job_id);
    const have = parseHave(body.have);
    const { job, progress } = await this.refresh(found);
    const done = progress.frames.filter((f) => f.status === 'done' && f.state?.storageKey);
    const exclude = done.filter((f) => have.has(f.state!.sha256 ?? '', frameFileName(job._id, f.frame, f.state!.ext ?? ''))).map((f) => f.frame);
    const expires = this.urls.expiresAt();
    const query: Record<string, string> = {};
    if (exclude.length > 0) {
      const id = `dl_${randomBytes(9).toString('base64url')}`;
      await this.store.downloads.insertOne({ _id: id, job: job._id, project: project._id, exclude, createdAt: new Date().toISOString(), expiresAt: new Date(expires * 1000).toISOString() });
      query.d = id;
    }
    return {
      status: 200 as const,
      url: this.urls.signedApiUrl(baseUrl, `/v1/farm/jobs/${job._id}/frames.zip`, query, expires),
      manifest_url: this.urls.signedApiUrl(baseUrl, `/v1/farm/jobs/${job._id}/manifest`, {}, expires),
      frames: done.length - exclude.length,
      job_status: progress.status,
      expires_at: new Date(expires * 1000).toISOString(),
    };
  }

  /** A signed route's job: the URL's signature (the service's, see FarmUrlsService) and expiry checked (403 otherwise). */
  private async signedJob(id: string, path: string, query: Record<string, unknown>): Promise<{ job: FarmJobDoc }> {
    this.urls.verifySignedApiUrl(path, query, 'ask POST /v1/farm/download for a new one');
    const job = JOB_ID.test(id) ? await this.store.jobs.findOne({ _id: id, ...LIVE }) : null;
    if (!job) throw notFound('this job is gone', [{ field: 'id', message: 'no such job' }]);
    return { job };
  }

  /** The job of a route that takes a key or a signature (manifest, single frames). */
  private async keyOrSigned(key: string | undefined, id: string, path: string, query: Record<string, unknown>) {
    return typeof query.sig === 'string' ? this.signedJob(id, path, query) : this.jobOf(key, id, 'id');
  }

  /** GET /v1/farm/jobs/:id/manifest: every done frame with its hash and a signed URL of its own. */
  async manifest(key: string | undefined, id: string, query: Record<string, unknown>, baseUrl: string) {
    const found = await this.keyOrSigned(key, id, `/v1/farm/jobs/${id}/manifest`, query);
    const { job, progress } = await this.refresh(found.job);
    const expires = this.urls.expiresAt();
    return {
      status: 200 as const,
      job_id: job._id,
      job_status: progress.status,
      frames: progress.frames
        .filter((f) => f.status === 'done' && f.state?.storageKey)
        .map((f) => ({
          frame: f.frame,
          name: frameFileName(job._id, f.frame, f.state!.ext ?? 'bin'),
          sha256: f.state!.sha256,
          bytes: f.state!.bytes,
          url: this.urls.signedApiUrl(baseUrl, `/v1/farm/jobs/${job._id}/frames/${f.frame}`, {}, expires),
        })),
    };
  }

  /** GET /v1/farm/jobs/:id/frames/:frame (key or signed URL): one stored frame. */
  async frame(key: string | undefined, id: string, frameRaw: string, query: Record<string, unknown>): Promise<StoredDownload> {
    const found = await this.keyOrSigned(key, id, `/v1/farm/jobs/${id}/frames/${frameRaw}`, query);
    if (!/^\d{1,7}$/.test(frameRaw)) throw badInput('frame must be a frame number', [{ field: 'frame', message: 'not a frame number' }]);
    const { progress } = await this.refresh(found.job);
    const view = progress.frames.find((f) => f.frame === Number(frameRaw));
    if (!view) throw notFound(`the job renders no frame ${Number(frameRaw)}`, [{ field: 'frame', message: 'not a frame of this job' }]);
    if (view.status !== 'done' || !view.state?.storageKey || !view.state.ext) throw notFound(`frame ${view.frame} is not rendered (it is ${view.status})`, [{ field: 'frame', message: view.status }]);
    const stat = await this.storage.stat(view.state.storageKey, view.state.ext);
    if (!stat) throw notFound(`frame ${view.frame} is no longer stored`, [{ field: 'frame', message: 'not stored' }]);
    return storedDownload(this.storage, view.state.storageKey, view.state.ext, stat.size, frameFileName(found.job._id, view.frame, view.state.ext).split('/')[1]);
  }

  /** Checks a zip URL before anything is sent (errors are still JSON then). */
  async zipEntries(id: string, query: Record<string, unknown>) {
    const { job: found } = await this.signedJob(id, `/v1/farm/jobs/${id}/frames.zip`, query);
    let exclude = new Set<number>();
    if (query.d !== undefined) {
      const download = typeof query.d === 'string' && /^dl_[A-Za-z0-9_-]{1,20}$/.test(query.d) ? await this.store.downloads.findOne({ _id: query.d, job: found._id }) : null;
      if (!download) throw notFound('this download is gone: ask POST /v1/farm/download for a new one');
      exclude = new Set(download.exclude);
    }
    const { job, progress } = await this.refresh(found);
    const entries = progress.frames
      .filter((f) => f.status === 'done' && f.state?.storageKey && f.state.ext && !exclude.has(f.frame))
      .map((f) => ({ name: frameFileName(job._id, f.frame, f.state!.ext!), size: f.state!.bytes ?? 0, mtime: new Date(f.state!.at), key: f.state!.storageKey!, ext: f.state!.ext! }));
    return { job, entries };
  }

  /** Streams the zip into `out` (entries read from storage one at a time). */
  async writeZip(entries: Array<{ name: string; size: number; mtime: Date; key: string; ext: string }>, out: Writable, signal?: AbortSignal): Promise<void> {
    await this.archive.writeZip(
      entries.map((e) => ({ name: e.name, size: e.size, mtime: e.mtime, open: () => this.storage.read(e.key, e.ext) })),
      out,
      signal,
    );
  }
}

/** Product jobs are stopped, retried and deleted through their product, never directly. */
function sceneOnly(job: FarmJobDoc): void {
  if (job.kind !== 'scene') throw conflict(`${job._id} renders a product: product renders are managed through /v1/products`);
}

function frameOut(f: FrameView) {
  return { frame: f.frame, status: f.status, ...(f.node ? { node: f.node } : {}), ...(f.error ? { error: f.error } : {}) };
}

/**
 * `have`, what the client already has: a list of sha-256 (a frame is left out by its hash), a
 * list of `{name, sha256}` (left out when its name and hash match), or an object `{name:
 * sha256}`. JSON keys may not contain "." (the body policy), so an object's names are given
 * without their extension (`frame_000001`) or as frame numbers (`"1"`); names in a list may
 * have it. A name is the zip's (`job_…/frame_000001.png`) or its last part.
 */
export function parseHave(raw: unknown): { has(sha: string, name: string): boolean; size: number } {
  const sha = (v: unknown, at: string) => {
    if (typeof v !== 'string' || !/^[0-9a-fA-F]{64}$/.test(v)) throw badInput(`have: ${at} is not a sha-256 (64 hex digits)`, [{ field: 'have', message: `${at}: not a sha-256` }]);
    return v.toLowerCase();
  };
  const named = (name: unknown, at: string) => {
    if (typeof name !== 'string' || name.length === 0 || name.length > 256) throw badInput(`have: ${at} needs a name of 1 to 256 characters`, [{ field: 'have', message: `${at}: bad name` }]);
    return name;
  };
  if (raw === undefined || raw === null) return { has: () => false, size: 0 };
  const hashes = new Set<string>();
  const byName = new Map<string, string>();
  const entries: Array<[string | undefined, unknown, string]> = [];
  if (Array.isArray(raw)) {
    if (raw.length > 100_000) throw badInput('have lists more than 100000 entries', [{ field: 'have', message: 'too many entries' }]);
    raw.forEach((v, i) => {
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) entries.push([named((v as Record<string, unknown>).name, `entry ${i}`), (v as Record<string, unknown>).sha256, `entry ${i}`]);
      else entries.push([undefined, v, `entry ${i}`]);
    });
  } else if (typeof raw === 'object') {
    const pairs = Object.entries(raw as Record<string, unknown>);
    if (pairs.length > 100_000) throw badInput('have lists more than 100000 entries', [{ field: 'have', message: 'too many entries' }]);
    for (const [name, v] of pairs) entries.push([named(name, 'a name'), v, `"${printable(name, 64)}"`]);
  } else {
    throw badInput('have must be a list of sha-256 or of {name, sha256}, or an object {name: sha256}', [{ field: 'have', message: 'not a list or an object' }]);
  }
  for (const [name, v, at] of entries) {
    const hash = sha(v, at);
    if (name === undefined) hashes.add(hash);
    else byName.set(name, hash);
  }
  return {
    has: (s, name) => {
      if (hashes.has(s)) return true;
      const base = name.slice(name.indexOf('/') + 1);
      const bare = (n: string) => n.replace(/\.[A-Za-z0-9]+$/, '');
      const frame = /frame_0*(\d+)\./.exec(base)?.[1];
      return [name, base, bare(name), bare(base), frame].some((n) => n !== undefined && byName.get(n) === s);
    },
    size: hashes.size + byName.size,
  };
}
