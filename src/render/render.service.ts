import { Inject, Injectable } from '@nestjs/common';
import { movieVtt } from '../captions/webvtt';
import { badInput, notFound, renderFailed } from '../common/errors';
import { buildLiveMuxArgs, buildRemuxArgs, buildRenderArgs, buildSoundArgs, type FrameRange, RAW_STILL_OUTPUT, SOUND_EXT, type SoundFormat } from '../compiler/ffmpeg-args';
import type { SoundTrack } from '../engines/engine';
import { soundKey } from '../renders/render-key';
import { DEFAULTS, type OutputProfile } from '../compiler/output-profiles';
import { isStillFormat } from '../formats/output-formats';
import { pictureOf, planRender, soundOf, type RenderPlan } from '../compiler/render-plan';
import type { Params } from '../compiler/params';
import { resolveMovie, type ResolvedMovie } from '../compiler/resolve';
import { canonicalJson } from '../common/canonical-json';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { MediaRepository } from '../repositories/media.repository';
import type { PictureFacts } from '../compiler/ffmpeg-output';
import { RasterRepository } from '../repositories/raster.repository';
import { WorkFilesRepository } from '../repositories/work-files.repository';
import { TemplatesService } from '../templates/templates.service';
import { MediaPreparationService } from './media-preparation.service';

export interface RenderRequest {
  project: string;
  movie: string;
  /** Raw params, as from JSON or the command line; validated against the movie's variables. */
  params: Record<string, unknown>;
  profile: OutputProfile;
  /** Stills: the frame to render; default the movie's poster frame. */
  frame?: number;
  /** Videos: a part of the movie; default all of it. */
  range?: Partial<FrameRange>;
  /** The template version the output was promised for: a different one fails instead of being stored under the wrong key. */
  templateVersion?: string;
}

export interface RenderProgress {
  phase: 'preparing' | 'rendering' | 'done';
  framesDone: number;
  totalFrames: number;
}

export interface RenderResult {
  output: string;
  bytes: number;
  plan: RenderPlan;
  range: FrameRange;
}

/** Template + params → a finished file. The single entry point the CLI (and later the API) uses. */
@Injectable()
export class RenderService {
  constructor(
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    private readonly templates: TemplatesService,
    private readonly preparation: MediaPreparationService,
    private readonly media: MediaRepository,
    private readonly rasters: RasterRepository,
    private readonly work: WorkFilesRepository,
  ) {}

  /** Resolved movies by template version and params: every GET of a token resolves it again. */
  private readonly resolved = new Map<string, { params: Params; movie: ResolvedMovie }>();
  /** Whether media params may be local files (`file:///…`): only in the CLI's own process. */
  private localFiles = false;

  /**
   * Lets media params name local files. The CLI calls this for the files its user gave as
   * `@path`; the service never does, so a request's params stay http(s) URLs.
   */
  allowLocalFiles(): void {
    this.localFiles = true;
    this.resolved.clear();
  }

  /** Size and frame count of a written video or still, read from the file itself. */
  async outputFacts(file: string): Promise<PictureFacts> {
    return this.media.pictureFacts(file);
  }

  /** Validation and resolution only (no downloads, no rasters): cheap, for answering a request. */
  /** The movie's template (404 for an unknown project or movie, 400 for a broken one): nothing resolved. */
  async template(project: string, movieName: string) {
    return this.templates.load(project, movieName);
  }

  async resolve(project: string, movieName: string, rawParams: Record<string, unknown>) {
    const template = await this.templates.load(project, movieName);
    const key = `${template.file}\0${template.version}\0${canonicalJson(rawParams)}`;
    let hit = this.resolved.get(key);
    if (!hit) {
      const params = this.templates.validateParams(template, rawParams, { allowLocalFiles: this.localFiles });
      hit = { params, movie: resolveMovie(template, params, { localFiles: this.localFiles }) };
      this.resolved.set(key, hit);
      if (this.resolved.size > 1000) this.resolved.delete(this.resolved.keys().next().value!); // oldest first
    }
    return { template, ...hit };
  }

  /** Everything up to the render plan: validation, params, downloads, rasters. */
  async plan(request: Omit<RenderRequest, 'profile'>): Promise<RenderPlan> {
    const movie = this.composite(await this.resolveForRender(request));
    return planRender(movie, await this.preparation.prepare(movie));
  }

