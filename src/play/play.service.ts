import { Inject, Injectable } from '@nestjs/common';
import { MontageError, badInput, notFound, renderFailed, unavailable } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { EngineName } from '../engines/engine';
import { JobName, queueName, type RenderSegmentPayload } from '../jobs/job.types';
import { JOB_QUEUE, LIVE_STREAM } from '../jobs/queue.module';
import type { LiveStreamRepository } from '../repositories/live-stream/live-stream.repository';
import type { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { OUTPUT_STORAGE, type OutputStorage, readWhole } from '../repositories/output-storage/port';
import { initSegmentKey } from '../renders/render-key';
import { segmentProfileOf } from '../renders/render-jobs';
import { PlayFilesRepository } from '../repositories/play-files.repository';
import type { LocatedOutput } from '../renders/render.types';
import { planReusedSegments, type ReusableSegment } from '../renders/segment-reuse';
import { progressKey, segmentChannel } from '../streaming/live-entries';
import { TokensService } from '../tokens/tokens.service';
import { soundOf } from '../compiler/render-plan';
import type { StoredDelivery } from '../delivery/delivery.types';
import { RenderService } from '../render/render.service';
import { RateLimitsService } from '../limits/rate-limits.service';
import { ProjectsService } from '../projects/projects.service';
import { fragmentIndex, initSegmentOf, mediaSegmentOf } from './media-segment';
import { byteRangePlaylist, masterPlaylist, mediaPlaylist } from './playlist';

/** The longest play segment: a seek waits for at most one segment this long to render. */
export const PLAY_SEGMENT_SEC = 1;
/** How long a request waits for its segment to render before it answers 503 (a player retries). */
const SEGMENT_WAIT_MS = 120_000;
/** Outputs whose play cut is kept in memory (a cut is its segments' ranges and addresses). */
const PLANS_KEPT = 500;
/** Play segments are mp4 segments: fragmented MP4, H.264, video only, as distributed renders cut them. */
const FORMAT = 'mp4';

/** A token's movie cut into play segments. */
interface Presentation {
  located: LocatedOutput;
  fps: number;
  segments: ReusableSegment[];
  /** The init segment's content address: shared by every movie of this canvas. */
  initKey: string;
  /** Whether the movie has audio tracks or clips (which may have sound): then it has an audio rendition. */
  hasSound: boolean;
}

/** What a segment request gets: the bytes, and whether the URL named the segment's current content (cacheable for ever). */
export interface PlayBytes {
  body: Buffer;
  current: boolean;
}

/**
 * Play mode: a token's movie as HLS whose segments render on demand. Each segment is a
 * content-addressed stored segment (the same ones distributed renders store and reuse):
 * stored → served; not stored → one `RenderSegment` job, high priority, its id derived from
 * the key (concurrent viewers add it once; the node's lease guards against a distributed
 * render drawing it at the same time), waited for until stored.
 */
@Injectable()
export class PlayService {
  private storageId?: Promise<string | undefined>;
  /** Presentations' cuts by render key, least recently used first. */
  private readonly plans = new Map<string, Omit<Presentation, 'located'>>();

  constructor(
    private readonly tokens: TokensService,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    private readonly files: PlayFilesRepository,
    private readonly renderer: RenderService,
    private readonly limits: RateLimitsService,
    private readonly projects: ProjectsService,
    @Inject(LIVE_STREAM) private readonly live: LiveStreamRepository,
  ) {}

  /**
   * `/v2/play/<token>.m3u8`: the video's media playlist, or with sound a master playlist (the
   * video and the sound as an alternate audio rendition). Segment URIs carry a short form of
   * their key: a new template version makes new URLs.
   */
  async playlist(token: string): Promise<string> {
    const p = await this.presentation(token);
    if (!p.hasSound) return this.videoPlaylistOf(p, `${token}/`);
    // The player asks for the audio playlist next: its mix starts now, beside the first segment it asks for.
    void this.startSound(p).catch(() => undefined);
    const { width, height } = p.located.resolved!;
    // Bandwidth: an estimate (players rank variants by it; there is one): 0.1 bit a pixel, plus the AAC.
    return masterPlaylist({ uri: `${token}/video.m3u8`, width, height, fps: p.fps, bandwidth: width * height * p.fps * 0.1 + 160_000 }, `${token}/audio.m3u8`);
  }

  /** `/v2/play/<token>/video.m3u8`. */
  async videoPlaylist(token: string): Promise<string> {
    return this.videoPlaylistOf(await this.presentation(token), '');
  }

  private videoPlaylistOf(p: Presentation, prefix: string): string {
    return mediaPlaylist(
      p.segments.map((s, i) => ({ frames: s.range.to - s.range.from, uri: `${prefix}seg-${i}.m4s?k=${short(s.key)}` })),
      p.fps,
      `${prefix}init.mp4?k=${short(p.initKey)}`,
    );
  }

  /**
   * `/v2/play/<token>/audio.m3u8`: byte ranges into the movie's sound track (AAC fragmented
   * every 2 s), mixed first on a render node if no movie with this sound has been played.
   */
  async audioPlaylist(token: string, signal: AbortSignal): Promise<string> {
    const p = await this.presentation(token);
    const sound = await this.sound(p, signal);
    const index = fragmentIndex(await this.read(sound.key, sound.ext));
    return byteRangePlaylist(
      `audio.mp4?k=${short(sound.key)}`,
      index.initSize,
      index.fragments.map((f) => ({ offset: f.offset, size: f.size, seconds: f.duration / index.timescale })),
    );
  }

  /** `/v2/play/<token>/audio.mp4`: the sound track file (the player asks for byte ranges). */
  async audioFile(token: string, signal: AbortSignal): Promise<StoredDelivery> {
    const p = await this.presentation(token);
    const { key, ext } = await this.sound(p, signal);
    const stat = await this.storage.stat(key, ext);
    if (!stat) throw renderFailed('the sound track was mixed but is not in storage');
    return { kind: 'stored', key, format: FORMAT, size: stat.size, contentType: 'audio/mp4', open: (range) => this.storage.read(key, ext, range) };
  }

  /** The sound track's key, stored: mixed by a `RenderSound` job when no movie with this sound was played before. */
  private async sound(p: Presentation, signal: AbortSignal): Promise<{ key: string; ext: string }> {
    const started = await this.startSound(p);
    if (started.job) await this.waitForJob(started.job.queue, started.job.id, 'the sound track', signal);
    return started.track;
  }

  /** The sound track, and the job mixing it unless it is stored (added once: its id is the key's). */
  private async startSound(p: Presentation): Promise<{ track: { key: string; ext: string }; job?: { queue: string; id: string } }> {
    if (!p.hasSound) throw notFound('this movie has no sound: its play presentation is video only', [{ field: 'audio', message: 'no sound' }]);
    const { located } = p;
    const track = await this.renderer.soundTrack(this.requestOf(located), 'hls');
    if (await this.storage.stat(track.key, track.ext).catch(() => undefined)) return { track };
    const queue = queueName(located.token.routingkey, EngineName.FfmpegComposite);
    let jobId = `play-${track.key}`;
    const before = await this.queue.jobState(queue, jobId);
    if (before?.state === 'failed' || before?.state === 'completed') jobId = `${jobId}-${Date.now().toString(36)}`;
    await this.queue.enqueue(
      queue,
      JobName.RenderSound,
      {
        ...this.targetOf(located, track.key),
        storageId: await this.storageIdentity(),
        soundKey: track.key,
      },
      jobId,
      { priority: 1 },
    );
    return { track, job: { queue, id: jobId } };
  }

  private requestOf(located: LocatedOutput) {
    return { project: located.token.project, movie: located.movie, params: located.token.params, templateVersion: located.templateVersion };
  }

  private targetOf(located: LocatedOutput, key: string) {
    return {
      engine: EngineName.FfmpegComposite,
      routingKey: located.token.routingkey,
      renderKey: key,
      run: 'play',
      project: located.token.project,
      movie: located.movie,
      params: located.token.params,
      templateVersion: located.templateVersion,
      profile: segmentProfileOf(FORMAT),
      channel: segmentChannel(key, 'play', 0),
      progressKey: progressKey(key, 'play'),
    };
  }

  /**
   * The init segment (ftyp + moov): stored once per canvas; else taken from any stored segment
   * of this movie; else the first (shortest) segment is rendered for it. Then stored for the next movie.
   */
  async init(token: string, k: unknown, signal: AbortSignal): Promise<PlayBytes> {
    const p = await this.presentation(token);
    const current = k === short(p.initKey);
    if (await this.stat(p.initKey)) {
      const stored = await this.read(p.initKey).catch(() => undefined);
      if (stored) return { body: stored, current };
    }
    // Rare (the init is kept per canvas): a few segments looked at, not a long movie's thousands.
    const stored = await Promise.all(p.segments.slice(0, 16).map((s) => this.stat(s.key)));
    const at = stored.findIndex(Boolean);
    const bytes = at >= 0 ? await this.read(p.segments[at].key).catch(() => undefined) : undefined;
    const body = initSegmentOf(bytes ?? (await this.renderedSegment(p, 0, signal)));
    // Not kept is only the next movie's loss.
    await this.storage.storeOutput(p.initKey, FORMAT, (file) => this.files.writeBytes(file, body)).catch(() => undefined);
    return { body, current };
  }

  async segment(token: string, index: number, k: unknown, signal: AbortSignal): Promise<PlayBytes> {
    const p = await this.presentation(token);
    if (index >= p.segments.length) throw notFound(`this movie has ${p.segments.length} segments (seg-0 to seg-${p.segments.length - 1})`, [{ field: 'segment', message: 'no such segment' }]);
    const seg = p.segments[index];
    const bytes = (await this.stat(seg.key)) ? await this.read(seg.key).catch(() => undefined) : undefined;
    const file = bytes ?? (await this.renderedSegment(p, index, signal));
    return { body: mediaSegmentOf(file, seg.range.from, p.fps), current: k === short(seg.key) };
  }

  /** Whether the sound track is stored (HEAD: nothing renders). */
  async soundStored(token: string): Promise<boolean> {
    const p = await this.presentation(token);
    if (!p.hasSound) throw notFound('this movie has no sound: its play presentation is video only', [{ field: 'audio', message: 'no sound' }]);
    const track = await this.renderer.soundTrack(this.requestOf(p.located), 'hls');
    return !!(await this.storage.stat(track.key, track.ext).catch(() => undefined));
  }

  /** Whether the init segment is stored (HEAD: nothing renders). */
  async initStored(token: string): Promise<boolean> {
    const p = await this.presentation(token);
    return !!(await this.stat(p.initKey));
  }

  /** Whether a segment is stored (HEAD: nothing renders). */
  async segmentStored(token: string, index: number): Promise<boolean> {
    const p = await this.presentation(token);
    if (index >= p.segments.length) throw notFound(`this movie has ${p.segments.length} segments`, [{ field: 'segment', message: 'no such segment' }]);
    return !!(await this.stat(p.segments[index].key));
  }

  private async presentation(token: string): Promise<Presentation> {
    const located = await this.tokens.locate(token, FORMAT, {});
    const { resolved } = located;
    if (!resolved || (located.engine ?? EngineName.FfmpegComposite) !== EngineName.FfmpegComposite) {
      throw badInput('play mode plays movies the compositor renders; this one renders with Blender: use /v2/get/<token>.mp4', [{ field: 'token', message: 'not a compositor movie' }]);
    }
    // The cut and its addresses hash the movie once per segment: made once per output (its render key names the template version and params).
    const known = this.plans.get(located.key);
    if (known) {
      this.plans.delete(located.key);
      this.plans.set(located.key, known); // most recently used last
      return { located, ...known };
    }
    const segments = planReusedSegments(resolved, {
      project: located.token.project,
      movie: located.movie,
      templateVersion: located.templateVersion,
      format: FORMAT,
      parallel: 1,
      segmentsPerLane: 1,
      watched: true, // a short first segment: playing from the start begins at once
      maxFrames: Math.round(PLAY_SEGMENT_SEC * resolved.fps),
    });
    const initKey = initSegmentKey({ profile: segmentProfileOf(FORMAT), width: resolved.width, height: resolved.height, fps: resolved.fps });
    const sound = soundOf(resolved);
    const hasSound = sound.audio.length > 0 || sound.scenes.some((scene) => scene.layers.length > 0);
    const plan = { fps: resolved.fps, segments, initKey, hasSound };
    this.plans.set(located.key, plan);
    if (this.plans.size > PLANS_KEPT) this.plans.delete(this.plans.keys().next().value!);
    return { located, ...plan };
  }

  /** Renders segment `index` on a render node (or joins the job already rendering it) and reads it once stored. */
  private async renderedSegment(p: Presentation, index: number, signal: AbortSignal): Promise<Buffer> {
    const { located } = p;
    const seg = p.segments[index];
    const queue = queueName(located.token.routingkey, EngineName.FfmpegComposite);
    let jobId = `play-${seg.key}`;
    // A failed job keeps its id for a day, a completed one for an hour: one that ended without
    // leaving the segment in storage (failed, or stored and since removed) is tried again under a new id.
    const before = await this.queue.jobState(queue, jobId);
    const again = before?.state === 'failed' || before?.state === 'completed';
    if (again) jobId = `${jobId}-${Date.now().toString(36)}`;
    // The request that adds the job pays for it, as a GET that starts a render does (running renders, daily pixel-seconds).
    const resolved = located.resolved!;
    const release =
      !before || again
        ? await this.limits.admitRender(await this.projects.get(located.token.project), located.token.keyId, seg.key, (resolved.width * resolved.height * (seg.range.to - seg.range.from)) / resolved.fps)
        : undefined;
    const payload: RenderSegmentPayload = {
      ...this.targetOf(located, seg.key),
      storageId: await this.storageIdentity(),
      channel: segmentChannel(seg.key, 'play', index),
      range: seg.range,
      index,
      segmentKey: seg.key,
    };
    // Priority 1: level with a distributed render's first segment, ahead of all its others (a viewer waits for this one).
    await this.queue.enqueue(queue, JobName.RenderSegment, payload, jobId, { priority: 1 }).catch((err: unknown) => {
      release?.();
      throw err;
    });
    if (release) {
      // The adder follows the job to its end, whoever waits: the limits slot is the job's, not the
      // request's (a viewer leaving does not free it), and the job's published pieces, which no
      // one reads (play reads the stored file), go from Redis.
      void this.queue
        .waitFor(queue, jobId, { outageTimeoutMs: this.config.queueOutageTimeoutMs, pollMs: 1000 })
        .catch(() => undefined)
        .finally(() => {
          release();
          void this.live.remove(payload.channel).catch(() => undefined);
        });
    }
    await this.waitForJob(queue, jobId, `segment ${index}`, signal);
    await this.tokens.notePiece(located.token._id, `${seg.key}.${FORMAT}`).catch(() => undefined);
    const bytes = await this.read(seg.key).catch(() => undefined);
    if (!bytes) throw renderFailed(`segment ${index} was rendered but is not in storage`);
    return bytes;
  }

  /** Waits for a job to end, at most SEGMENT_WAIT_MS: its failure is a 500 with its reason; too long a 503. */
  private async waitForJob(queue: string, jobId: string, what: string, signal: AbortSignal): Promise<void> {
    const waited = AbortSignal.any([signal, AbortSignal.timeout(SEGMENT_WAIT_MS)]);
    try {
      await this.queue.waitFor(queue, jobId, { signal: waited, outageTimeoutMs: this.config.queueOutageTimeoutMs, pollMs: 1000 });
    } catch (err) {
      if (err instanceof MontageError) throw err;
      if (waited.aborted && !signal.aborted) throw unavailable(`${what} is still rendering after ${SEGMENT_WAIT_MS / 1000} s; request it again`, 2);
      throw renderFailed(`${what} failed to render: ${(err as Error).message}`);
    }
  }

  private storageIdentity(): Promise<string | undefined> {
    this.storageId ??= this.storage.identity().catch(() => undefined);
    return this.storageId;
  }

  private stat(key: string) {
    return this.storage.stat(key, FORMAT).catch(() => undefined);
  }

  private read(key: string, ext: string = FORMAT): Promise<Buffer> {
    return readWhole(this.storage, key, ext);
  }
}

/** Enough of a segment key to tell versions apart in a URL. */
const short = (key: string) => key.slice(2, 14);
