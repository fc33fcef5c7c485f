import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { createHmac, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { badInput, MontageError, notFound, tooLarge, unavailable } from '../common/errors';
import { CONTENT_TYPES, DEFAULTS, isOutputFormat, isStillFormat, type OutputFormat, type OutputProfile } from '../compiler/output-profiles';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { waitForDependency } from '../health/dependency-wait';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { RateLimitsService } from '../limits/rate-limits.service';
import { effectiveLimits, type ProjectDoc } from '../projects/project.types';
import { hashKey, ProjectsService } from '../projects/projects.service';
import { OutputAccessService } from '../retention/output-access.service';
import { RenderService } from '../render/render.service';
import { LiveFilesRepository } from '../repositories/live-files.repository';
import { OUTPUT_STORAGE, type OutputStorage } from '../repositories/output-storage/port';
import { type Collection, DOCUMENT_STORE, type DocumentStore, DuplicateKeyError } from '../repositories/document-store/port';
import { LiveRender } from './live-render';
import { LiveRenders } from './live-renders';
import { TokenRemoval } from './token-removal';
import { MetricsService } from '../metrics/metrics.service';
import { JOB_QUEUE } from '../jobs/queue.module';
import { ASSEMBLY_QUEUE, type JobHandlers, JobName, QueueKind, queueName, type RenderSegmentResult } from '../jobs/job.types';
import { checkAssembly, planRenderFlow } from './render-flow';
import { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { Fmp4Joiner } from '../streaming/fmp4-joiner';
import { IvfJoiner, type SegmentJoiner } from '../streaming/ivf-joiner';
import { distributedPlanOptions, planSegments } from '../streaming/segment-planner';
import { canonicalJson } from '../common/canonical-json';
import { renderKey } from './render-key';
import { coveredExtensions, movieFor, parseRenderRequest } from './render-request';
import type { RenderDoc, RenderStatus, TokenDoc } from './render.types';

/** A token's output for one extension, located and identified, not yet rendered. */
export interface LocatedOutput {
  token: TokenDoc;
  templateVersion: string;
  format: OutputFormat;
  movie: string;
  profile: OutputProfile;
  frame?: number;
  key: string;
  fps: number;
  totalFrames: number;
  /** Width × height × seconds of this output: what it costs of a daily quota. */
  pixelSeconds: number;
}

export type Delivery =
  | { kind: 'stored'; key: string; format: OutputFormat; size: number; contentType: string; open: (range?: { start: number; end: number }) => Promise<Readable> }
  | { kind: 'live'; key: string; format: OutputFormat; contentType: string; body: AsyncGenerator<Buffer> };

export type StoredDelivery = Extract<Delivery, { kind: 'stored' }>;

export interface CreatedToken {
  token: string;
  urls: Partial<Record<OutputFormat, string>>;
  uploads: Array<Record<string, unknown>>;
  totalFrames: number;
}

const TOKEN = /^[A-Za-z0-9_-]{22,64}$/;
const STREAMABLE = new Set<OutputFormat>(['mp4', 'webm']);

/**
 * Tokens, content-addressed renders and their delivery. One render per content: concurrent
 * requests for one output share one render (single flight), and every token that resolves to
 * the same template version, movie, params and profile shares one stored output.
 */
@Injectable()
export class RendersService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('Renders');
  private readonly tokens: Collection<TokenDoc>;
  private readonly renders: Collection<RenderDoc>;

  constructor(
    @Inject(DOCUMENT_STORE) store: DocumentStore,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    private readonly renderer: RenderService,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
    private readonly liveFiles: LiveFilesRepository,
    private readonly projects: ProjectsService,
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    private readonly metrics: MetricsService,
    private readonly live: LiveRenders,
    private readonly lifecycle: LifecycleService,
    private readonly limits: RateLimitsService,
    private readonly access: OutputAccessService,
    private readonly removal: TokenRemoval,
  ) {
    this.tokens = store.collection<TokenDoc>('tokens');
    this.renders = store.collection<RenderDoc>('renders');
  }

  async onModuleInit(): Promise<void> {
    // The parent job of every distributed render is the API's: it runs once all segments are done.
    const assembly: JobHandlers<QueueKind.Assembly> = {
      [JobName.AssembleRender]: async (payload, ctx) => checkAssembly(payload, (await ctx.childrenValues()) as RenderSegmentResult[]),
    };
    this.queue.startWorkers(QueueKind.Assembly, [ASSEMBLY_QUEUE], assembly, { concurrency: 16 });
    // A bucket that does not answer yet is waited for (said once, with backoff), up to STARTUP_TIMEOUT_MS.
    await waitForDependency(
      `the output storage (${this.storage.description})`,
      async () => {
        await this.storage.init();
        this.storageId = await this.storage.identity();
      },
      { publicName: 'storage', timeoutMs: this.config.startupTimeoutMs, logger: this.logger },
    );
    await this.liveFiles.init();
    await this.tokens.ensureIndex({ renderKeys: 1 });
    // Renders cut off by a restart are re-run on the next request, never served half-written.
    const interrupted = await this.renders.updateMany(
      { status: { $in: ['rendering', 'queued'] } },
      { $set: { status: 'pending', error: 'interrupted by a restart; rendered again on the next request', updatedAt: now() } },
    );
    if (interrupted > 0) this.logger.warn(`${interrupted} render(s) were interrupted by a restart; they run again on the next request`);
  }

  /**
   * Shutdown, step one: no render starts any more (503); those running get `graceMs` to finish
   * (their viewers keep streaming), then are cut off and marked to run again on the next request.
   */
  async drain(graceMs: number): Promise<void> {
    this.lifecycle.draining = true;
    const running = this.live.all();
    if (running.length === 0) return;
    this.logger.log(`waiting up to ${graceMs} ms for ${running.length} render(s) in progress`);
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      Promise.all(running.map((live) => live.done)).then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
    ]);
    clearTimeout(timer);
    if (!finished) await this.cutOff(150);
  }

  /** Renders still running are aborted; they are marked to run again on the next request. */
  private async cutOff(waitMs: number): Promise<void> {
    this.stopping = true;
    const running = this.live.all();
    if (running.length === 0) return;
    this.logger.warn(`${running.length} render(s) cut off by the shutdown; they run again on the next request`);
    for (const live of running) live.abort.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(running.map((live) => live.done)), new Promise((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }

  async onModuleDestroy(): Promise<void> {
    this.lifecycle.draining = true;
    await this.cutOff(150);
  }

  private stopping = false;
  private storageId?: string;

  /** POST /v2/render and /v2/token: validate everything now, store the token, answer with URLs. */
  async createToken(projectId: string, apiKey: string | undefined, rawBody: unknown, baseUrl: string, allowAsync: boolean): Promise<CreatedToken> {
    const project = await this.projects.authenticate(projectId, apiKey);
    const keyId = keyIdOf(apiKey!);
    await this.limits.countRequest(project, keyId);
    const body = parseRenderRequest(rawBody);
    const extensions = coveredExtensions(body.movie);
    const movies = [...new Set(extensions.map((ext) => movieFor(body.movie, ext)!))];
    let totalFrames = 0;
    for (const movie of movies) {
      const resolved = await this.checkedMovie(project, movie, body.params, movies.length > 1);
      if (movie === movieFor(body.movie, 'mp4') || totalFrames === 0) totalFrames = resolved.totalFrames;
    }
    const ttlDays = effectiveLimits(project, this.config).tokenTtlDays;
    const ttlSec = body.ttl ?? (ttlDays ? ttlDays * 24 * 3600 : 0);
    const token: TokenDoc = {
      _id: randomBytes(16).toString('base64url'), // 128 random bits: the token is a capability
      project: projectId,
      movie: body.movie,
      params: body.params,
      parallel: body.parallel,
      routingkey: body.routingkey,
      upload: body.upload,
      createdAt: now(),
      renderKeys: [],
      renders: {},
      keyId,
      ...(ttlSec ? { expiresAt: new Date(Date.now() + ttlSec * 1000).toISOString() } : {}),
      ...(body.pin ? { pin: true } : {}),
    };
    await this.tokens.insertOne(token);
    if (allowAsync && body.async) {
      const first = extensions.includes('mp4') ? 'mp4' : extensions[0];
      void this.locate(token._id, first, {})
        .then((located) => this.ensureStarted(located))
        .catch((err) => this.logger.error(`async render of ${token._id}.${first} failed to start: ${(err as Error).message}`));
    }
    return {
      token: token._id,
      urls: Object.fromEntries(extensions.map((ext) => [ext, `${baseUrl}/v2/get/${token._id}.${ext}`])),
      uploads: body.upload.map((u) => ({ ...u, status: 'pending' })),
      totalFrames,
      ...(token.expiresAt ? { expiresAt: token.expiresAt } : {}),
      ...(token.pin ? { pin: true } : {}),
    };
  }

  /** The token and the output an extension (and ?frame=, ?q=) asks for. 404 for unknown tokens and uncovered extensions. */
  async locate(tokenId: string, ext: string, requestQuery: Record<string, unknown>): Promise<LocatedOutput> {
    let query = requestQuery;
    if (!isOutputFormat(ext)) {
      throw badInput(`unsupported extension ".${ext.slice(0, 16)}"; use mp4, webm, gif, png, jpg or webp`, [{ field: 'ext', message: 'unsupported' }]);
    }
    const token = await this.findToken(tokenId);
    const movie = movieFor(token.movie, ext);
    if (!movie) {
      const covered = coveredExtensions(token.movie);
      throw notFound(`this token has no .${ext} output; it has ${covered.map((e) => `.${e}`).join(', ')}`, [{ field: 'ext', message: `not in the movie map` }]);
    }
    const { template, params, movie: resolved } = await this.resolveFor(token.project, movie, token.params, false);
    const profile: OutputProfile = { format: ext };
    let frame: number | undefined;
    if (token.pinned) query = token.pinned; // a signed URL renders exactly what was signed
    if (isStillFormat(ext)) {
      frame = query.frame === undefined ? resolved.posterFrame : intParam(query.frame, 'frame', 0, resolved.totalFrames - 1);
      if (ext !== 'png') profile.quality = query.q === undefined ? DEFAULTS.still.quality : intParam(query.q, 'q', 1, 100);
    } else if (STREAMABLE.has(ext)) {
      profile.streamable = true;
    }
    const key = renderKey({ project: token.project, movie, templateVersion: template.version, params, profile: { ...profile, frame } });
    if (!token.renderKeys.includes(key)) {
      // Every ?frame=&q= is another output: a token in a public page must not be a render-anything key.
      if (token.renderKeys.length >= this.config.maxOutputsPerToken) {
        throw new MontageError('too_many', `this token already has ${token.renderKeys.length} different outputs; the limit is ${this.config.maxOutputsPerToken}`);
      }
      const updated = await this.tokens.findOneAndUpdate({ _id: token._id }, { $addToSet: { renderKeys: key }, $set: { [`renders.${ext}`]: key } });
      if (updated) Object.assign(token, { renderKeys: updated.renderKeys, renders: updated.renders });
    } else if (token.renders[ext] !== key) {
      await this.tokens.findOneAndUpdate({ _id: token._id }, { $set: { [`renders.${ext}`]: key } });
      token.renders[ext] = key;
    }
    const frames = isStillFormat(ext) ? 1 : resolved.totalFrames;
    const pixelSeconds = resolved.width * resolved.height * (frames / resolved.fps);
    return { token, templateVersion: template.version, format: ext, movie, profile, frame, key, fps: resolved.fps, totalFrames: frames, pixelSeconds };
  }

  /**
   * What to send for an output. `progressive`: a streamable format still rendering is sent as
   * it is written; otherwise the stored file once it exists (waiting for the render if need be).
   */
  async deliver(located: LocatedOutput, progressive: boolean, signal?: AbortSignal): Promise<Delivery> {
    const stored = await this.stored(located);
    if (stored) {
      this.access.noteAccess(located.key);
      return stored;
    }
    const live = this.ensureStarted(located);
    if (progressive && live.livePath) {
      // Answer as soon as there are bytes to send; a failure before that gets a proper error status.
      const endTimer = this.metrics.firstByteSeconds.startTimer();
      while (!live.finished && !(await this.liveFiles.hasBytes(live.livePath))) await live.changed(20);
      if (!live.finished) {
        endTimer();
        return { kind: 'live', key: located.key, format: located.format, contentType: CONTENT_TYPES[located.format], body: this.followLive(live, signal) };
      }
    }
    await live.done;
    if (live.error) throw live.error;
    const done = await this.stored(located);
    if (!done) throw new MontageError('render_failed', 'the render finished but its output is missing');
    return done;
  }

  /** The current state of a stored output, for HEAD: no render is started. */
  async peek(located: LocatedOutput): Promise<{ size?: number; status: RenderStatus }> {
    const stored = await this.stored(located);
    if (stored) return { size: stored.size, status: 'done' };
    const doc = await this.renders.findOne({ _id: located.key });
    return { status: this.live.has(located.key) ? 'rendering' : (doc?.status ?? 'pending') };
  }

  async progress(tokenId: string) {
    const token = await this.findToken(tokenId);
    const formats: Record<string, { status: RenderStatus; bytes: number; framesDone: number; totalFrames: number; error?: string }> = {};
    let latest: RenderDoc | undefined;
    for (const [ext, key] of Object.entries(token.renders)) {
      const doc = await this.renders.findOne({ _id: key! });
      if (!doc) {
        formats[ext] = { status: 'pending', bytes: 0, framesDone: 0, totalFrames: 0 };
        continue;
      }
      formats[ext] = { status: doc.status, bytes: doc.bytes, framesDone: doc.framesDone, totalFrames: doc.totalFrames, ...(doc.error && doc.status === 'failed' ? { error: doc.error } : {}) };
      if (!latest || doc.updatedAt > latest.updatedAt) latest = doc;
    }
    const statuses = new Set(Object.values(formats).map((f) => f.status));
    // Work in progress wins, then a failure, then done; nothing asked for yet is pending.
    const status = (['rendering', 'queued', 'failed', 'done'] as RenderStatus[]).find((s) => statuses.has(s)) ?? 'pending';
    const error = status === 'failed' ? Object.values(formats).find((f) => f.error)?.error : undefined;
    return {
      token: token._id,
      status,
      framesDone: latest?.framesDone ?? 0,
      totalFrames: latest?.totalFrames ?? 0,
      formats,
      ...(error ? { error } : {}),
    };
  }

  /** DELETE /v2/token/:token: the token, and every output no other token shares. */
  async deleteToken(tokenId: string, apiKey: string | undefined): Promise<{ deleted: string; outputsRemoved: number }> {
    const token = await this.findToken(tokenId, { evenExpired: true });
    const project = await this.projects.authenticate(token.project, apiKey);
    await this.limits.countRequest(project, keyIdOf(apiKey!));
    const outputsRemoved = await this.removal.removeToken(token);
    return { deleted: token._id, outputsRemoved };
  }

  /**
   * GET /v1/render/<project>/<movie>.<ext>?…: a signed URL stands for its own token,
   * derived from what it asks for, so the same URL is always the same token.
   */
  async tokenForSignedUrl(project: ProjectDoc, movie: string, ext: string, params: Record<string, string>, pinned: { frame?: number; q?: number }): Promise<string> {
    if (!isOutputFormat(ext)) {
      throw badInput(`unsupported extension ".${ext.slice(0, 16)}"; use mp4, webm, gif, png, jpg or webp`, [{ field: 'ext', message: 'unsupported' }]);
    }
    await this.checkedMovie(project, movie, params, false);
    // Keyed with the project's secret and bound to the one output signed: the id cannot be
    // guessed, and it opens nothing else (another extension, frame or quality).
    const id = createHmac('sha256', project.signingSecret).update(canonicalJson({ movie, ext, params, pinned })).digest('base64url').slice(0, 32);
    if (!(await this.tokens.findOne({ _id: id }))) {
      try {
        await this.tokens.insertOne({
          _id: id,
          project: project._id,
          movie: { [ext]: movie },
          pinned,
          params,
          parallel: 1,
          routingkey: 'default',
          upload: [],
          createdAt: now(),
          renderKeys: [],
          renders: {},
        });
      } catch (err) {
        if (!(err instanceof DuplicateKeyError)) throw err; // another request made it first: same token
      }
    }
    return id;
  }

  /** Renders this process has started so far, for tests and metrics. */
  readonly counters = { started: 0 };

  /** The movie resolved with these params, within the project's limits. */
  private async checkedMovie(project: ProjectDoc, movie: string, params: Record<string, unknown>, prefix: boolean) {
    const paramsBytes = Buffer.byteLength(JSON.stringify(params));
    if (project.limits.maxParamsBytes && paramsBytes > project.limits.maxParamsBytes) {
      throw tooLarge(`params are ${paramsBytes} bytes; this project allows ${project.limits.maxParamsBytes}`, [{ field: 'params', message: 'too large' }]);
    }
    const { movie: resolved } = await this.resolveFor(project._id, movie, params, prefix);
    const pixelSeconds = resolved.width * resolved.height * (resolved.totalFrames / resolved.fps);
    if (project.limits.maxPixelSeconds && pixelSeconds > project.limits.maxPixelSeconds) {
      throw tooLarge(
        `movie "${movie}" is ${resolved.width}×${resolved.height} for ${(resolved.totalFrames / resolved.fps).toFixed(1)} s; this project allows ${project.limits.maxPixelSeconds} pixel-seconds`,
        [{ field: 'movie', message: 'duration × resolution over the project limit' }],
      );
    }
    return resolved;
  }

  private async findToken(tokenId: string, options: { evenExpired?: boolean } = {}): Promise<TokenDoc> {
    const token = TOKEN.test(tokenId) ? await this.tokens.findOne({ _id: tokenId }) : null;
    if (!token) throw notFound('unknown token', [{ field: 'token', message: 'unknown or deleted token' }]);
    if (!options.evenExpired && token.expiresAt && token.expiresAt < now()) {
      throw new MontageError('gone', `this token expired at ${token.expiresAt}`, [{ field: 'token', message: 'expired' }]);
    }
    return token;
  }

  private async resolveFor(project: string, movie: string, params: Record<string, unknown>, prefix: boolean) {
    try {
      return await this.renderer.resolve(project, movie, params);
    } catch (err) {
      if (prefix && err instanceof MontageError) {
        throw new MontageError(err.kind, `${movie}: ${err.message}`, err.details.map((d) => ({ ...d, field: `${movie}.${d.field}` })));
      }
      throw err;
    }
  }

  private async stored(located: LocatedOutput): Promise<StoredDelivery | undefined> {
    const stat = await this.storage.stat(located.key, located.format);
    if (!stat) return undefined;
    return {
      kind: 'stored',
      key: located.key,
      format: located.format,
      size: stat.size,
      contentType: CONTENT_TYPES[located.format],
      open: (range) => this.storage.read(located.key, located.format, range),
    };
  }

  /** Single flight: the render of a key in this process, started if there is none. */
  private ensureStarted(located: LocatedOutput): LiveRender {
    const existing = this.live.get(located.key);
    if (existing) return existing;
    if (this.lifecycle.draining) throw unavailable('this API process is shutting down; request the output again in a moment', 2);
    const live = new LiveRender(located.key, STREAMABLE.has(located.format) ? this.liveFiles.livePath(located.key, located.format) : undefined);
    this.live.add(live);
    if (live.livePath) this.live.keptFiles.add(live.livePath);
    this.counters.started++;
    this.metrics.rendersRunning.inc();
    void this.run(located, live).then(
      () => (live.finish(), this.metrics.rendersFinished.inc({ status: 'done', format: located.format })),
      (err: Error) => (live.finish(err), this.stopping || this.metrics.rendersFinished.inc({ status: 'failed', format: located.format })),
    ).finally(() => {
      this.metrics.rendersRunning.dec();
      this.live.remove(live);
      // Followers opened the file already; give slow ones time, the sweeper takes what a crash leaves.
      const livePath = live.livePath;
      if (livePath) {
        setTimeout(() => {
          this.live.keptFiles.delete(livePath);
          void this.liveFiles.remove(livePath);
        }, 60_000).unref();
      }
    });
    return live;
  }

  private async run(located: LocatedOutput, live: LiveRender): Promise<void> {
    const { key, format, token } = located;
    // Stored meanwhile (an async start, or a render that finished an instant ago): nothing to do.
    if (await this.storage.stat(key, format)) return;
    // The key's running renders and daily pixel-seconds: 429 to every viewer of this render when over.
    const project = await this.projects.get(token.project);
    const admitted = await this.limits.admitRender(project, token.keyId, key, located.pixelSeconds);
    try {
      const distributed = (format === 'mp4' || format === 'webm') && token.parallel > 1;
      const release = distributed ? () => undefined : await this.renderSlot(key, live);
      try {
        await this.runClaimed(located, live, distributed);
      } finally {
        release();
      }
    } finally {
      admitted();
    }
  }

  /**
   * At most `maxConcurrentRenders` renders run in this process; the others wait as `queued`.
   * Resolves with the function that frees the slot.
   */
  private async renderSlot(key: string, live: LiveRender): Promise<() => void> {
    if (this.activeRenders >= this.config.maxConcurrentRenders) {
      await this.renders.findOneAndUpdate({ _id: key }, { $set: { status: 'queued', updatedAt: now() } });
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          live.abort.signal.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          this.slotWaiters.splice(this.slotWaiters.indexOf(wake), 1);
          reject(new MontageError('render_failed', 'render cancelled'));
        };
        live.abort.signal.addEventListener('abort', onAbort, { once: true });
        this.slotWaiters.push(wake);
      });
    }
    this.activeRenders++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.activeRenders--;
      this.slotWaiters.shift()?.();
    };
  }

  private activeRenders = 0;
  private readonly slotWaiters: Array<() => void> = [];

  private async runClaimed(located: LocatedOutput, live: LiveRender, distributed: boolean): Promise<void> {
    const { key, format, token } = located;
    const started = await this.renders.findOneAndUpdate(
      { _id: key },
      {
        $set: { status: 'rendering', framesDone: 0, totalFrames: located.totalFrames, updatedAt: now() },
        $unset: { error: 1 },
        $inc: { attempts: 1 },
        $setOnInsert: { project: token.project, movie: located.movie, format, bytes: 0, createdAt: now() },
      },
      { upsert: true },
    );
    let lastWrite = 0;
    const request = {
      project: token.project,
      movie: located.movie,
      params: token.params,
      profile: located.profile,
      frame: located.frame,
      templateVersion: located.templateVersion,
    };
    try {
      const onProgress = (p: { framesDone: number; totalFrames: number }) => {
        live.notify();
        const t = Date.now();
        if (t - lastWrite < 250) return; // progress is for people: a few writes a second is plenty
        lastWrite = t;
        if (this.stopping) return;
        this.renders
          .findOneAndUpdate({ _id: key, status: 'rendering' }, { $set: { framesDone: p.framesDone, totalFrames: p.totalFrames, updatedAt: now() } })
          .catch((err: Error) => this.logger.warn(`progress of ${key} not saved: ${err.message}`));
      };
      let bytes: number;
      if (live.livePath && distributed) {
        await this.renderDistributed(located, live, request, started?.attempts ?? 1);
        live.markWritten(); // viewers get their last bytes now, not after the remux below
        const livePath = live.livePath;
        bytes = await this.storage.storeOutput(key, format, (file) => this.renderer.remux(livePath, file, format as 'mp4' | 'webm'));
      } else if (live.livePath) {
        await this.renderer.render(request, live.livePath, onProgress, { inPlace: true, signal: live.abort.signal });
        live.markWritten();
        const livePath = live.livePath;
        bytes = await this.storage.storeOutput(key, format, (file) => this.renderer.remux(livePath, file, format as 'mp4' | 'webm'));
      } else {
        bytes = await this.storage.storeOutput(key, format, async (file) => (await this.renderer.render(request, file, onProgress, { signal: live.abort.signal })).bytes);
      }
      await this.renders.findOneAndUpdate(
        { _id: key },
        { $set: { status: 'done', bytes, framesDone: located.totalFrames, totalFrames: located.totalFrames, updatedAt: now(), lastAccessAt: now() } },
      );
    } catch (err) {
      if (this.stopping) {
        // Interrupted, not failed: the next request renders it again.
        await this.renders
          .findOneAndUpdate({ _id: key, status: { $in: ['rendering', 'queued'] } }, { $set: { status: 'pending', error: 'interrupted by a shutdown; rendered again on the next request', updatedAt: now() } })
          .catch(() => undefined);
        throw err;
      }
      const failure = publicFailure(err);
      this.logger.warn(`render ${key} (${token.project}/${located.movie}.${format}) failed: ${failure.message}${failure.internal ? ` — ${failure.internal}` : ''}`);
      await this.renders.findOneAndUpdate({ _id: key }, { $set: { status: 'failed', error: failure.message, updatedAt: now() } }).catch(() => undefined);
      throw failure;
    }
  }

  /**
   * `parallel` > 1: GOP-aligned segments rendered by render nodes (at most `parallel` at
   * once, through the token's routing key), joined in order as they arrive (fragmented MP4
   * for mp4, IVF for webm), and muxed with the sound, mixed once for the whole movie by the
   * same ffmpeg process that assembles them.
   */
  private async renderDistributed(
    located: LocatedOutput,
    live: LiveRender,
    request: { project: string; movie: string; params: Record<string, unknown> },
    attempt: number,
  ): Promise<void> {
    const { key, token } = located;
    const format = located.format as 'mp4' | 'webm';
    // The segments go out first; the API's own plan, of the sound it mixes, is made meanwhile.
    const ranges = planSegments(located.totalFrames, distributedPlanOptions(located.fps, token.parallel, this.config.segmentsPerLane));
    const planning = this.renderer.planSound(request);
    planning.catch(() => undefined); // awaited below
    const profile: OutputProfile =
      format === 'mp4' ? { format, streamable: true, videoOnly: true } : { format, streamable: true, videoOnly: true, container: 'ivf' };
    // A run of its own: BullMQ keeps finished jobs an hour, and the render record (with its
    // attempt count) can be deleted and made again within that time.
    const run = `${attempt}${randomBytes(3).toString('hex')}`;
    const segments = ranges.map((r) => `${key}-a${run}-${r.from}-${r.to}.${format === 'mp4' ? 'mp4' : 'ivf'}`);
    const done = ranges.map(() => 0);
    let lastSaved = 0;
    const reportProgress = () => {
      live.notify();
      const framesDone = done.reduce((a, b) => a + b, 0);
      if (Date.now() - lastSaved < 250) return;
      lastSaved = Date.now();
      this.renders
        .findOneAndUpdate({ _id: key, status: { $in: ['queued', 'rendering'] } }, { $set: { status: 'rendering', framesDone, updatedAt: now() } })
        .catch(() => undefined);
    };
    this.metrics.seenRoutingKey(token.routingkey);
    const flow = planRenderFlow({
      renderKey: key,
      run,
      routingKey: token.routingkey,
      parallel: token.parallel,
      totalFrames: located.totalFrames,
      ranges,
      segment: (i) => ({
        renderKey: key,
        project: token.project,
        movie: located.movie,
        params: token.params,
        templateVersion: located.templateVersion,
        profile,
        range: ranges[i],
        segment: segments[i],
        storageId: this.storageId,
      }),
    });
    await this.renders.findOneAndUpdate({ _id: key }, { $set: { status: 'queued', flow: flow.parentId, updatedAt: now() } });
    await this.queue.addFlow(flow.root);
    // Waiters end with the render (done, failed, or cut off by a shutdown): none is left behind.
    const stopWaiting = new AbortController();
    const onAbort = () => stopWaiting.abort();
    live.abort.signal.addEventListener('abort', onAbort, { once: true });
    const lanes = Math.min(token.parallel, ranges.length);
    const timers = ranges.map((_, i) => (i < lanes ? this.metrics.segmentSeconds.startTimer({ routing_key: token.routingkey }) : undefined));
    const outageTimeoutMs = this.config.queueOutageTimeoutMs;
    const results = ranges.map((range, i) =>
      this.queue
        .waitFor<JobName.RenderSegment>(queueName(token.routingkey), flow.segmentIds[i], {
          onProgress: (frames) => ((done[i] = frames), reportProgress()),
          signal: stopWaiting.signal,
          outageTimeoutMs,
        })
        .then((r) => {
          done[i] = range.to - range.from;
          timers[i]?.();
          // the next segment of this lane can start now
          if (i + lanes < ranges.length) timers[i + lanes] = this.metrics.segmentSeconds.startTimer({ routing_key: token.routingkey });
          reportProgress();
          return r;
        })
        .catch((err: Error) => {
          if (err instanceof MontageError && err.kind === 'unavailable') throw err;
          throw new MontageError('render_failed', `segment ${range.from}–${range.to} failed on every attempt: ${err.message}`);
        }),
    );
    for (const r of results) r.catch(() => undefined); // awaited in order below; a failure is reported there
    const assembled = this.queue.waitFor<JobName.AssembleRender>(ASSEMBLY_QUEUE, flow.parentId, { signal: stopWaiting.signal, outageTimeoutMs });
    assembled.catch(() => undefined); // awaited after the stream
    const storage = this.storage;
    try {
      if (!(await this.queue.liveNodes().catch(() => [])).some((n) => n.routingKeys.includes(token.routingkey))) {
        this.logger.warn(`no live render node takes routing key "${token.routingkey}": render ${key} stays queued until one starts`);
      }
      const plan = await planning;
      const joiner: SegmentJoiner = format === 'mp4' ? new Fmp4Joiner(plan.fps) : new IvfJoiner(plan.fps, plan.totalFrames);
      const joined = async function* (): AsyncGenerator<Buffer> {
        for (let i = 0; i < ranges.length; i++) {
          await results[i];
          yield joiner.push(await storage.readSegment(segments[i]), ranges[i].from);
          await storage.removeSegment(segments[i]);
        }
      };
      await this.renderer.assembleLive(plan, joined(), live.livePath!, format, live.abort.signal);
      await assembled; // the flow's parent: every lane done, every frame counted
    } catch (err) {
      // The rest of the flow will not be used: jobs not started yet go, running ones finish.
      await this.queue.removeFlow(ASSEMBLY_QUEUE, flow.parentId).catch(() => undefined);
      // Segments still rendering are removed when they land; waiters of jobs that will never
      // run (removed above) give up after a while, or at once on shutdown.
      results.forEach((r, i) => void r.then(() => storage.removeSegment(segments[i]).catch(() => undefined), () => undefined));
      setTimeout(() => stopWaiting.abort(), 10 * 60_000).unref();
      throw err;
    } finally {
      await Promise.all(segments.map((name) => storage.removeSegment(name).catch(() => undefined)));
    }
    stopWaiting.abort(); // everything settled: nothing to keep listening for
    live.abort.signal.removeEventListener('abort', onAbort);
  }

  private async *followLive(live: LiveRender, signal?: AbortSignal): AsyncGenerator<Buffer> {
    yield* this.liveFiles.follow(live.livePath!, () => live.written || live.finished, () => live.changed(), signal);
    if (live.error) throw live.error; // ends the response abruptly: the client sees a broken stream, not a short video
  }
}

function now(): string {
  return new Date().toISOString();
}

/** A short, stable id of an API key (never the key): whose limits a token spends. */
function keyIdOf(apiKey: string): string {
  return hashKey(apiKey).slice(0, 16);
}

/** Decimal digits only: `0x10`, `1e1`, ` 16` and `16.0` are not frame numbers. */
function intParam(raw: unknown, name: string, min: number, max: number): number {
  const n = typeof raw === 'string' && /^\d{1,9}$/.test(raw) ? Number(raw) : typeof raw === 'number' ? raw : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw badInput(`${name} must be a whole number from ${min} to ${max}, in decimal digits`, [{ field: name, message: `out of range ${min}–${max}` }]);
  }
  return n;
}

/**
 * What a client may read of a failure: a MontageError's own message; anything else (a
 * filesystem error with a path, a library's words) becomes a plain sentence, the rest is logged.
 */
function publicFailure(err: unknown): MontageError {
  if (err instanceof MontageError) return err;
  return new MontageError('render_failed', 'the render failed unexpectedly (the service log has the details)', [], { internal: (err as Error)?.stack ?? String(err) });
}

