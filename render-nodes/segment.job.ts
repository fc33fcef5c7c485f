import { Inject, Injectable } from '@nestjs/common';
import {
  EngineRegistry,
  formatSpec,
  framesInPiece,
  type JobContext,
  LIVE_STREAM,
  LiveFilesRepository,
  type LiveStreamRepository,
  renderFailed,
  type RenderSegmentPayload,
  type RenderSegmentResult,
} from '../src/render-node-kit';
import { linked, NodeJobs, requestOf } from './node-jobs';
import { PiecePublisher } from './piece-publisher';

/**
 * `RenderSegment`: frames [from, to) of a distributed render, video only, published on the
 * segment's channel one fragment (one GOP) at a time while they are encoded: the assembler
 * joins them as they come, so the stream never waits for a whole segment.
 */
@Injectable()
export class SegmentJob {
  constructor(
    private readonly node: NodeJobs,
    private readonly engines: EngineRegistry,
    private readonly publisher: PiecePublisher,
    private readonly files: LiveFilesRepository,
    @Inject(LIVE_STREAM) private readonly live: LiveStreamRepository,
  ) {}

  run(payload: RenderSegmentPayload, ctx: JobContext): Promise<RenderSegmentResult> {
    return this.node.run(payload, ctx, async () => {
      const engine = this.engines.get(payload.engine);
      const kind = formatSpec(payload.profile.format).segment!.fragments;
      const expected = payload.range.to - payload.range.from;
      const file = this.files.livePath(`${payload.renderKey}-${payload.index}`, payload.profile.container ?? payload.profile.format);
      let frames = 0;
      const stop = linked(ctx.signal);
      try {
        const rendering = engine.render(requestOf(payload, { range: payload.range }), file, {
          inPlace: true,
          onFrames: this.node.progress(payload, `f${payload.index}`, ctx),
          signal: stop.signal,
        });
        const { pieces } = await this.publisher.publishWhileWriting(file, kind, payload.channel, ctx.attempt, rendering, (piece) => (frames += framesInPiece(kind, piece)), stop);
        // Counted in what was published: a short segment would corrupt the stream.
        if (frames !== expected) throw renderFailed(`segment ${payload.range.from}-${payload.range.to} has ${frames} frames, expected ${expected}`);
        this.node.noteTiming(payload, `frames ${payload.range.from}-${payload.range.to}`, (await rendering).timing);
        await this.live.setProgress(payload.progressKey, `f${payload.index}`, frames).catch(() => undefined);
        await this.live.append(payload.channel, { kind: 'end', attempt: ctx.attempt, frames, bytes: 0 }, 'segment');
        return { frames, pieces, node: this.node.nodeId };
      } finally {
        await this.files.remove(file);
      }
    }, String(payload.index));
  }
}
