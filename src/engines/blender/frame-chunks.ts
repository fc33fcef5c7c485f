import { createHash } from 'node:crypto';
import type { FrameRange } from '../../compiler/ffmpeg-args';

export interface FrameChunkOptions {
  /** Lanes of the render: at least this many chunks when there are frames enough. */
  parallel: number;
  /** Frames per chunk before any frame of this scene was timed. */
  defaultChunkFrames: number;
  /** What a chunk should take once the time per frame is known (AWS Deadline's adaptive chunks). */
  targetChunkSeconds: number;
  /** Observed render time per frame of this scene and settings, on the nodes that ran it. */
  secondsPerFrame?: number;
}

/**
 * Contiguous chunks of a Blender render (pure). Frames are independent, so chunks are only
 * about start-up: long enough that loading Blender and the scene is a small share of a
 * chunk, short enough that every lane has work and a failed chunk costs little.
 */
export function planFrameChunks(totalFrames: number, options: FrameChunkOptions): FrameRange[] {
  if (!Number.isInteger(totalFrames) || totalFrames < 1) return [];
  const parallel = Math.max(1, options.parallel);
  const wanted =
    options.secondsPerFrame && options.secondsPerFrame > 0 ? Math.round(options.targetChunkSeconds / options.secondsPerFrame) : options.defaultChunkFrames;
  // About as many chunks as the wanted size gives (rounded: no tiny last chunk that costs a
  // whole start-up), a multiple of the lanes (each lane runs every `parallel`-th chunk: 5 chunks
  // on 2 lanes would leave one lane 50 % more to do), never fewer than the lanes while there
  // are frames enough; sizes within a frame.
  const byWanted = Math.round(totalFrames / Math.max(1, wanted));
  const rounds = Math.min(Math.max(1, Math.round(byWanted / parallel)), Math.max(1, Math.floor(totalFrames / parallel)));
  const count = Math.min(totalFrames, rounds * parallel);
  const chunks: FrameRange[] = [];
  for (let i = 0; i < count; i++) chunks.push({ from: Math.floor((i * totalFrames) / count), to: Math.floor(((i + 1) * totalFrames) / count) });
  return chunks;
}

/** Which timings are alike: one template version, one set of render settings and size (pure). */
export function sceneTimingKey(templateId: string, version: string, settings: object, canvas: { width: number; height: number }): string {
  const hash = createHash('sha256').update(JSON.stringify([settings, canvas.width, canvas.height])).digest('hex').slice(0, 12);
  return `blender:${templateId}@${version}:${hash}`;
}

/**
 * What a chunk's frames took (pure): the steady time per frame (the median gap between saved
 * frames) and the start-up before the first (loading Blender and the scene, building it).
 */
export function chunkTiming(startedAt: number, savedAt: number[]): { secondsPerFrame: number; startupSeconds: number; totalSeconds: number } | undefined {
  // One frame (a still) cannot tell its frame from the start-up: no timing, or it would size the next video's chunks.
  if (savedAt.length < 2) return undefined;
  const total = (savedAt[savedAt.length - 1] - startedAt) / 1000;
  const first = (savedAt[0] - startedAt) / 1000;
  const gaps = savedAt.slice(1).map((t, i) => (t - savedAt[i]) / 1000).sort((a, b) => a - b);
  const median = gaps[Math.floor(gaps.length / 2)];
  return { secondsPerFrame: median, startupSeconds: Math.max(0, first - median), totalSeconds: total };
}
