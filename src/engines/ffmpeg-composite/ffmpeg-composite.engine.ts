import { Inject, Injectable } from '@nestjs/common';
import type { FrameRange } from '../../compiler/ffmpeg-args';
import { MONTAGE_CONFIG, type MontageConfig } from '../../config/config';
import { RenderService } from '../../render/render.service';
import { distributedPlanOptions, planSegments } from '../../streaming/segment-planner';
import { type EngineCapabilities, EngineName, type EngineRenderOptions, type EngineRenderResult, type EngineRequest, type RenderEngine, type SoundTrack } from '../engine';

/** The compositor: templates → sharp rasters → one ffmpeg filter graph per range. */
@Injectable()
export class FfmpegCompositeEngine implements RenderEngine {
  readonly name = EngineName.FfmpegComposite;

  constructor(
    private readonly renderer: RenderService,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  capabilities(): Promise<EngineCapabilities> {
    return Promise.resolve({ devices: ['CPU'] });
  }

  planRanges(totalFrames: number, fps: number, parallel: number): FrameRange[] {
    return planSegments(totalFrames, distributedPlanOptions(fps, parallel, this.config.segmentsPerLane));
  }

  async render(request: EngineRequest, output: string, options: EngineRenderOptions = {}): Promise<EngineRenderResult> {
    const result = await this.renderer.render(request, output, (p) => options.onFrames?.(p.framesDone), { inPlace: options.inPlace, signal: options.signal });
    return { bytes: result.bytes, frames: result.range.to - result.range.from };
  }

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
