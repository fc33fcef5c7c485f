import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  type AssembleRenderPayload,
  type AssembleRenderResult,
  EngineRegistry,
  Fmp4Joiner,
  formatSpec,
  framesInFile,
  isPermanent,
  IvfJoiner,
  MontageError,
  JOB_QUEUE,
  type JobContext,
  type JobQueueRepository,
  LIVE_STREAM,
  LiveFilesRepository,
  type LiveStreamRepository,
  MONTAGE_CONFIG,
  type MontageConfig,
  OUTPUT_STORAGE,
  type OutputStorage,
  readWhole,
  PieceSequence,
  renderFailed,
  type SegmentJoiner,
  unavailable,
} from '../src/render-node-kit';
import { NodeJobs, requestOf } from './node-jobs';
import { PiecePublisher } from './piece-publisher';

/** How long a read waits for a segment's next piece before looking at its job. */
const IDLE_CHECK_MS = 1000;

/**
 * `AssembleRender`: a distributed render's segments joined in frame order as their pieces
 * are published (each piece once, whichever attempt published it), the movie's sound mixed
 * once by the same ffmpeg, the result published on the run's live channel piece by piece and
 * then stored. Runs on a node beside its renders (its own queue and concurrency): it copies
 * video and encodes sound only.
 */
@Injectable()
export class AssemblyJob {
  private readonly logger = new Logger('RenderNode');

