import { Injectable, Module } from '@nestjs/common';
import { renderFailed } from '../common/errors';
import { RenderModule } from '../render/render.module';
import type { EngineName, RenderEngine } from './engine';
import { BlenderEngine } from './blender/blender.engine';
import { FfmpegCompositeEngine } from './ffmpeg-composite/ffmpeg-composite.engine';

/** The engines this process has, by name. A second engine is one more constructor argument here. */
@Injectable()
export class EngineRegistry {
  private readonly engines: Map<EngineName, RenderEngine>;

  constructor(composite: FfmpegCompositeEngine, blender: BlenderEngine) {
    this.engines = new Map([composite, blender].map((e) => [e.name, e]));
  }

  get(name: EngineName): RenderEngine {
    const engine = this.engines.get(name);
    // A job routed to a node without its engine is a routing mistake, not a retryable failure.
    if (!engine) throw renderFailed(`this render node has no "${name}" engine`);
    return engine;
  }

  names(): EngineName[] {
    return [...this.engines.keys()];
  }
}

@Module({
  imports: [RenderModule],
  providers: [FfmpegCompositeEngine, BlenderEngine, EngineRegistry],
  exports: [EngineRegistry],
})
export class EnginesModule {}
