import { Inject, Injectable } from '@nestjs/common';
import {
  EngineRegistry,
  formatSpec,
  type JobContext,
  LIVE_STREAM,
  LiveFilesRepository,
  type LiveStreamRepository,
  OUTPUT_STORAGE,
  type OutputStorage,
  type RenderOutputPayload,
  type RenderOutputResult,
} from '../src/render-node-kit';
import { linked, NodeJobs, requestOf } from './node-jobs';
import { PiecePublisher } from './piece-publisher';

/**
 * `RenderOutput`: a whole output on this node. A streamable one (mp4, webm) is published on
 * the run's live channel piece by piece while it is encoded, then remuxed and stored; a gif or
 * a still is stored once made. The channel's `end` entry comes only after the output is stored.
 */
@Injectable()
export class OutputJob {
  constructor(
    private readonly node: NodeJobs,
    private readonly engines: EngineRegistry,
    private readonly publisher: PiecePublisher,
    private readonly files: LiveFilesRepository,
    @Inject(LIVE_STREAM) private readonly live: LiveStreamRepository,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
  ) {}

  run(payload: RenderOutputPayload, ctx: JobContext): Promise<RenderOutputResult> {
    return this.node.run(payload, ctx, async () => {
      const engine = this.engines.get(payload.engine);
      const format = payload.profile.format;
      const spec = formatSpec(format);
      const onFrames = this.node.progress(payload, 'f0', ctx);
      const request = requestOf(payload, payload.frame !== undefined ? { frame: payload.frame } : {});
      let frames: number;
      let bytes: number;
      if (spec.streamable) {
        const file = this.files.livePath(payload.renderKey, format);
        const stop = linked(ctx.signal);
        try {
          const rendering = engine.render(request, file, { inPlace: true, onFrames, signal: stop.signal });
          await this.publisher.publishWhileWriting(file, spec.fragments!, payload.channel, ctx.attempt, rendering, undefined, stop);
          const rendered = await rendering;
          frames = rendered.frames;
          this.node.noteTiming(payload, 'output', rendered.timing);
          await this.live.append(payload.channel, { kind: 'written', attempt: ctx.attempt });
          bytes = await this.storage.storeOutput(payload.renderKey, format, (out) => engine.remux(file, out, format as 'mp4' | 'webm'));
        } finally {
          await this.files.remove(file);
        }
      } else {
        const result = await this.storage.storeOutput(payload.renderKey, format, (out) => engine.render(request, out, { onFrames, signal: ctx.signal }));
        ({ frames, bytes } = result);
      }
      await this.live.append(payload.channel, { kind: 'end', attempt: ctx.attempt, frames, bytes });
      return { bytes, frames, node: this.node.nodeId };
    }, 'output');
  }
}
