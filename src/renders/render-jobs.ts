import type { FrameRange } from '../compiler/ffmpeg-args';
import type { OutputProfile } from '../compiler/output-profiles';
import { formatSpec, type OutputFormat, type RenderedFormat } from '../formats/output-formats';
import {
  ASSEMBLY_QUEUE,
  type AssembleRenderPayload,
  type FlowJob,
  JobName,
  queueName,
  type RenderOutputPayload,
  type RenderSegmentPayload,
  type RenderTarget,
  runJobId,
  segmentJobId,
} from '../jobs/job.types';
import { liveChannel, progressKey, segmentChannel } from '../streaming/live-entries';

/** What the API knows of a render when it plans its jobs. */
export interface RenderJobsInput {
  target: Omit<RenderTarget, 'channel' | 'progressKey' | 'profile'>;
  format: RenderedFormat;
  profile: OutputProfile;
  frame?: number;
  routingKey: string;
  parallel: number;
  totalFrames: number;
  fps: number;
  /** The engine's frame ranges (used when the render is distributed). */
  ranges: FrameRange[];
  /**
   * Content addresses of the ranges' segments (same order), where the engine's segments are
   * reused: a stored one is joined from storage and gets no job; the others are stored once rendered.
   */
  reuse?: Array<{ key: string; stored: boolean }>;
}

/** Where the run's followers look: its live channel, and the job whose end is the render's end. */
export interface RunWatch {
  channel: string;
  progressKey: string;
  queue: string;
  jobId: string;
}

export type RenderJobs =
  | { kind: 'output'; watch: RunWatch; job: { queue: string; jobId: string; payload: RenderOutputPayload } }
  | { kind: 'distributed'; watch: RunWatch; lanes: FlowJob[]; assembly: { queue: string; jobId: string; payload: AssembleRenderPayload } };

/** How every segment of a distributed render of `format` is encoded (video only; IVF for VP9). */
export function segmentProfileOf(format: OutputFormat): OutputProfile {
  const spec = formatSpec(format).segment!;
  return { format: format as RenderedFormat, streamable: true, videoOnly: true, ...(spec.container === 'ivf' ? { container: 'ivf' as const } : {}) };
}

/** Whether a render is cut into segments: a distributable format, `parallel` > 1, more than one range. */
export function isDistributed(format: OutputFormat, parallel: number, ranges: FrameRange[]): boolean {
  return formatSpec(format).distributable && parallel > 1 && ranges.length > 1;
}

/**
 * The jobs of one run of a render (pure). Every render runs on render nodes:
 *
 * - one `RenderOutput` job for a whole output (any format; `parallel` 1, gif, stills);
 * - or, distributed, `RenderSegment` jobs in `parallel` lanes plus one `AssembleRender` job
 *   that joins their pieces as they are published. Each lane is a BullMQ flow whose segments
 *   are chained (segment i is the child of segment i + lanes), so a lane runs its segments
 *   first to last and at most `parallel` segments of the render run at once. Segments are
 *   prioritised in frame order: a node that frees up takes what the stream needs next.
 *
 * Job ids are deterministic per run: adding the same run twice adds nothing.
 */
export function planRenderJobs(input: RenderJobsInput): RenderJobs {
  const { target, format, routingKey } = input;
  const queue = queueName(routingKey, target.engine, target.device);
  const channel = liveChannel(target.renderKey, target.run);
  const progress = progressKey(target.renderKey, target.run);
  const runId = runJobId(target.renderKey, target.run);
  // Reused segments cut a render even at parallel 1 (one lane): the ones already stored are not rendered again.
  const segmented = input.reuse ? formatSpec(format).distributable && input.ranges.length > 1 : isDistributed(format, input.parallel, input.ranges);
  if (!segmented) {
    const payload: RenderOutputPayload = { ...target, profile: input.profile, channel, progressKey: progress, totalFrames: input.totalFrames, ...(input.frame !== undefined ? { frame: input.frame } : {}) };
    return { kind: 'output', watch: { channel, progressKey: progress, queue, jobId: runId }, job: { queue, jobId: runId, payload } };
  }
  const segmentProfile = segmentProfileOf(format);
  const segmentIds = input.ranges.map((r) => segmentJobId(target.renderKey, target.run, r));
  const reuse = input.reuse;
  if (reuse && reuse.length !== input.ranges.length) throw new Error(`${reuse.length} segment keys for ${input.ranges.length} ranges`);
  // Stored segments are joined from storage: only the others become jobs, dealt out to the lanes.
  const toRender = input.ranges.map((_, i) => i).filter((i) => !reuse?.[i].stored);
  const lanes = Math.max(1, Math.min(input.parallel, toRender.length));
  const roots: FlowJob[] = [];
  for (let lane = 0; lane < lanes && toRender.length > 0; lane++) {
    let chain: FlowJob | undefined;
    for (let j = lane; j < toRender.length; j += lanes) {
      const i = toRender[j];
      const payload: RenderSegmentPayload = {
        ...target,
        profile: segmentProfile,
        channel: segmentChannel(target.renderKey, target.run, i),
        progressKey: progress,
        range: input.ranges[i],
        index: i,
        ...(reuse ? { segmentKey: reuse[i].key } : {}),
      };
      chain = { name: JobName.RenderSegment, queue, jobId: segmentIds[i], payload, priority: i + 1, children: chain ? [chain] : undefined };
    }
    roots.push(chain!);
  }
  const assembly: AssembleRenderPayload = {
    ...target,
    profile: { format, streamable: true },
    channel,
    progressKey: progress,
    format: format as 'mp4' | 'webm',
    totalFrames: input.totalFrames,
    fps: input.fps,
    ranges: input.ranges,
    segments: input.ranges.map((_, i) => ({
      channel: segmentChannel(target.renderKey, target.run, i),
      queue,
      jobId: segmentIds[i],
      ...(reuse?.[i].stored ? { stored: { key: reuse[i].key, ext: segmentProfile.container ?? format } } : {}),
    })),
    laneRoots: roots.map((r) => r.jobId),
  };
  return { kind: 'distributed', watch: { channel, progressKey: progress, queue: ASSEMBLY_QUEUE, jobId: runId }, lanes: roots, assembly: { queue: ASSEMBLY_QUEUE, jobId: runId, payload: assembly } };
}
