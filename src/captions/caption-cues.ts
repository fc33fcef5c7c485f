import type { SubtitleCue } from './subtitle-parser';

/**
 * Cues as the caption layer shows them: lines of words, each word with its own time, so the
 * word being spoken can be highlighted. Pure.
 */
export interface CaptionWord {
  text: string;
  /** Seconds from the start of the caption layer. */
  start: number;
  end: number;
}

export interface CaptionCue {
  start: number;
  end: number;
  lines: CaptionWord[][];
}

export interface CueLayout {
  /** Characters per line (a longer single word gets a line of its own). */
  maxChars: number;
  /** Lines per cue. */
  lines: number;
  /** Seconds of silence between two words that start a new cue. */
  pause: number;
}

/** A word list (`{ text, start, end }`, seconds) → cues of at most `lines` × `maxChars`, cut at pauses. */
export function cuesFromWords(words: CaptionWord[], layout: CueLayout): CaptionCue[] {
  const cues: CaptionCue[] = [];
  let lines: CaptionWord[][] = [];
  let line: CaptionWord[] = [];
  const flush = () => {
    if (line.length) lines.push(line);
    if (lines.length) cues.push({ start: lines[0][0].start, end: lines[lines.length - 1].at(-1)!.end, lines });
    lines = [];
    line = [];
  };
  let previous: CaptionWord | undefined;
  for (const word of [...words].sort((a, b) => a.start - b.start)) {
    if (previous && word.start - previous.end >= layout.pause) flush();
    const length = lineLength([...line, word]);
    if (line.length && length > layout.maxChars) {
      lines.push(line);
      line = [];
      if (lines.length >= layout.lines) flush();
    }
    line.push(word);
    previous = word;
  }
  flush();
  return cues;
}

/**
 * An SRT/VTT cue → the layer's cue: its own line breaks kept where they fit (long lines wrapped
 * at `maxChars`), and each word given a share of the cue's time by its length in characters.
 */
export function cueFromSubtitle(cue: SubtitleCue, maxChars: number): CaptionCue {
  const textLines = cue.text.split('\n').flatMap((l) => wrap(l.split(' ').filter(Boolean), maxChars));
  const total = textLines.flat().reduce((n, w) => n + charCount(w) + 1, 0);
  const secondsPerChar = (cue.end - cue.start) / Math.max(1, total);
  let t = cue.start;
  let done = 0;
  const lines = textLines.map((words) =>
    words.map((text) => {
      done += charCount(text) + 1;
      const end = done >= total ? cue.end : cue.start + done * secondsPerChar;
      const word = { text, start: t, end };
      t = end;
      return word;
    }),
  );
  return { start: cue.start, end: cue.end, lines };
}

/** Words → lines of at most `maxChars` (a longer word alone on its line). */
function wrap(words: string[], maxChars: number): string[][] {
  const lines: string[][] = [];
  let line: string[] = [];
  for (const w of words) {
    if (line.length && charCount([...line, w].join(' ')) > maxChars) {
      lines.push(line);
      line = [];
    }
    line.push(w);
  }
  if (line.length) lines.push(line);
  return lines;
}

function lineLength(words: CaptionWord[]): number {
  return charCount(words.map((w) => w.text).join(' '));
}

/** Characters as people count them: code points, not UTF-16 units (emoji count once). */
function charCount(s: string): number {
  return [...s].length;
}

/** The cue's text, lines joined by `\n`. */
export function cueText(cue: CaptionCue): string {
  return cue.lines.map((l) => l.map((w) => w.text).join(' ')).join('\n');
}
