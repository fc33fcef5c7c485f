import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { createHmac, randomBytes } from 'node:crypto';
import { canonicalJson } from '../common/canonical-json';
import { badInput, type ErrorDetail, MontageError, notFound, tooLarge } from '../common/errors';
import { DEFAULTS, type OutputProfile } from '../compiler/output-profiles';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { BlenderScenesService } from '../engines/blender/blender-scenes.service';
import { sceneTimingKey } from '../engines/blender/frame-chunks';
import { EngineName } from '../engines/engine';
import { isOutputFormat, isRenderedFormat, isStillFormat, isStreamable, type OutputFormat } from '../formats/output-formats';
import { RateLimitsService } from '../limits/rate-limits.service';
import { effectiveLimits, type ProjectDoc } from '../projects/project.types';
import { keyIdOf, ProjectsService } from '../projects/projects.service';
import { RenderService } from '../render/render.service';
import { type Collection, DOCUMENT_STORE, type DocumentStore, DuplicateKeyError } from '../repositories/document-store/port';
import { renderKey } from '../renders/render-key';
import { coveredExtensions, movieFor, parseRenderRequest } from './render-request';
import { RenderRunner } from '../renders/render-runner.service';
import type { LocatedOutput, RenderDoc, RenderStatus, TokenDoc } from '../renders/render.types';
import { TokenRemoval } from '../renders/token-removal';
import { RenderEvents } from '../renders/render-events';
import { UploadTasksService } from '../uploads/upload-tasks.service';
import type { UploadView } from '../uploads/upload.types';

export interface CreatedToken {
  token: string;
  urls: Partial<Record<string, string>>;
  uploads: UploadView[];
  totalFrames: number;
}

const TOKEN = /^[A-Za-z0-9_-]{22,64}$/;

/**
 * Tokens: made by POST (everything validated then), located by GET (which output of which
 * movie, content-addressed by its render key), their progress, signed-URL tokens, deletion.
 * Rendering is the runner's.
 */
@Injectable()
export class TokensService implements OnModuleInit {
  private readonly logger = new Logger('Tokens');
  private readonly tokens: Collection<TokenDoc>;
  private readonly renders: Collection<RenderDoc>;

  constructor(
    @Inject(DOCUMENT_STORE) store: DocumentStore,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    private readonly renderer: RenderService,
    private readonly projects: ProjectsService,
    private readonly limits: RateLimitsService,
    private readonly removal: TokenRemoval,
    private readonly runner: RenderRunner,
    private readonly uploadTasks: UploadTasksService,
    private readonly events: RenderEvents,
    private readonly blenderScenes: BlenderScenesService,
  ) {
    this.tokens = store.collection<TokenDoc>('tokens');
    this.renders = store.collection<RenderDoc>('renders');
  }

