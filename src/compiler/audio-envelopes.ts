import { num } from './easing';
import { type Keyframe, keyframesExpr, valueAt } from './keyframes';

/** How a track is lowered while another plays (`duck` of an audio track). */
export interface DuckSpec {
  /** Index in the movie's `audio` of the track that, while it plays, lowers this one. */
  under: number;
  /** The level while it plays, as a fraction of the track's own. */
  to: number;
  attackSec: number;
  releaseSec: number;
}

/**
 * The gain of a ducked track, as keyframes in seconds from that track's start. It comes from
 * where the other track is placed (start and length), not from listening to it: the level is
 * exactly `to` the whole time the other track plays, whatever its loudness or its pauses, the
 * drop can finish before the first word (a compressor only reacts after it), and every frame
 * range of the movie gets the same curve. Linear ramps: `attack` ending as the other track
 * starts, `release` starting as it ends. Empty when the other track never plays.
 */
export function duckKeyframes(trackStartSec: number, other: { startSec: number; playSec: number }, duck: DuckSpec): Keyframe[] {
  if (other.playSec <= 0) return [];
  const begin = other.startSec - trackStartSec;
  const end = begin + other.playSec;
  const raw: Keyframe[] = [
    { at: begin - duck.attackSec, value: 1 },
    { at: begin, value: duck.to },
    { at: end, value: duck.to },
    { at: end + duck.releaseSec, value: 1 },
  ];
  return fromZero(raw);
}

/** Keyframes from 0 on: what came before the track's start is summed up in its value at 0. */
function fromZero(track: Keyframe[]): Keyframe[] {
  if (track[0].at >= 0) return track;
  const later = track.filter((k) => k.at > 0);
  return [{ at: 0, value: valueAt(track, 0) }, ...later];
}

/**
 * A gain that follows keyframes (seconds from the track's start, which is `t` = 0 in the
 * track's chain) as audio filters. The expression is evaluated once per 10 ms block of samples
 * (480 at 48 kHz): steps no ear hears, and a keyframe on a 10 ms boundary is met exactly.
 */
export function keyframedGain(track: readonly Keyframe[]): string[] {
  if (track.every((k) => k.value === track[0].value)) return track[0].value === 1 ? [] : [`volume=${num(track[0].value)}`];
  return ['asetnsamples=n=480:p=0', `volume=volume='${keyframesExpr(track, 0)}':eval=frame`];
}
