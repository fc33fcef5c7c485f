import type { FrameRange } from '../compiler/ffmpeg-args';
import type { ResolvedMovie, TimedLayer } from '../compiler/resolve';

/** Frames [from, to) in which the visible scenes and layers read the same params. */
export interface ParamSpan extends FrameRange {
  params: string[];
}

/**
 * The movie cut where the params its visible scenes and layers read change (pure). Two
 * tokens that differ in a param render the spans that do not read it alike, frame for frame.
 * A stacked text layer reads what the text layer above it reads (that one's height places it).
 */
export function paramSpans(movie: ResolvedMovie): ParamSpan[] {
  const use = movie.paramUse ?? { scenes: [], layers: {} };
  const layerUse = new Map<TimedLayer, string[]>();
  for (const scene of movie.scenes) {
    let aboveText: string[] = [];
    for (const layer of scene.layers) {
      const own = use.layers[layer.id] ?? [];
      const spec = layer.spec as { type: string; stack?: unknown };
      const reads = spec.type === 'text' && spec.stack ? [...new Set([...own, ...aboveText])] : own;
      layerUse.set(layer, reads);
      if (spec.type === 'text') aboveText = reads;
    }
  }
  const cuts = new Set<number>([0, movie.totalFrames]);
  for (const scene of movie.scenes) {
    cuts.add(scene.startFrame).add(scene.endFrame);
    for (const layer of scene.layers) cuts.add(layer.startFrame).add(layer.endFrame);
  }
  const points = [...cuts].filter((f) => f >= 0 && f <= movie.totalFrames).sort((a, b) => a - b);
  const spans: ParamSpan[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const at = points[i];
    const names = new Set<string>();
    movie.scenes.forEach((scene, s) => {
      if (scene.startFrame > at || scene.endFrame <= at) return;
      for (const n of use.scenes[s] ?? []) names.add(n);
      for (const layer of scene.layers) if (layer.startFrame <= at && layer.endFrame > at) for (const n of layerUse.get(layer)!) names.add(n);
    });
    const params = [...names].sort();
    const last = spans[spans.length - 1];
    if (last && sameNames(last.params, params)) last.to = points[i + 1];
    else spans.push({ from: at, to: points[i + 1], params });
  }
  return spans;
}

export interface ReusablePlanOptions {
  totalFrames: number;
  /** Boundaries fall on multiples of this many frames (each segment starts with a keyframe). */
  unit: number;
  /** A span shorter than this joins a neighbour: a segment costs set-up time of its own. */
  minFrames: number;
  /** A short first segment (frames), so a viewer's stream starts fast; none for renders nobody watches. */
  firstFrames?: number;
  /** At least this many segments (for parallel lanes): the longest ones are halved. */
  pieces?: number;
  /** No segment longer than this (play mode: a player waits for a whole segment). */
  maxFrames?: number;
}

/**
 * Frame ranges for a movie whose segments are reused across tokens (pure): cut where the
 * params read change (snapped to `unit`); a short span joins the neighbour it adds fewest
 * params to (so a span every token shares stays apart); then the optional short
 * first segment, then halving or splitting long ones. The cuts depend on the template and
 * the options, not on param values, except where a value changes the timing itself.
 */
export function planReusableSegments(spans: ParamSpan[], options: ReusablePlanOptions): FrameRange[] {
  const { totalFrames, unit } = options;
  if (!Number.isInteger(totalFrames) || totalFrames <= 0) throw new Error(`totalFrames must be a positive integer, got ${totalFrames}`);
  if (!Number.isInteger(unit) || unit < 1) throw new Error(`unit must be a positive integer, got ${unit}`);
  const snap = (f: number) => Math.min(totalFrames, Math.round(f / unit) * unit);
  // Snapped spans; two that land on one boundary keep the union of what they read.
  let pieces: ParamSpan[] = [];
  for (const span of spans) {
    const from = snap(span.from);
    const to = span.to >= totalFrames ? totalFrames : snap(span.to);
    if (to <= from) {
      const last = pieces[pieces.length - 1];
      if (last) last.params = union(last.params, span.params);
      continue;
    }
    pieces.push({ from, to, params: span.params });
  }
  if (pieces.length === 0) pieces = [{ from: 0, to: totalFrames, params: [] }];
  pieces[0].from = 0;
  pieces[pieces.length - 1].to = totalFrames;

  while (pieces.length > 1) {
    let shortest = -1;
    for (let i = 0; i < pieces.length; i++) {
      const len = pieces[i].to - pieces[i].from;
      if (len < options.minFrames && (shortest < 0 || len < pieces[shortest].to - pieces[shortest].from)) shortest = i;
    }
    if (shortest < 0) break;
    const s = pieces[shortest];
    const left = pieces[shortest - 1];
    const right = pieces[shortest + 1];
    const into = !right || (left && better(left.params, right.params, s.params)) ? shortest - 1 : shortest + 1;
    const other = pieces[into];
    pieces.splice(Math.min(into, shortest), 2, { from: Math.min(other.from, s.from), to: Math.max(other.to, s.to), params: union(other.params, s.params) });
  }

  let ranges: FrameRange[] = pieces.map(({ from, to }) => ({ from, to }));
  const first = options.firstFrames === undefined ? 0 : snap(options.firstFrames);
  if (first > 0 && first < ranges[0].to) ranges.splice(0, 1, { from: 0, to: first }, { from: first, to: ranges[0].to });
  if (options.maxFrames !== undefined) {
    const max = Math.max(unit, options.maxFrames);
    ranges = ranges.flatMap((r) => {
      const n = Math.ceil((r.to - r.from) / max);
      return n <= 1 ? [r] : splitEvenly(r, n, unit);
    });
  }
  while (options.pieces !== undefined && ranges.length < options.pieces) {
    let longest = 0;
    ranges.forEach((r, i) => r.to - r.from > ranges[longest].to - ranges[longest].from && (longest = i));
    const r = ranges[longest];
    if (r.to - r.from < 2 * unit) break;
    ranges.splice(longest, 1, ...splitEvenly(r, 2, unit));
  }
  return ranges;
}

/** `r` in `n` near-equal parts cut on multiples of `unit` (fewer if too short). */
function splitEvenly(r: FrameRange, n: number, unit: number): FrameRange[] {
  const units = Math.floor((r.to - r.from) / unit);
  const parts = Math.max(1, Math.min(n, units));
  const cuts = [r.from];
  for (let i = 1; i < parts; i++) cuts.push(r.from + Math.round((units * i) / parts) * unit);
  cuts.push(r.to);
  return cuts.slice(0, -1).map((from, i) => ({ from, to: cuts[i + 1] })).filter((x) => x.to > x.from);
}

/**
 * Whether a short span reading `short` is better joined to `a` than to `b`: the one it adds
 * fewer params to (a long span that starts reading the name is no longer shared by tokens
 * differing in the name), then the more alike, then `a`.
 */
function better(a: string[], b: string[], short: string[]): boolean {
  const added = (n: string[]) => short.filter((p) => !n.includes(p)).length;
  if (added(a) !== added(b)) return added(a) < added(b);
  return likeness(a, short) >= likeness(b, short);
}

function sameNames(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

function union(a: string[], b: string[]): string[] {
  return [...new Set([...a, ...b])].sort();
}

/** How alike two sets of names are (Jaccard); two empty sets are alike. */
function likeness(a: string[], b: string[]): number {
  const all = new Set([...a, ...b]);
  if (all.size === 0) return 1;
  return a.filter((n) => b.includes(n)).length / all.size;
}