  constructor(
    private readonly node: NodeJobs,
    private readonly engines: EngineRegistry,
    private readonly publisher: PiecePublisher,
    private readonly files: LiveFilesRepository,
    @Inject(LIVE_STREAM) private readonly live: LiveStreamRepository,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  run(payload: AssembleRenderPayload, ctx: JobContext): Promise<AssembleRenderResult> {
    return this.node.run(payload, ctx, async () => {
      const engine = this.engines.get(payload.engine);
      const { format } = payload;
      const file = this.files.livePath(payload.renderKey, format);
      let sound: string | undefined;
      const stop = new AbortController();
      const onAbort = () => stop.abort();
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      try {
        sound = await this.soundTrack(payload, stop.signal);
        const video = this.joined(payload, stop.signal);
        const muxing = engine.muxSound(video, sound, file, format, stop.signal);
        muxing.catch(() => stop.abort()); // the segment readers stop with the muxer
        await this.publisher.publishWhileWriting(file, formatSpec(format).fragments!, payload.channel, ctx.attempt, muxing, undefined, stop);
        await this.live.append(payload.channel, { kind: 'written', attempt: ctx.attempt });
        const bytes = await this.storage.storeOutput(payload.renderKey, format, (out) => engine.remux(file, out, format));
        await this.live.append(payload.channel, { kind: 'end', attempt: ctx.attempt, frames: payload.totalFrames, bytes });
        // Joined and stored: the segments' channels are not needed any more.
        await Promise.all(payload.segments.map((s) => this.live.remove(s.channel).catch(() => undefined)));
        return { bytes, frames: payload.totalFrames, node: this.node.nodeId };
      } catch (err) {
        // Failed for good: segments not started yet are not rendered for nothing.
        if (!ctx.signal.aborted && (ctx.lastAttempt || isPermanent(err))) {
          const queue = payload.segments[0]?.queue;
          await Promise.all(payload.laneRoots.map((id) => this.queue.removeFlow(queue, id).catch(() => undefined)));
        }
        throw err;
      } finally {
        stop.abort();
        ctx.signal.removeEventListener('abort', onAbort);
        await this.files.remove(file);
        if (sound) await this.files.remove(sound);
      }
    });
  }

  /**
   * The movie's sound track as a local file: the stored one when a render with the same sound
   * made it before, else mixed here and stored for the next (keyed by what it is mixed from).
   */
  private async soundTrack(payload: AssembleRenderPayload, signal: AbortSignal): Promise<string> {
    const track = await this.engines.get(payload.engine).soundTrack(requestOf(payload), payload.format);
    const file = this.files.livePath(`${payload.renderKey}-sound`, track.ext);
    try {
      if (await this.storage.stat(track.key, track.ext).catch(() => undefined)) {
        const copied = await this.storage.read(track.key, track.ext).then((stream) => this.files.writeFrom(stream, file)).then(() => true, () => false);
        if (copied) return file;
      }
      await track.make(file, signal);
      await this.storage.storeOutput(track.key, track.ext, (out) => this.files.copy(file, out)).catch((err: Error) => this.logger.warn(`sound ${track.key} not stored for reuse: ${err.message}`));
      return file;
    } catch (err) {
      await this.files.remove(file);
      throw err;
    }
  }

  private async readStored(key: string, ext: string): Promise<Buffer> {
    // Gone since the API planned with it (retention): this run cannot finish; the next request plans again.
    return readWhole(this.storage, key, ext).catch((err: Error) => {
      throw renderFailed(`reused segment ${key} could not be read: ${err.message}`);
    });
  }

  /** The joined video: each segment's pieces in order, from the start of its channel, as they come. */
  private async *joined(payload: AssembleRenderPayload, signal: AbortSignal): AsyncGenerator<Buffer> {
    const joiner: SegmentJoiner = formatSpec(payload.format).segment!.joiner === 'fmp4' ? new Fmp4Joiner(payload.fps) : new IvfJoiner(payload.fps, payload.totalFrames);
    const reader = this.live.reader();
    try {
      for (let i = 0; i < payload.ranges.length; i++) {
        const range = payload.ranges[i];
        const segment = payload.segments[i];
        if (segment.stored) {
          // Reused: another render drew these frames, and storage has them (whole: checked, as a node checks what it publishes).
          const bytes = await this.readStored(segment.stored.key, segment.stored.ext);
          const kind = formatSpec(payload.format).segment!.fragments;
          let frames = -1;
          try {
            frames = framesInFile(kind, bytes);
          } catch {
            // counted as none: malformed
          }
          if (frames !== range.to - range.from) {
            // Removed, so that the next request renders it again rather than failing on it too.
            await this.storage.remove(segment.stored.key, segment.stored.ext).catch(() => undefined);
            throw renderFailed(`reused segment ${segment.stored.key} holds ${Math.max(frames, 0)} frames, not ${range.to - range.from}: removed; request the output again`, [], { permanent: true });
          }
          yield joiner.push(bytes, range.from);
          continue;
        }
        const sequence = new PieceSequence();
        let after = '0';
        let outageSince: number | undefined;
        let missing = 0;
        let ended = false;
        while (!ended) {
          if (signal.aborted) throw renderFailed('assembly stopped');
          let entries;
          try {
            entries = await reader.read(segment.channel, after, IDLE_CHECK_MS);
            outageSince = undefined;
          } catch {
            // Redis away: wait for it, within the outage bound.
            outageSince ??= Date.now();
            if (Date.now() - outageSince > this.config.queueOutageTimeoutMs) throw unavailable(`Redis was unreachable for more than ${Math.round(this.config.queueOutageTimeoutMs / 1000)} s while joining segments`);
            await new Promise((r) => setTimeout(r, 200));
            continue;
          }
          if (entries.length === 0) {
            // Nothing for a while: is the segment's job still alive?
            const state = await this.queue.jobState(segment.queue, segment.jobId).catch(() => ({ state: 'unknown' }) as { state: string; failedReason?: string });
            if (state?.state === 'failed') throw renderFailed(`segment ${range.from}–${range.to} failed on every attempt: ${state.failedReason ?? 'no reason given'}`, [], { permanent: true });
            // Gone, or done while its channel has nothing more for us (expired): it will not come.
            if ((!state || state.state === 'completed') && ++missing >= 3) throw renderFailed(`segment ${range.from}–${range.to} is no longer in the queue or on its channel`);
            continue;
          }
          missing = 0;
          for (const { id, entry } of entries) {
            after = id;
            if (entry.kind === 'data') {
              if (sequence.accept(entry)) yield joiner.push(entry.data, range.from);
            } else if (entry.kind === 'end') {
              if (!sequence.endsWith(entry)) continue; // a start presumed dead finishing late
              if (sequence.taken === 0) throw renderFailed(`segment ${range.from}–${range.to} ended without any piece`);
              ended = true;
              break;
            } else if (entry.kind === 'error') {
              // The segment's own failure, with its kind (a 422 stays a 422); final: not retried here.
              throw new MontageError(entry.errorKind ?? 'render_failed', entry.message, entry.details ?? [], { permanent: true });
            }
          }
        }
      }
    } finally {
      reader.close();
    }
  }
}