  async onModuleInit(): Promise<void> {
    await this.tokens.ensureIndex({ renderKeys: 1 });
  }

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
    const tokenId = randomBytes(16).toString('base64url'); // 128 random bits: the token is a capability
    const uploads = await this.uploadTasks.prepare(projectId, tokenId, body.upload, body.params, extensions);
    const token: TokenDoc = {
      _id: tokenId,
      project: projectId,
      movie: body.movie,
      params: body.params,
      parallel: body.parallel,
      routingkey: body.routingkey,
      upload: uploads.map((u) => u._id),
      createdAt: now(),
      renderKeys: [],
      renders: {},
      keyId,
      baseUrl,
      ...(body.metadata ? { metadata: body.metadata } : {}),
      ...(ttlSec ? { expiresAt: new Date(Date.now() + ttlSec * 1000).toISOString() } : {}),
      ...(body.pin ? { pin: true } : {}),
    };
    // Tasks before the token: a token never names tasks that are not there.
    await this.uploadTasks.save(uploads);
    await this.tokens.insertOne(token);
    await this.events.emit({ type: 'token-created', token });
    await this.uploadTasks.startAsync(uploads);
    const first = extensions.includes('mp4') ? 'mp4' : extensions.find(isRenderedFormat);
    if (allowAsync && body.async && first) {
      void this.locate(token._id, first, {})
        .then((located) => this.runner.start(located))
        .catch((err) => this.logger.error(`async render of ${token._id}.${first} failed to start: ${(err as Error).message}`));
    }
    return {
      token: token._id,
      urls: Object.fromEntries(extensions.map((ext) => [ext, `${baseUrl}/v2/get/${token._id}.${ext}`])),
      uploads: await this.uploadTasks.views(token._id),
      totalFrames,
      ...(token.expiresAt ? { expiresAt: token.expiresAt } : {}),
      ...(token.pin ? { pin: true } : {}),
    };
  }

  /**
   * Tokens of a batch's items: each item's params checked against the movie on its own, so a bad
   * item fails alone with its reason. Stored in one pass; no render starts here.
   */
  async createBatchTokens(
    project: ProjectDoc,
    keyId: string,
    batch: { id: string; movie: string; formats: OutputFormat[]; parallel: number; routingkey: string; metadata?: Record<string, unknown>; baseUrl: string },
    items: Array<{ key: string; params: Record<string, unknown> }>,
  ): Promise<Array<{ token: string } | { error: string; details: ErrorDetail[] }>> {
    const results: Array<{ token: string } | { error: string; details: ErrorDetail[] }> = [];
    await this.renderer.template(project._id, batch.movie); // an unknown or broken movie: no item can start
    const ttlDays = effectiveLimits(project, this.config).tokenTtlDays;
    for (const item of items) {
      try {
        await this.checkedMovie(project, batch.movie, item.params, false);
      } catch (err) {
        if (!(err instanceof MontageError) || err.httpStatus >= 500) throw err; // the store or templates away: the batch cannot start
        results.push({ error: err.message, details: err.details });
        continue;
      }
      const token: TokenDoc = {
        _id: randomBytes(16).toString('base64url'),
        project: project._id,
        movie: batch.formats.length === 1 ? { [batch.formats[0]]: batch.movie } : Object.fromEntries(batch.formats.map((f) => [f, batch.movie])),
        params: item.params,
        parallel: batch.parallel,
        routingkey: batch.routingkey,
        upload: [],
        createdAt: now(),
        renderKeys: [],
        renders: {},
        keyId,
        baseUrl: batch.baseUrl,
        batch: { id: batch.id, key: item.key },
        ...(batch.metadata ? { metadata: batch.metadata } : {}),
        ...(ttlDays ? { expiresAt: new Date(Date.now() + ttlDays * 24 * 3600 * 1000).toISOString() } : {}),
      };
      await this.tokens.insertOne(token);
      results.push({ token: token._id });
    }
    return results;
  }

  /** The token and the output an extension (and ?frame=, ?q=) asks for. 404 for unknown tokens and uncovered extensions. */
  async locate(tokenId: string, ext: string, requestQuery: Record<string, unknown>): Promise<LocatedOutput> {
    let query = requestQuery;
    if (!isOutputFormat(ext)) {
      throw badInput(`unsupported extension ".${ext.slice(0, 16)}"; use mp4, webm, gif, png, jpg or webp`, [{ field: 'ext', message: 'unsupported' }]);
    }
    if (!isRenderedFormat(ext)) {
      throw badInput(`.${ext} is not rendered: GET /v2/get/<token>.${ext} makes it from the movie`, [{ field: 'ext', message: 'not a rendered format' }]);
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
    } else if (isStreamable(ext)) {
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
    const engine = resolved.engine === 'blender' ? EngineName.Blender : EngineName.FfmpegComposite;
    const blender = resolved.blender ? { device: resolved.blender.settings.device, timingKey: sceneTimingKey(resolved.templateId, resolved.version, resolved.blender.settings, resolved) } : {};
    return { token, templateVersion: template.version, format: ext, movie, profile, frame, key, fps: resolved.fps, totalFrames: frames, pixelSeconds, engine, ...blender, resolved };
  }

  /**
   * The token's captions as WebVTT: the movie of its `vtt` entry, else of its video. Made from
   * the resolved movie (no render); 404 when that movie has no captions layer.
   */
  async captionsVtt(tokenId: string): Promise<string> {
    const token = await this.findToken(tokenId);
    const movie = movieFor(token.movie, 'vtt') ?? movieFor(token.movie, 'mp4') ?? movieFor(token.movie, 'webm');
    if (!movie) {
      throw notFound(`this token has no video, so no captions; it has ${coveredExtensions(token.movie).map((e) => `.${e}`).join(', ')}`, [{ field: 'ext', message: 'not in the movie map' }]);
    }
    return this.renderer.captionsVtt(token.project, movie, token.params);
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
      const live = await this.runner.liveProgress(doc);
      formats[ext] = { status: live.status, bytes: live.bytes, framesDone: live.framesDone, totalFrames: doc.totalFrames, ...(doc.error && live.status === 'failed' ? { error: doc.error } : {}) };
      if (!latest || doc.updatedAt > latest.updatedAt) latest = { ...doc, ...live };
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
      ...(token.upload.length ? { uploads: await this.uploadTasks.views(token._id) } : {}),
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

  /** The movie resolved with these params, within the project's limits. */
  private async checkedMovie(project: ProjectDoc, movie: string, params: Record<string, unknown>, prefix: boolean) {
    const paramsBytes = Buffer.byteLength(JSON.stringify(params));
    if (project.limits.maxParamsBytes && paramsBytes > project.limits.maxParamsBytes) {
      throw tooLarge(`params are ${paramsBytes} bytes; this project allows ${project.limits.maxParamsBytes}`, [{ field: 'params', message: 'too large' }]);
    }
    const { movie: resolved, template } = await this.resolveFor(project._id, movie, params, prefix);
    if (resolved.blender) {
      // Bindings that do not fit the scene: a 400 now rather than a failed render later (where this API has Blender to ask).
      const problems = await this.blenderScenes.checkWhereAvailable(template, resolved.blender);
      if (problems.length > 0) throw badInput(`${prefix ? `${movie}: ` : ''}the template's bindings do not fit its Blender scene: ${problems[0].field}: ${problems[0].message}`, problems);
    }
    const pixelSeconds = resolved.width * resolved.height * (resolved.totalFrames / resolved.fps);
    if (project.limits.maxPixelSeconds && pixelSeconds > project.limits.maxPixelSeconds) {
      throw tooLarge(
        `movie "${movie}" is ${resolved.width}×${resolved.height} for ${(resolved.totalFrames / resolved.fps).toFixed(1)} s; this project allows ${project.limits.maxPixelSeconds} pixel-seconds`,
        [{ field: 'movie', message: 'duration × resolution over the project limit' }],
      );
    }
    return resolved;
  }

  /** A play segment rendered for this token (`<key>.<ext>`): it goes with the token unless something else uses it. */
  async notePiece(tokenId: string, name: string): Promise<void> {
    await this.tokens.findOneAndUpdate({ _id: tokenId }, { $addToSet: { pieces: name } });
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

}

function now(): string {
  return new Date().toISOString();
}

/** Decimal digits only: `0x10`, `1e1`, ` 16` and `16.0` are not frame numbers. */
function intParam(raw: unknown, name: string, min: number, max: number): number {
  const n = typeof raw === 'string' && /^\d{1,9}$/.test(raw) ? Number(raw) : typeof raw === 'number' ? raw : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw badInput(`${name} must be a whole number from ${min} to ${max}, in decimal digits`, [{ field: name, message: `out of range ${min}–${max}` }]);
  }
  return n;
}

