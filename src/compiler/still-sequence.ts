import { num } from './easing';

/** One still of a sequence, shown over movie frames [startFrame, endFrame). */
export interface TimedStill {
  path: string;
  startFrame: number;
  endFrame: number;
}

/**
 * Timed stills → the text of an ffconcat list covering frames [startFrame, endFrame) of the
 * movie, from its first entry at `startFrame`: gaps show `blank` (a transparent still of the
 * same size), overlaps go to the later still, and one blank closes the list so the last still
 * lasts its whole time. Every file is read at `fps` (image2's default 25 fps would put each
 * still's timestamps on a 1/25 s grid). Pure.
 */
export function ffconcatList(stills: TimedStill[], range: { startFrame: number; endFrame: number }, fps: number, blank: string): string {
  const lines = ['ffconcat version 1.0'];
  const add = (path: string, frames: number) => {
    lines.push(`file ${quote(path)}`, `option framerate ${fps}`);
    if (frames > 0) lines.push(`duration ${num(frames / fps)}`);
  };
  const sorted = stills
    .map((s) => ({ ...s, startFrame: Math.max(s.startFrame, range.startFrame), endFrame: Math.min(s.endFrame, range.endFrame) }))
    .filter((s) => s.endFrame > s.startFrame)
    .sort((a, b) => a.startFrame - b.startFrame);
  let at = range.startFrame;
  sorted.forEach((still, i) => {
    const end = Math.min(still.endFrame, sorted[i + 1]?.startFrame ?? Infinity);
    if (end <= Math.max(at, still.startFrame)) return;
    if (still.startFrame > at) add(blank, still.startFrame - at);
    const from = Math.max(at, still.startFrame);
    add(still.path, end - from);
    at = end;
  });
  if (range.endFrame > at) add(blank, range.endFrame - at);
  add(blank, 0);
  return `${lines.join('\n')}\n`;
}

/** ffconcat's quoting: inside single quotes everything is literal, and a quote is closed, escaped and reopened. */
function quote(path: string): string {
  // eslint-disable-next-line no-control-regex -- a newline would start another directive
  if (/[\u0000-\u001f\u007f]/.test(path)) throw new Error('a sequence path holds a control character');
  return `'${path.replace(/'/g, "'\\''")}'`;
}
