import { ease, easeExpr, num } from './easing';

/** Properties a layer's keyframes may drive (audio tracks take `volume`). */
export const ANIMATABLE = ['opacity', 'x', 'y', 'scale', 'rotation', 'blur', 'volume'] as const;
export type Animatable = (typeof ANIMATABLE)[number];

/**
 * One keyframe: the value a property has `at` seconds after its layer (or track) starts. The
 * `easing` is the curve that arrives at this keyframe from the previous one (default linear).
 */
export interface Keyframe {
  at: number;
  value: number;
  easing?: string;
}
export type KeyframeTracks = Partial<Record<Animatable, Keyframe[]>>;

/** A track's value `sec` seconds after its layer starts: held before the first and after the last keyframe. */
export function valueAt(track: readonly Keyframe[], sec: number): number {
  if (track.length === 0) throw new Error('an empty keyframe track has no value');
  if (sec <= track[0].at) return track[0].value;
  for (let i = 1; i < track.length; i++) {
    const b = track[i];
    if (sec < b.at) {
      const a = track[i - 1];
      const p = b.at === a.at ? 1 : (sec - a.at) / (b.at - a.at);
      return a.value + (b.value - a.value) * ease(b.easing ?? 'linear', p);
    }
  }
  return track[track.length - 1].value;
}

/** Where a track is wrong: keyframes must be in time order. Index of the first that is not, or -1. */
export function unorderedKeyframe(track: readonly Keyframe[]): number {
  for (let i = 1; i < track.length; i++) if (track[i].at < track[i - 1].at) return i;
  return -1;
}

/**
 * Commands for filters that take no time expression (lut's alpha, gblur's sigma) or whose value
 * is computed here (keyframed positions): one `sendcmd` filter that sets, on each frame of
 * [first, last) where they change, the values `commandsAt(frame)` gives. Frame k's interval is
 * centred on its timestamp (k/fps ± half a frame), so no rounding can make ffmpeg miss or repeat
 * it; the last interval is open-ended, so the final value holds. Returns undefined when nothing
 * changes (the filters' initial options already say it all).
 */
export function sendcmdFilter(fps: number, first: number, last: number, commandsAt: (frame: number) => string[]): string | undefined {
  const intervals: string[] = [];
  let previous = commandsAt(first).join(',');
  let runStart = first;
  const flush = (endFrame: number | undefined, commands: string) => {
    const start = num(Math.max(0, (runStart - 0.5) / fps));
    const end = endFrame === undefined ? '' : `-${num((endFrame - 0.5) / fps)}`;
    intervals.push(`${start}${end} [enter] ${commands}`);
  };
  let changed = false;
  for (let frame = first + 1; frame < last; frame++) {
    const commands = commandsAt(frame).join(',');
    if (commands === previous) continue;
    changed = true;
    flush(frame, previous);
    previous = commands;
    runStart = frame;
  }
  if (!changed) return undefined;
  // The last run's interval has no end: after the last change the value holds.
  intervals.push(`${num(Math.max(0, (runStart - 0.5) / fps))}-${num(1e6)} [enter] ${previous}`);
  return `sendcmd=c='${intervals.join(';')}'`;
}

/**
 * A track as an ffmpeg expression of time (`t`, seconds of the movie), for filters that
 * evaluate expressions per frame (overlay's x and y, scale's size, rotate's angle). Exact at
 * every keyframe; between them the same curves as `valueAt` (cubic-beziers to within 0.3 %).
 */
export function keyframesExpr(track: readonly Keyframe[], startSec: number, time = 't'): string {
  const T = `(${time}-${num(startSec)})`;
  let expr = num(track[track.length - 1].value);
  for (let i = track.length - 1; i >= 1; i--) {
    const a = track[i - 1];
    const b = track[i];
    if (b.at === a.at) continue; // a jump: the later keyframe holds from its time on
    const p = `clip((${T}-${num(a.at)})/${num(b.at - a.at)},0,1)`;
    const segment = a.value === b.value ? num(a.value) : `${num(a.value)}+${num(b.value - a.value)}*${easeExpr(b.easing ?? 'linear', p)}`;
    expr = `if(lt(${T},${num(b.at)}),${segment},${expr})`;
  }
  return `(${expr})`;
}
