import { badInput } from '../common/errors';

/** Blender's highest frame number (MAXFRAME): `-s/-e/-f` refuse anything above it. */
export const MAX_FRAME = 1_048_574;
/** One job renders at most this many frames: its settled document keeps a state per frame (Mongo caps a document at 16 MB). */
export const MAX_FRAMES = 10_000;
export const MAX_SPEC_CHARS = 1000;

const PART = /^(\d{1,7})(?:-(\d{1,7})(?:\[(\d{1,7})\])?)?$/;

/**
 * A frames spec → the scene frames it names, sorted, each once. Fox's `a-b[step]`
 * (`1-10[1]`, `1073-1073[1]`, `1-100[5]`), plain ranges `a-b`, single frames, and lists of
 * any of these separated by commas (`1,5,10-20`, `1-9[2],20`). Errors name the bad part.
 */
export function parseFramesSpec(spec: unknown, field = 'frames'): number[] {
  const bad = (message: string) => badInput(`${field}: ${message}`, [{ field, message }]);
  if (typeof spec !== 'string') throw bad('must be a string such as "1-10[1]" or "1,5,10-20"');
  if (spec.length > MAX_SPEC_CHARS) throw bad(`is longer than ${MAX_SPEC_CHARS} characters`);
  const text = spec.replace(/\s+/g, '');
  if (!text) throw bad('is empty');
  const frames = new Set<number>();
  for (const part of text.split(',')) {
    // The part is echoed back: only printable ASCII of bounded length.
    const shown = JSON.stringify(part.replace(/[^\x20-\x7e]/g, '?').slice(0, 40));
    if (!part) throw bad('has an empty entry (two commas, or a comma at an end)');
    const m = PART.exec(part);
    if (!m) throw bad(`'${shown.slice(1, -1)}' is not a frame, a range a-b or a range with a step a-b[step]`);
    const start = Number(m[1]);
    const end = m[2] === undefined ? start : Number(m[2]);
    const step = m[3] === undefined ? 1 : Number(m[3]);
    if (start > MAX_FRAME || end > MAX_FRAME) throw bad(`'${shown.slice(1, -1)}' is past the last frame Blender renders (${MAX_FRAME})`);
    if (end < start) throw bad(`'${shown.slice(1, -1)}' ends before it starts`);
    if (step < 1) throw bad(`'${shown.slice(1, -1)}' has a step below 1`);
    // Counted before the loop: a part alone never makes more than MAX_FRAMES entries.
    if (Math.floor((end - start) / step) + 1 > MAX_FRAMES) throw bad(`names more than ${MAX_FRAMES} frames`);
    for (let f = start; f <= end; f += step) frames.add(f);
    if (frames.size > MAX_FRAMES) throw bad(`names more than ${MAX_FRAMES} frames`);
  }
  return [...frames].sort((a, b) => a - b);
}

/** A scene's own range in Fox's syntax (`start-end[step]`): the default when a job names no frames. */
export function sceneFramesSpec(start: number, end: number, step: number): string {
  return `${start}-${Math.max(start, end)}[${Math.max(1, step)}]`;
}
