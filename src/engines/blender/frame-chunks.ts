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
  const fair = Math.ceil(totalFrames / Math.max(1, options.parallel));
  const wanted =
    options.secondsPerFrame && options.secondsPerFrame > 0 ? Math.round(options.targetChunkSeconds / options.secondsPerFrame) : options.defaultChunkFrames;
  const size = Math.max(1, Math.min(fair, wanted));
  const chunks: FrameRange[] = [];
  for (let from = 0; from < totalFrames; from += size) chunks.push({ from, to: Math.min(totalFrames, from + size) });
  // A last chunk of a frame or two costs a whole start-up: it joins the one before.
  if (chunks.length > Math.max(1, options.parallel) && chunks[chunks.length - 1].to - chunks[chunks.length - 1].from < size / 2) {
    const last = chunks.pop()!;
    chunks[chunks.length - 1].to = last.to;
  }
  return chunks;
}