  /**
   * The plan of the movie's sound alone (music tracks and the clips whose sound joins the
   * mix): what the assembler of a distributed render needs, without making any raster.
   */
  async planSound(request: Omit<RenderRequest, 'profile'>): Promise<RenderPlan> {
    const movie = soundOf(await this.resolveForRender(request));
    return planRender(movie, await this.preparation.prepare(movie));
  }

  /** The plan of frames [from, to) without sound: only the layers seen there are prepared. */
  async planPicture(request: Omit<RenderRequest, 'profile'>, range: FrameRange): Promise<RenderPlan> {
    const movie = pictureOf(this.composite(await this.resolveForRender(request)), range);
    return planRender(movie, await this.preparation.prepare(movie));
  }

  /**
   * The plan of a still: only the layers seen at its frame are prepared (a changed param shown
   * elsewhere in the movie costs the still nothing), and no sound.
   */
  async planStill(request: Omit<RenderRequest, 'profile'>): Promise<RenderPlan> {
    const movie = this.composite(await this.resolveForRender(request));
    return this.planPicture(request, stillRange(movie, request.frame));
  }

  /** A movie whose picture is composited here: another engine's movie would come out as its background only. */
  private composite(movie: ResolvedMovie): ResolvedMovie {
    if (movie.engine === 'blender') throw renderFailed(`${movie.templateId} is a Blender movie: the blender engine renders its picture`);
    return movie;
  }

  /** The resolved movie (memoised by `resolve`), refused if the template changed since it was planned. */
  /** The movie's captions as WebVTT, from the resolved movie alone (no render); 404 without a caption layer. */
  async captionsVtt(project: string, movieName: string, rawParams: Record<string, unknown>): Promise<string> {
    const { movie } = await this.resolve(project, movieName, rawParams);
    const vtt = movieVtt(movie);
    if (vtt === undefined) throw notFound(`${project}/${movieName} has no captions layer: there is no .vtt`, [{ field: 'ext', message: 'the movie has no captions' }]);
    return vtt;
  }

  async resolveForRender(request: Omit<RenderRequest, 'profile'>): Promise<ResolvedMovie> {
    const { template, movie } = await this.resolve(request.project, request.movie, request.params);
    if (request.templateVersion && template.version !== request.templateVersion) {
      throw renderFailed('the template changed while this output was being made; request it again for the new version');
    }
    return movie;
  }

  /**
   * Renders to `output`. By default through a temporary sibling renamed into place; with
   * `inPlace`, straight into `output`, so that readers can follow the file as it grows.
   */
  async render(
    request: RenderRequest,
    output: string,
    onProgress?: (p: RenderProgress) => void,
    options: { inPlace?: boolean; plan?: RenderPlan; signal?: AbortSignal; frames?: AsyncIterable<Buffer> } = {},
  ): Promise<RenderResult> {
    // A part without sound (a segment) needs only the media of the layers seen in it; a still, those seen at its frame.
    const part = request.range && request.profile.videoOnly ? { from: request.range.from ?? 0, to: request.range.to ?? Infinity } : undefined;
    const still = isStillFormat(request.profile.format);
    // Preparing (downloads, decode checks, rasters) can take a while: a shutdown does not wait for it.
    const plan = options.plan ?? (await abortable(still ? this.planStill(request) : part ? this.planPicture(request, part) : this.plan(request), options.signal));
    const range = still ? stillRange(plan, request.frame) : videoRange(plan, request.range);
    const total = range.to - range.from;
    onProgress?.({ phase: 'rendering', framesDone: 0, totalFrames: total });

    const temp = options.inPlace && !still ? output : await this.work.tempFor(output);
    const format = request.profile.format;
    const quality = request.profile.quality ?? DEFAULTS.still.quality;
    // jpg, webp: sharp encodes the frame; it comes raw on ffmpeg's stdout unless another engine's frames hold stdin.
    const encoded = still && format !== 'png';
    const raw = encoded && !options.frames;
    const png = encoded && !raw ? await this.work.tempFor(output, '.png') : undefined;
    try {
      if (raw) {
        const args = buildRenderArgs(plan, range, request.profile, RAW_STILL_OUTPUT, { threads: this.config.ffmpegThreads });
        const rgb = await this.media.runToBuffer(args, { signal: options.signal, maxBytes: plan.width * plan.height * 3 });
        await this.rasters.encodeStill({ rgb, width: plan.width, height: plan.height }, format as 'jpg' | 'webp', quality, temp);
      } else {
        const args = buildRenderArgs(plan, range, request.profile, png ?? temp, { progress: true, threads: this.config.ffmpegThreads });
        // Another engine's frames (a `frames` layer) come on stdin; that engine reports progress.
        if (options.frames) await this.media.runWithInput(args, options.frames, options.signal);
        else await this.media.run(args, {
          signal: options.signal,
          // A palette GIF writes nothing until it has seen every frame: its watchdog waits longer.
          stallTimeoutMs: format === 'gif' ? this.config.stallTimeoutMs * 6 : undefined,
          onFrames: (frames) => onProgress?.({ phase: 'rendering', framesDone: Math.min(frames, total), totalFrames: total }),
        });
        if (png) await this.rasters.encodeStill({ png }, format as 'jpg' | 'webp', quality, temp);
      }
      if (temp !== output) await this.work.commit(temp, output);
    } catch (err) {
      if (temp !== output) await this.work.remove(temp);
      throw err;
    } finally {
      if (png) await this.work.remove(png);
    }
    onProgress?.({ phase: 'done', framesDone: total, totalFrames: total });
    return { output, bytes: await this.work.size(output), plan, range };
  }

