import type { FrameRange } from '../compiler/ffmpeg-args';

export interface SegmentPlanOptions {
  fps: number;
  /** Frames per GOP; every segment starts on a GOP boundary (default: one second). */
  gopFrames?: number;
  /** Rough length of the first segment, kept short so a stream can start fast (default 1 s). */
  firstSegmentSec?: number;
  /** How many render nodes may work on this movie at once. */
  parallel: number;
  /** Segments per node after the first, so a slow node delays the end less (default 2 when parallel > 1). */
  segmentsPerNode?: number;
}

/**
 * Splits frames [0, totalFrames) into segments for distributed rendering. Pure.
 *
 * - every boundary is a multiple of the GOP, so the joined stream keeps a regular keyframe rhythm;
 * - the first segment is about a second long: its bytes are what a viewer waits for;
 * - the rest is cut into `parallel × segmentsPerNode` near-equal GOP-aligned pieces.
 */
export function planSegments(totalFrames: number, options: SegmentPlanOptions): FrameRange[] {
  if (!Number.isInteger(totalFrames) || totalFrames <= 0) throw new Error(`totalFrames must be a positive integer, got ${totalFrames}`);
  if (!Number.isInteger(options.parallel) || options.parallel < 1) throw new Error(`parallel must be ≥ 1, got ${options.parallel}`);
  const gop = Math.max(1, Math.round(options.gopFrames ?? options.fps));
  const gops = Math.ceil(totalFrames / gop);
  const firstGops = Math.min(gops, Math.max(1, Math.round(((options.firstSegmentSec ?? 1) * options.fps) / gop)));
  const rest = gops - firstGops;
  const pieces = rest === 0 ? 0 : Math.min(rest, options.parallel === 1 ? 1 : options.parallel * (options.segmentsPerNode ?? 2));

  const boundaries = [0, firstGops];
  for (let i = 1; i <= pieces; i++) boundaries.push(firstGops + Math.round((rest * i) / pieces));
  return boundaries
    .slice(0, -1)
    .map((g, i) => ({ from: g * gop, to: Math.min(totalFrames, boundaries[i + 1] * gop) }))
    .filter((r) => r.to > r.from);
}

/**
 * How the API cuts a distributed render. The first segment is a fifth of a second: it is
 * what a viewer waits for, and a segment costs about 0.3 s of set-up (plan, ffmpeg start,
 * filter graph, check) before its frames. Then one piece per node, for the same reason, or
 * more (SEGMENTS_PER_LANE) so that the stream's early pieces land sooner and playback starts.
 * Boundaries fall on multiples of the first segment's length; each segment starts with a
 * keyframe and has one every second inside.
 */
export function distributedPlanOptions(fps: number, parallel: number, segmentsPerNode = 1): SegmentPlanOptions {
  const first = Math.max(1, Math.round(fps / 10));
  return { fps, parallel, gopFrames: first, firstSegmentSec: first / fps, segmentsPerNode };
}
