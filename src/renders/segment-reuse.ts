import type { FrameRange } from '../compiler/ffmpeg-args';
import { pictureOf } from '../compiler/render-plan';
import type { ResolvedMovie } from '../compiler/resolve';
import type { OutputFormat } from '../formats/output-formats';
import { paramSpans, planReusableSegments } from '../streaming/reusable-segments';
import { segmentKey } from './render-key';
import { segmentProfileOf } from './render-jobs';

export interface ReusePlanInput {
  project: string;
  movie: string;
  templateVersion: string;
  format: OutputFormat;
  /** Lanes: at least this many × `segmentsPerLane` segments, where the movie is long enough. */
  parallel: number;
  segmentsPerLane: number;
  /** A viewer waits for the stream: a short first segment. */
  watched: boolean;
  /** Play mode: no segment longer than this many frames. */
  maxFrames?: number;
}

/** One segment of a reusable plan: its frames and content address. */
export interface ReusableSegment {
  range: FrameRange;
  key: string;
}

/**
 * The least a segment spans when cut at a change of params. A segment costs ≈0.3 s of set-up
 * (plan, ffmpeg start, filter graph, join), paid by every render that draws it: a span under
 * two seconds saves less than that costs. Measured on the reuse bench: at one second, welcome's
 * 0–1.2 s (photo, then the name) stayed apart from the name's 1.2–6 s, and every render paid
 * for two personal segments instead of one.
 */
export const MIN_SPAN_SEC = 2;

/**
 * A movie's segments with their content addresses (pure): cut where the params read change,
 * each keyed by what is drawn in it. Two tokens differing in a param shown only in the first
 * seconds share every later segment.
 */
export function planReusedSegments(movie: ResolvedMovie, input: ReusePlanInput): ReusableSegment[] {
  // Boundaries on multiples of a tenth of a second, as distributed renders always had (its first segment's length).
  const unit = Math.max(1, Math.round(movie.fps / 10));
  const ranges = planReusableSegments(paramSpans(movie), {
    totalFrames: movie.totalFrames,
    unit,
    minFrames: Math.round(MIN_SPAN_SEC * movie.fps),
    firstFrames: input.watched ? unit : undefined,
    pieces: input.parallel > 1 ? input.parallel * input.segmentsPerLane + (input.watched ? 1 : 0) : undefined,
    maxFrames: input.maxFrames,
  });
  const profile = segmentProfileOf(input.format);
  return ranges.map((range) => ({
    range,
    key: segmentKey({ project: input.project, movie: input.movie, templateVersion: input.templateVersion, profile, range, picture: pictureForKey(movie, range) }),
  }));
}

/** What is drawn in `range`, without what does not draw (the poster frame, the sound, who reads which param). */
function pictureForKey(movie: ResolvedMovie, range: FrameRange): unknown {
  const { posterFrame: _poster, paramUse: _use, audio: _audio, ...picture } = pictureOf(movie, range);
  return picture;
}
