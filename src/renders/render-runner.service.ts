import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { waitForDependency } from '../health/dependency-wait';
import { randomBytes } from 'node:crypto';
import { MontageError, renderFailed, unavailable } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import type { Delivery, StoredDelivery } from '../delivery/delivery.types';
import { EngineName } from '../engines/engine';
import { EngineRegistry } from '../engines/engines.module';
import { contentTypeOf, formatSpec, isStreamable } from '../formats/output-formats';
import { type FlowJob, JobName, type NodeHeartbeat } from '../jobs/job.types';
import { JOB_QUEUE, LIVE_STREAM } from '../jobs/queue.module';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { RateLimitsService } from '../limits/rate-limits.service';
import { MetricsService } from '../metrics/metrics.service';
import { ProjectsService } from '../projects/projects.service';
import { type Collection, DOCUMENT_STORE, type DocumentStore } from '../repositories/document-store/port';
import type { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import type { LiveStreamRepository } from '../repositories/live-stream/live-stream.repository';
import { OUTPUT_STORAGE, type OutputStorage } from '../repositories/output-storage/port';
import { OutputAccessService } from '../retention/output-access.service';
import { isTransient, LiveFollow } from './live-follow';
import { planRenderJobs, type RenderJobs, type RunWatch, segmentProfileOf } from './render-jobs';
import { planReusedSegments, type ReusableSegment } from './segment-reuse';
import { RenderEvents } from './render-events';
import type { LocatedOutput, RenderDoc, RenderStatus } from './render.types';

const ACTIVE: RenderStatus[] = ['queued', 'rendering'];
/** A claim whose job the queue does not have after this long was lost (its API died before enqueueing, or Redis lost it). */
const LOST_AFTER_MS = 5000;

type ClaimedDoc = RenderDoc & { run: string; watch: RunWatch };

/**
 * Runs renders on the farm, one per output across every API process: the first request
 * claims the render in the store (a guarded update: one process wins) and enqueues its jobs
 * with ids derived from the run; every other request, on any process, follows the run's live
 * channel. This process holds no render: killing it stops nothing, and a viewer that comes
 * back through another process reads the same channel from the start.
 */
@Injectable()
export class RenderRunner implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Renders');
  private readonly renders: Collection<RenderDoc>;
  private readonly follows = new Map<string, LiveFollow>();
  private storageId?: string;
  /** Runs this process has claimed (and so enqueued), for tests and metrics. */
  readonly counters = { started: 0 };

  constructor(
    @Inject(DOCUMENT_STORE) store: DocumentStore,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    @Inject(LIVE_STREAM) private readonly live: LiveStreamRepository,
    private readonly engines: EngineRegistry,
    private readonly projects: ProjectsService,
    private readonly limits: RateLimitsService,
    private readonly access: OutputAccessService,
    private readonly metrics: MetricsService,
    private readonly lifecycle: LifecycleService,
    private readonly events: RenderEvents,
  ) {
    this.renders = store.collection<RenderDoc>('renders');
  }

  /** The storage is waited for (said once, with backoff) up to STARTUP_TIMEOUT_MS; nodes check they write to the same one. */
  async onModuleInit(): Promise<void> {
    await waitForDependency(
      `the output storage (${this.storage.description})`,
      async () => {
        await this.storage.init();
        this.storageId = await this.storage.identity();
      },
      { publicName: 'storage', timeoutMs: this.config.startupTimeoutMs, logger: this.logger },
    );
  }

  /** Shutdown: no new claims; viewers streaming through this process get up to `graceMs` to finish. */
  async drain(graceMs: number): Promise<void> {
    this.lifecycle.draining = true;
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && [...this.follows.values()].some((f) => f.viewers > 0 && !f.finished)) await new Promise((r) => setTimeout(r, 50));
  }

  onModuleDestroy(): void {
    this.lifecycle.draining = true;
    for (const follow of this.follows.values()) follow.close();
  }

  /**
   * What to send for an output. `progressive`: a streamable format still rendering is sent
   * piece by piece as the nodes publish it; otherwise the stored file once it exists.
   */
  async deliver(located: LocatedOutput, progressive: boolean, signal?: AbortSignal): Promise<Delivery> {
    if (located.token.upload.length > 0) void this.events.emit({ type: 'output-requested', token: located.token, format: located.format, key: located.key });
    const stored = await this.stored(located);
    if (stored) {
      this.access.noteAccess(located.key, stored.size);
      return stored;
    }
    const doc = await this.claimOrJoin(located, progressive && isStreamable(located.format));
    const follow = this.follow(doc);
    if (progressive && isStreamable(located.format)) {
      const endTimer = this.metrics.firstByteSeconds.startTimer();
      await follow.firstPiece();
      if (follow.pieces.length > 0 && !follow.error) {
        endTimer();
        return { kind: 'live', key: located.key, format: located.format, contentType: contentTypeOf(located.format), body: follow.iterate(signal) };
      }
    }
    await follow.done;
    if (follow.error) throw follow.error;
    const done = await this.stored(located);
    if (!done) throw renderFailed('the render finished but its output is missing');
    return done;
  }

  /**
   * The stored output, rendered first if it is not there (uploads, batch items): follows the
   * run to its end, whichever process started it. Rejects when the render fails or `signal` aborts.
   */
  async awaitOutput(located: LocatedOutput, signal?: AbortSignal): Promise<StoredDelivery> {
    for (let tries = 0; ; tries++) {
      const stored = await this.stored(located);
      if (stored) return stored;
      const follow = this.follow(await this.claimOrJoin(located));
      await new Promise<void>((resolve, reject) => {
        const aborted = () => reject(signal!.reason ?? new Error('stopped waiting for the render'));
        if (signal?.aborted) return aborted();
        signal?.addEventListener('abort', aborted, { once: true });
        void follow.done.then(() => {
          signal?.removeEventListener('abort', aborted);
          resolve();
        });
      });
      if (follow.error && !(LOST.has(follow.error) && tries < 2)) throw follow.error;
      const done = await this.stored(located);
      if (done) return done;
      if (!follow.error) throw renderFailed('the render finished but its output is missing');
      // Lost (the queue lost its run): claimed again, at most twice.
    }
  }

  /** Starts the render of an output if nothing renders it yet (POST with `async`). */
  async start(located: LocatedOutput): Promise<void> {
    if (await this.stored(located)) return;
    this.follow(await this.claimOrJoin(located));
  }

  /** The state of an output, for HEAD and progress: no render is started. */
  async peek(located: LocatedOutput): Promise<{ size?: number; status: RenderStatus }> {
    const stored = await this.storage.stat(located.key, located.format);
    if (stored) return { size: stored.size, status: 'done' };
    const doc = await this.renders.findOne({ _id: located.key });
    return { status: doc?.status ?? 'pending' };
  }

  /**
   * A stored output whose record still says it renders (nobody followed its run to the end:
   * the API that started it stopped): recorded as done, so progress, retention and DELETE see it.
   */
  private async recordStored(key: string, bytes: number, totalFrames: number): Promise<boolean> {
    // framesDone too: a progress poll that finds the output stored may record it before the follower does.
    const done = await this.renders
      .findOneAndUpdate(
        { _id: key, status: { $in: [...ACTIVE, 'failed'] } },
        { $set: { status: 'done', bytes, framesDone: totalFrames, updatedAt: now(), lastAccessAt: now() }, $unset: { error: 1 } },
      )
      .catch(() => null);
    if (done) await this.events.emit({ type: 'render-ended', key, format: done.format, project: done.project, movie: done.movie, run: done.run, status: 'done', bytes });
    return !!done;
  }

  /** Frames done so far by the nodes of an active run (the render record has them once it ends). */
  async liveProgress(doc: RenderDoc): Promise<{ framesDone: number; status: RenderStatus; bytes: number }> {
    if (ACTIVE.includes(doc.status) || doc.status === 'failed') {
      const stat = await this.storage.stat(doc._id, doc.format).catch(() => undefined);
      if (stat && (await this.recordStored(doc._id, stat.size, doc.totalFrames))) return { framesDone: doc.totalFrames, status: 'done', bytes: stat.size };
    }
    if (!doc.watch || !ACTIVE.includes(doc.status)) return { framesDone: doc.framesDone, status: doc.status, bytes: doc.bytes };
    const fields = await this.live.progress(doc.watch.progressKey).catch(() => ({}) as Record<string, number>);
    const framesDone = Object.entries(fields).reduce((sum, [k, v]) => (k.startsWith('f') ? sum + v : sum), 0);
    return { framesDone: Math.min(framesDone, doc.totalFrames), status: framesDone > 0 ? 'rendering' : doc.status, bytes: doc.bytes };
  }

  private async stored(located: LocatedOutput): Promise<StoredDelivery | undefined> {
    const stat = await this.storage.stat(located.key, located.format);
    if (!stat) return undefined;
    return {
      kind: 'stored',
      key: located.key,
      format: located.format,
      size: stat.size,
      contentType: contentTypeOf(located.format),
      open: (range) => this.storage.read(located.key, located.format, range),
    };
  }

  /**
   * The run of this output: the one under way (claimed by any process), or a new one claimed
   * here. The claim is one guarded update on the render's record, so of two processes asking
   * at once exactly one enqueues; the other follows its run.
   */
  private async claimOrJoin(located: LocatedOutput, watched = false): Promise<ClaimedDoc> {
    const { key, format, token } = located;
    for (let tries = 0; tries < 5; tries++) {
      let doc = await this.renders.findOne({ _id: key });
      if (doc && ACTIVE.includes(doc.status) && doc.run && doc.watch) {
        void this.events.emit({ type: 'render-started', token, format, key, run: doc.run });
        return doc as ClaimedDoc;
      }
      if (this.lifecycle.draining) throw unavailable('this API process is shutting down; request the output again in a moment', 2);
      if (!doc) {
        doc = await this.renders
          .findOneAndUpdate(
            { _id: key },
            { $setOnInsert: { project: token.project, movie: located.movie, format, status: 'pending', bytes: 0, framesDone: 0, totalFrames: located.totalFrames, attempts: 0, createdAt: now(), updatedAt: now() } },
            { upsert: true },
          )
          .catch(() => null); // another process inserted it at the same instant: look again
        if (!doc) continue;
        if (ACTIVE.includes(doc.status) && doc.run) continue;
      }
      const run = `${doc.attempts + 1}${randomBytes(3).toString('hex')}`;
      // What this scene's frames took last time sizes its chunks (Blender); unknown: the engine's default.
      const secondsPerFrame = located.timingKey && located.token.parallel > 1 ? await this.queue.timing(located.timingKey).catch(() => undefined) : undefined;
      const jobs = await this.planJobs(located, run, secondsPerFrame, watched);
      const claimed = await this.renders.findOneAndUpdate(
        { _id: key, status: doc.status, updatedAt: doc.updatedAt, attempts: doc.attempts },
        {
          $set: { status: 'queued', run, watch: jobs.watch, framesDone: 0, totalFrames: located.totalFrames, updatedAt: now(), ...(jobs.kind === 'distributed' ? { pieces: piecesOf(jobs) } : {}) },
          $unset: { error: 1 },
          $inc: { attempts: 1 },
        },
      );
      if (!claimed) continue; // another process claimed it first: follow its run
      await this.enqueue(located, claimed as ClaimedDoc, jobs);
      void this.events.emit({ type: 'render-started', token, format, key, run });
      return claimed as ClaimedDoc;
    }
    throw unavailable('this output is being claimed by several requests at once; request it again', 1);
  }

  private async planJobs(located: LocatedOutput, run: string, secondsPerFrame: number | undefined, watched: boolean): Promise<RenderJobs> {
    const { token } = located;
    const engine = this.engines.get(located.engine ?? EngineName.FfmpegComposite);
    const reuse = await this.reusableSegments(located, watched);
    return planRenderJobs({
      target: {
        engine: engine.name,
        ...(located.device ? { device: located.device } : {}),
        routingKey: token.routingkey,
        renderKey: located.key,
        run,
        project: token.project,
        movie: located.movie,
        params: token.params,
        templateVersion: located.templateVersion,
        storageId: this.storageId,
      },
      format: located.format,
      profile: located.profile,
      frame: located.frame,
      routingKey: token.routingkey,
      parallel: token.parallel,
      totalFrames: located.totalFrames,
      fps: located.fps,
      ranges: reuse ? reuse.map((s) => s.range) : token.parallel > 1 ? engine.planRanges(located.totalFrames, located.fps, token.parallel, secondsPerFrame) : [],
      ...(reuse ? { reuse: reuse.map(({ key, stored }) => ({ key, stored })) } : {}),
    });
  }

  /**
   * A distributed render of the compositor: its segments cut where the params read change and
   * keyed by what they draw, each marked stored when storage has it (joined from there, not
   * rendered again). Undefined where segments are not reused.
   */
  private async reusableSegments(located: LocatedOutput, watched: boolean): Promise<Array<ReusableSegment & { stored: boolean }> | undefined> {
    const { token, resolved } = located;
    if (!this.config.segmentReuse || !resolved || (located.engine ?? EngineName.FfmpegComposite) !== EngineName.FfmpegComposite) return undefined;
    // Parallel 1 with a viewer waiting stays one job (its first byte comes soonest); unwatched
    // (batches, uploads, async) it is cut too, so a batch renders only what differs per item.
    if (!formatSpec(located.format).distributable || (token.parallel <= 1 && watched)) return undefined;
    const segments = planReusedSegments(resolved, {
      project: token.project,
      movie: located.movie,
      templateVersion: located.templateVersion,
      format: located.format,
      parallel: token.parallel,
      segmentsPerLane: this.config.segmentsPerLane,
      watched,
    });
    if (segments.length < 2) return undefined;
    const ext = segmentProfileOf(located.format).container ?? located.format;
    // Not known to be stored (storage away) is rendered: a slower render, never a wrong one.
    return Promise.all(segments.map(async (s) => ({ ...s, stored: !!(await this.storage.stat(s.key, ext).catch(() => undefined)) })));
  }

  /** The claimed run's jobs go to the queue; if they cannot, the claim is given back. */
  private async enqueue(located: LocatedOutput, doc: ClaimedDoc, jobs: RenderJobs): Promise<void> {
    const { key, token } = located;
    let release: (() => void) | undefined;
    try {
      const project = await this.projects.get(token.project);
      release = await this.limits.admitRender(project, token.keyId, key, located.pixelSeconds);
      this.metrics.seenQueue(token.routingkey, jobs.kind === 'output' ? jobs.job.queue : jobs.lanes[0].queue);
      if (jobs.kind === 'output') {
        await this.queue.enqueue(jobs.job.queue, JobName.RenderOutput, jobs.job.payload, jobs.job.jobId);
      } else {
        // The assembly first: lanes without it would render for nobody.
        await this.queue.enqueue(jobs.assembly.queue, JobName.AssembleRender, jobs.assembly.payload, jobs.assembly.jobId);
        await this.queue.addFlows(jobs.lanes);
        // Segments reused from storage are done already: progress counts their frames.
        const { ranges, segments, progressKey } = jobs.assembly.payload;
        await Promise.all(segments.map((s, i) => (s.stored ? this.live.setProgress(progressKey, `f${i}`, ranges[i].to - ranges[i].from).catch(() => undefined) : undefined)));
      }
    } catch (err) {
      release?.();
      // Over a limit: nothing happened. Anything else (Redis away): the record says why.
      const refused = err instanceof MontageError && err.kind === 'too_many';
      await this.renders
        .findOneAndUpdate(
          { _id: key, run: doc.run },
          { $set: { status: refused ? 'pending' : 'failed', updatedAt: now(), ...(refused ? {} : { error: (err as Error).message }) }, $unset: { run: 1, watch: 1 } },
        )
        .catch(() => undefined);
      throw err;
    }
    this.counters.started++;
    this.metrics.rendersRunning.inc();
    const endTimer = this.metrics.renderSeconds.startTimer({ routing_key: token.routingkey, format: located.format });
    const engine = located.engine ?? EngineName.FfmpegComposite;
    const device = located.device ?? 'CPU';
    const takes = (n: NodeHeartbeat) =>
      n.routingKeys.includes(token.routingkey) && (n.engines ?? [EngineName.FfmpegComposite]).includes(engine) && (device === 'CPU' || (n.blender?.devices ?? []).includes(device));
    if (!(await this.queue.liveNodes().catch(() => [])).some(takes)) {
      const what = engine === EngineName.FfmpegComposite ? '' : ` with ${engine}${device === 'CPU' ? '' : ` on ${device}`}`;
      this.logger.warn(`no live render node takes routing key "${token.routingkey}"${what}: render ${key} stays queued until one starts`);
    }
    // The claimer follows the run to its end even with no viewer: the record, the limits and the metrics.
    const follow = this.follow(doc);
    void follow.done.then(() => {
      release?.();
      this.metrics.rendersRunning.dec();
      if (follow.end) {
        endTimer();
        this.metrics.rendersFinished.inc({ status: 'done', format: located.format });
      }
      else if (!this.lifecycle.draining) this.metrics.rendersFinished.inc({ status: 'failed', format: located.format });
    });
  }

  /** This process's follow of a run, shared by its viewers; it records the run's end in the store. */
  private follow(doc: ClaimedDoc): LiveFollow {
    const existing = this.follows.get(doc.watch.channel);
    if (existing && !existing.finished) return existing;
    const { watch, run, _id: key } = doc;
    let missing = 0;
    const follow = new LiveFollow({
      channel: watch.channel,
      reader: this.live.reader(),
      outageMs: this.config.queueOutageTimeoutMs,
      checkRun: async () => {
        const job = await this.queue.jobState(watch.queue, watch.jobId);
        if (job?.state === 'failed') return renderFailed(job.failedReason || 'the render failed');
        // Done, yet its end never came on the channel (it expired before this reader got there).
        if (job?.state === 'completed') return ++missing >= 2 ? lost('this render ended while its live stream was gone; request the output again') : undefined;
        if (job) return (missing = 0), undefined;
        // No job: the claimer died before enqueueing, or Redis came back without its data.
        const current = await this.renders.findOne({ _id: key });
        if (current?.run !== run) return lost('this render was started again; request the output again');
        if (++missing >= 2 && Date.now() - Date.parse(current.updatedAt) > LOST_AFTER_MS) {
          return lost('the job queue lost this render (Redis restarted without its data, or the API that started it died); request the output again');
        }
        return undefined;
      },
    });
    this.follows.set(watch.channel, follow);
    void follow.done.then(async () => {
      setTimeout(() => this.follows.get(watch.channel) === follow && this.follows.delete(watch.channel), 30_000).unref();
      if (follow.end) {
        const bytes = follow.end.bytes;
        const recorded = await this.renders
          .findOneAndUpdate(
            { _id: key, run, status: { $ne: 'done' } },
            { $set: { status: 'done', bytes, framesDone: doc.totalFrames, updatedAt: now(), lastAccessAt: now() } },
          )
          .catch((err: Error) => (this.logger.warn(`render ${key} done but not recorded: ${err.message}`), null));
        // Said by the process that recorded it; a second follower finds it done already.
        if (recorded) await this.events.emit({ type: 'render-ended', key, format: doc.format, project: doc.project, movie: doc.movie, run, status: 'done', bytes });
      } else if (follow.error && !isTransient(follow.error) && !this.lifecycle.draining) {
        const failure = follow.error;
        const wasLost = LOST.has(failure);
        const stored = wasLost ? await this.storage.stat(key, doc.format).catch(() => undefined) : undefined;
        // Lost (not failed): the next request renders it again, or serves it if its node stored it.
        const state = stored ? { status: 'done', bytes: stored.size, framesDone: doc.totalFrames } : { status: wasLost ? 'pending' : 'failed', error: failure.message };
        const recorded = await this.renders.findOneAndUpdate({ _id: key, run, status: { $in: ACTIVE } }, { $set: { ...state, updatedAt: now() } }).catch(() => null);
        if (recorded && (stored || !wasLost)) {
          await this.events.emit({ type: 'render-ended', key, format: doc.format, project: doc.project, movie: doc.movie, run, status: stored ? 'done' : 'failed', ...(stored ? { bytes: stored.size } : { error: failure.message }) });
        }
        if (!wasLost) this.logger.warn(`render ${key} (${doc.project}/${doc.movie}.${doc.format}) failed: ${failure.message}`);
      }
    });
    return follow;
  }
}

/** Runs the queue no longer has: not failed, so the next request renders them again. */
const LOST = new WeakSet<Error>();
function lost(message: string): MontageError {
  const err = unavailable(message, 1);
  LOST.add(err);
  return err;
}

function now(): string {
  return new Date().toISOString();
}

/** The stored names (`<key>.<ext>`) of a distributed run's reusable segments. */
function piecesOf(jobs: Extract<RenderJobs, { kind: 'distributed' }>): string[] {
  const names: string[] = [];
  const visit = (job: FlowJob) => {
    const p = job.payload as { segmentKey?: string; profile: { container?: string; format: string } };
    if (p.segmentKey) names.push(`${p.segmentKey}.${p.profile.container ?? p.profile.format}`);
    job.children?.forEach(visit);
  };
  jobs.lanes.forEach(visit);
  for (const s of jobs.assembly.payload.segments) if (s.stored) names.push(`${s.stored.key}.${s.stored.ext}`);
  return names.sort();
}
