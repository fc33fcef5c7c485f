import type { CaptionCue } from './caption-cues';

/** Which picture of a cue shows over frames [startFrame, endFrame): the plain cue, or the cue with one word highlighted. */
export interface CaptionStill {
  cue: number;
  word?: { line: number; word: number };
  startFrame: number;
  endFrame: number;
}

/**
 * Cues (movie seconds) → the pictures to show, frame by frame, never overlapping: a cue shows
 * until the next one starts; with `highlight`, each word's frames show that word highlighted
 * and the cue's other frames (pauses between words) show it plain. Pure.
 */
export function captionStills(cues: CaptionCue[], fps: number, highlight: boolean): CaptionStill[] {
  const frame = (t: number) => Math.round(t * fps);
  const stills: CaptionStill[] = [];
  cues.forEach((cue, i) => {
    const start = frame(cue.start);
    const end = Math.min(frame(cue.end), cues[i + 1] ? frame(cues[i + 1].start) : Infinity);
    if (end <= start) return;
    let at = start;
    const plainUntil = (to: number) => {
      if (to > at) stills.push({ cue: i, startFrame: at, endFrame: to });
      at = Math.max(at, to);
    };
    if (highlight) {
      cue.lines.forEach((line, li) =>
        line.forEach((word, wi) => {
          const from = Math.max(at, frame(word.start));
          const to = Math.min(end, frame(word.end));
          if (to <= from) return;
          plainUntil(from);
          stills.push({ cue: i, word: { line: li, word: wi }, startFrame: from, endFrame: to });
          at = to;
        }),
      );
    }
    plainUntil(end);
  });
  return stills;
}