  /** Assembles a distributed render: the joined video from `video`, the sound mixed on the way. */
  async assembleLive(sound: string, video: AsyncIterable<Buffer>, output: string, format: RemuxFormat, signal?: AbortSignal): Promise<void> {
    await this.media.runWithInput(buildLiveMuxArgs(sound, output, format), video, signal);
  }

  /**
   * The movie's sound track (audio tracks and the clips whose sound joins the mix), keyed by
   * what it is mixed from: tokens that differ only in what is seen share one.
   */
  async soundTrack(request: Omit<RenderRequest, 'profile'>, format: SoundFormat): Promise<SoundTrack> {
    const movie = soundOf(await this.resolveForRender(request));
    const clips = movie.scenes.flatMap((s) => s.layers.map(({ id, startFrame, endFrame, spec, media }) => ({ id, startFrame, endFrame, spec, media })));
    const key = soundKey({ project: request.project, movie: request.movie, templateVersion: movie.version, output: format, sound: { fps: movie.fps, totalFrames: movie.totalFrames, audio: movie.audio, clips } });
    return {
      key,
      ext: SOUND_EXT[format],
      make: async (output, signal) => {
        const plan = planRender(movie, await this.preparation.prepare(movie));
        await this.media.run(buildSoundArgs(plan, output, format), { signal });
      },
    };
  }

  /** A streamable render → the regular file that is stored (no re-encode). */
  async remux(input: string, output: string, format: RemuxFormat): Promise<number> {
    const temp = await this.work.tempFor(output);
    try {
      await this.media.run(buildRemuxArgs(input, temp, format));
      await this.work.commit(temp, output);
    } catch (err) {
      await this.work.remove(temp);
      throw err;
    }
    return this.work.size(output);
  }
}

/** A streamable render → its regular stored form, written through a temporary sibling. */
export type RemuxFormat = 'mp4' | 'webm';

/** `work`, or a cancellation as soon as `signal` aborts (the work itself finishes unobserved). */
function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  work.catch(() => undefined);
  if (signal.aborted) return Promise.reject(renderFailed('render cancelled'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(renderFailed('render cancelled'));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => (signal.removeEventListener('abort', onAbort), resolve(value)),
      (err: unknown) => (signal.removeEventListener('abort', onAbort), reject(err)),
    );
  });
}

/** The frame of a still (default the poster frame) as a range, checked against the movie (a plan or a resolved movie). */
export function stillRange(plan: Pick<RenderPlan, 'posterFrame' | 'totalFrames'>, frame: number | undefined): FrameRange {
  const f = frame ?? plan.posterFrame;
  if (!Number.isInteger(f) || f < 0 || f >= plan.totalFrames) {
    throw badInput(`frame must be a whole number from 0 to ${plan.totalFrames - 1}, got ${frame}`, [
      { field: 'frame', message: `out of range 0–${plan.totalFrames - 1}` },
    ]);
  }
  return { from: f, to: f + 1 };
}

export function videoRange(plan: RenderPlan, range: Partial<FrameRange> | undefined): FrameRange {
  const from = range?.from ?? 0;
  const to = range?.to ?? plan.totalFrames;
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to > plan.totalFrames || to <= from) {
    throw badInput(`frame range [${from}, ${to}) is not inside the movie's ${plan.totalFrames} frames`, [
      { field: 'range', message: `must satisfy 0 ≤ from < to ≤ ${plan.totalFrames}` },
    ]);
  }
  return { from, to };
}

