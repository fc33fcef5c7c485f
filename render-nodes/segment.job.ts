import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  EngineRegistry,
  formatSpec,
  type FragmentKind,
  framesInFile,
  framesInPiece,
  type JobContext,
  LIVE_STREAM,
  LiveFilesRepository,
  type LiveStreamRepository,
  OUTPUT_STORAGE,
  type OutputStorage,
  readWhole,
  renderFailed,
  type RenderSegmentPayload,
  type RenderSegmentResult,
} from '../src/render-node-kit';
import { linked, NodeJobs, requestOf } from './node-jobs';
import { PiecePublisher } from './piece-publisher';

/** How long a lease on a reusable segment lasts unless its holder renews it (it does, every third of this). */
const LEASE_MS = 6_000;
/** How often a node waiting for another's render of the same segment looks again. */
const WAIT_POLL_MS = 200;

/**
 * `RenderSegment`: frames [from, to) of a distributed render, video only, published on the
 * segment's channel one fragment (one GOP) at a time while they are encoded: the assembler
 * joins them as they come, so the stream never waits for a whole segment.
 *
 * A segment with a content address (`segmentKey`) is stored under it once rendered. If it is
 * stored already (another render drew the same frames), it is published from storage; if
 * another node is rendering it right now (it holds the segment's lease), this one waits for
 * it instead of rendering the same frames twice.
 */
@Injectable()
export class SegmentJob {
  private readonly logger = new Logger('RenderNode');

  constructor(
    private readonly node: NodeJobs,
    private readonly engines: EngineRegistry,
    private readonly publisher: PiecePublisher,
    private readonly files: LiveFilesRepository,
    @Inject(LIVE_STREAM) private readonly live: LiveStreamRepository,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
  ) {}

  run(payload: RenderSegmentPayload, ctx: JobContext): Promise<RenderSegmentResult> {
    return this.node.run(payload, ctx, async () => {
      const kind = formatSpec(payload.profile.format).segment!.fragments;
      const ext = payload.profile.container ?? payload.profile.format;
      const holder = `${this.node.nodeId}:${payload.run}:${payload.index}:${ctx.attempt}`;
      const lease = payload.segmentKey ? `montage:segment-lease:${payload.segmentKey}` : undefined;
      if (payload.segmentKey && lease) {
        const stored = await this.storedOrLeased(payload.segmentKey, ext, lease, holder, ctx.signal);
        if (stored && this.holdsItsFrames(payload, kind, stored)) return this.publishStored(payload, ctx, kind, stored);
        if (stored) {
          // A damaged object would fail every render that reuses it: it goes, and is rendered again here.
          this.logger.warn(`stored segment ${payload.segmentKey} does not hold frames ${payload.range.from}-${payload.range.to}: removed, rendering it again`);
          await this.storage.remove(payload.segmentKey, ext).catch(() => undefined);
          await this.live.lease(lease, holder, LEASE_MS).catch(() => true);
        }
      }
      // Held while rendering: a node that dies lets it lapse, and a waiting one takes over.
      const renewing = lease ? setInterval(() => void this.live.renewLease(lease, holder, LEASE_MS).catch(() => undefined), LEASE_MS / 3) : undefined;
      try {
        return await this.render(payload, ctx, kind, ext);
      } finally {
        clearInterval(renewing);
        if (lease) await this.live.releaseLease(lease, holder).catch(() => undefined);
      }
    }, String(payload.index));
  }

  private async render(payload: RenderSegmentPayload, ctx: JobContext, kind: FragmentKind, ext: string): Promise<RenderSegmentResult> {
    const engine = this.engines.get(payload.engine);
    const expected = payload.range.to - payload.range.from;
    const file = this.files.livePath(`${payload.renderKey}-${payload.index}`, ext);
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
      if (payload.segmentKey) {
        // Kept for the next render that draws the same frames; not kept is only a later render's loss.
        await this.storage.storeOutput(payload.segmentKey, ext, (out) => this.files.copy(file, out)).catch((err: Error) => this.logger.warn(`segment ${payload.segmentKey} not stored for reuse: ${err.message}`));
      }
      await this.end(payload, ctx, frames);
      return { frames, pieces, node: this.node.nodeId };
    } finally {
      await this.files.remove(file);
    }
  }

  /**
   * The stored segment's bytes, once another node has stored them; undefined when this node
   * took the lease and renders it itself (no one held it, or its holder let it lapse).
   */
  private async storedOrLeased(key: string, ext: string, lease: string, holder: string, signal: AbortSignal): Promise<Buffer | undefined> {
    for (;;) {
      if (signal.aborted) throw renderFailed('stopped while waiting for a segment another node renders');
      if (await this.storage.stat(key, ext).catch(() => undefined)) {
        const bytes = await readWhole(this.storage, key, ext).catch(() => undefined);
        if (bytes) return bytes;
      }
      // Redis unreachable: render it (the lease only saves work; the job's own retries handle the outage).
      if (await this.live.lease(lease, holder, LEASE_MS).catch(() => true)) return undefined;
      await new Promise((r) => setTimeout(r, WAIT_POLL_MS));
    }
  }

  /** Checked before anything is published: a stored segment that is not whole is never joined. */
  private holdsItsFrames(payload: RenderSegmentPayload, kind: FragmentKind, bytes: Buffer): boolean {
    try {
      return framesInFile(kind, bytes) === payload.range.to - payload.range.from;
    } catch {
      return false;
    }
  }

  private async publishStored(payload: RenderSegmentPayload, ctx: JobContext, kind: FragmentKind, bytes: Buffer): Promise<RenderSegmentResult> {
    const frames = payload.range.to - payload.range.from;
    const { pieces } = await this.publisher.publishWhole(bytes, kind, payload.channel, ctx.attempt);
    await this.end(payload, ctx, frames);
    return { frames, pieces, node: this.node.nodeId, reused: true };
  }

  private async end(payload: RenderSegmentPayload, ctx: JobContext, frames: number): Promise<void> {
    await this.live.setProgress(payload.progressKey, `f${payload.index}`, frames).catch(() => undefined);
    await this.live.append(payload.channel, { kind: 'end', attempt: ctx.attempt, frames, bytes: 0 }, 'segment');
  }
}
