import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { renderFailed } from '../../common/errors';
import type { FrameRange } from '../../compiler/ffmpeg-args';
import { framesPlan, planRender } from '../../compiler/render-plan';
import { MONTAGE_CONFIG, type MontageConfig } from '../../config/config';
import { isStillFormat } from '../../formats/output-formats';
import { MediaPreparationService } from '../../render/media-preparation.service';
import { RenderService, stillRange, videoRange } from '../../render/render.service';
import { BlenderRepository, type BlenderRunOptions } from '../../repositories/blender.repository';
import { type EngineCapabilities, EngineName, type EngineRenderOptions, type EngineRenderResult, type EngineRequest, type RenderEngine, type SoundTrack } from '../engine';
import { blenderJob, blenderRenderArgs, blenderServeArgs, frameFile, serveChunkLine } from './blender-args';
import { BlenderScenesService, SCENE_SCRIPT } from './blender-scenes.service';
import type { BlenderLogEvent } from './blender-log';
import { chunkTiming, planFrameChunks, sceneTimingKey } from './frame-chunks';

/** Blender's start-up allowance before its first frame (loading the program and the scene). */
const STARTUP_MS = 120_000;

/**
 * Blender scenes: the params are bound into the scene (text, materials, images, objects,
 * properties, camera, view layer) by one script of ours, Blender renders the frames of the
 * range as PNGs, and each one goes to ffmpeg as soon as it is saved, which encodes it like a
 * composite's frames: the same fragments, sound, stills and GIFs, so the farm, the stream and
 * storage do not know which engine made them.
 */
@Injectable()
export class BlenderEngine implements RenderEngine {
  readonly name = EngineName.Blender;

  constructor(
    private readonly renderer: RenderService,
    private readonly preparation: MediaPreparationService,
    private readonly blender: BlenderRepository,
    private readonly scenes: BlenderScenesService,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  async capabilities(): Promise<EngineCapabilities> {
    return this.scenes.capabilities(); // none where BLENDER_ENABLED=0
  }

  planRanges(totalFrames: number, _fps: number, parallel: number, secondsPerFrame?: number): FrameRange[] {
    return planFrameChunks(totalFrames, { parallel, defaultChunkFrames: this.config.blender.chunkFrames, targetChunkSeconds: this.config.blender.chunkSeconds, secondsPerFrame });
  }

  async render(request: EngineRequest, output: string, options: EngineRenderOptions = {}): Promise<EngineRenderResult> {
    const movie = await this.renderer.resolveForRender(request);
    const scene = movie.blender;
    if (!scene) throw renderFailed(`${request.project}/${request.movie} is not a Blender movie`);
    const { profile } = request;
    const withSound = (profile.format === 'mp4' || profile.format === 'webm') && !profile.videoOnly;
    const plan = framesPlan(withSound ? await this.renderer.planSound(request) : planRender({ ...movie, scenes: [], audio: [] }, { visuals: {}, audio: {} }));
    const range = isStillFormat(profile.format) ? stillRange(plan, request.frame) : videoRange(plan, request.range);
    const images: Record<number, string> = {};
    for (const [i, binding] of scene.bindings.entries()) {
      if (binding.type === 'image') images[i] = await this.preparation.localPath(binding.src, 'image');
    }
    const job = blenderJob(scene, { width: movie.width, height: movie.height, fps: movie.fps }, images);
    const command = { scene: scene.scene, script: SCENE_SCRIPT, device: scene.settings.device, threads: this.config.blender.threads, job };
    // Built before anything starts: a job too long for Blender's arguments is a 400 with no folder made and no encoder started.
    const serveArgs = blenderServeArgs(command);
    const dir = await this.blender.framesDir(`${request.project}-${request.movie}-${range.from}`);
    const expected = range.to - range.from;
    const frameTimeoutMs = scene.settings.frameTimeout !== undefined ? scene.settings.frameTimeout * 1000 : this.config.blender.frameTimeoutMs;
    const frameSpan = { start: scene.settings.frameStart + range.from, end: scene.settings.frameStart + range.to - 1 };
    const blender = this.blender;
    // A Blender that keeps the scene loaded serves the next chunk of it without starting again;
    // BLENDER_KEEP_ALIVE_MS=0 starts one per chunk (`-a`, the classic call).
    const keyOfScene = `${movie.templateId}@${movie.version}:${createHash('sha256').update(JSON.stringify(command)).digest('hex').slice(0, 16)}`;
    const run = (runOptions: BlenderRunOptions) =>
      this.config.blender.keepAliveMs > 0
        ? blender.renderServed(keyOfScene, serveArgs, serveChunkLine(frameSpan, dir), runOptions)
        : blender.render(blenderRenderArgs({ ...command, outputDir: dir, frames: frameSpan }), runOptions);
    const startedAt = Date.now();
    const savedAt: number[] = [];
    // Cycles falls back to the CPU without a word when a GPU is missing: the scene script says which device it set up.
    const expectedDevice = scene.settings.engine === 'CYCLES' ? scene.settings.device : 'CPU';
    let device: string | undefined;
    const onEvent = (event: BlenderLogEvent) => {
      if (event.kind === 'saved') savedAt.push(Date.now());
      else if (event.kind === 'device') device = event.type;
    };
    // Frames in the order Blender saves them, each read and removed as the encoder takes it; progress counts `Saved:` lines.
    async function* frames(): AsyncGenerator<Buffer> {
      let saved = 0;
      for await (const file of run({ signal: options.signal, frameTimeoutMs, firstFrameTimeoutMs: frameTimeoutMs + STARTUP_MS, onEvent })) {
        // Only the frame that comes next, in this render's folder: nothing else is read (or removed).
        if (file !== frameFile(dir, frameSpan.start + saved)) throw renderFailed(`Blender saved an unexpected file (frame ${frameSpan.start + saved} was next)`, [], { internal: file });
        saved++;
        options.onFrames?.(saved);
        yield await blender.takeFrame(file);
      }
      if (device !== expectedDevice) throw renderFailed(`Blender did not confirm rendering on ${expectedDevice} (it reported ${device ?? 'no device'})`);
      if (saved !== expected) throw renderFailed(`Blender saved ${saved} frames of ${expected}`);
    }
    try {
      const result = await this.renderer.render({ ...request, range }, output, undefined, { inPlace: options.inPlace, plan, signal: options.signal, frames: frames() });
      const timing = chunkTiming(startedAt, savedAt);
      const key = sceneTimingKey(movie.templateId, movie.version, scene.settings, movie);
      return { bytes: result.bytes, frames: expected, ...(timing ? { timing: { key, ...timing } } : {}) };
    } finally {
      await this.blender.removeDir(dir);
    }
  }

  /** A Blender movie's sound is the compositor's: its audio tracks. */
  soundTrack(request: Omit<EngineRequest, 'profile'>, format: 'mp4' | 'webm' | 'hls'): Promise<SoundTrack> {
    return this.renderer.soundTrack(request, format);
  }

  muxSound(video: AsyncIterable<Buffer>, sound: string, output: string, format: 'mp4' | 'webm', signal?: AbortSignal): Promise<void> {
    return this.renderer.assembleLive(sound, video, output, format, signal);
  }

  remux(input: string, output: string, format: 'mp4' | 'webm'): Promise<number> {
    return this.renderer.remux(input, output, format);
  }
}
