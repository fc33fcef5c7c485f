import { type CaptionCue, type CaptionWord, cueFromSubtitle, cuesFromWords, type CueLayout } from './caption-cues';
import { cleanText, MAX_CUES, parseSubtitles, SubtitleError } from './subtitle-parser';

export const MAX_WORDS = 5_000;

/**
 * A caption variable's value → the layer's cues (seconds from the layer's start): SRT/VTT
 * text, or a list of `{ text, start, end }` words. Throws SubtitleError (with the line of the
 * text, or the item's index + 1 for a word list).
 */
export function captionCues(value: unknown, layout: CueLayout): CaptionCue[] {
  if (typeof value === 'string') {
    const cues = parseSubtitles(value).map((c) => cueFromSubtitle(c, layout.maxChars));
    // A highlighted word is a raster: the words, not only the cues, are bounded.
    const words = cues.reduce((n, c) => n + c.lines.reduce((m, l) => m + l.length, 0), 0);
    if (words > MAX_WORDS) throw new SubtitleError(1, `more than ${MAX_WORDS} words`);
    return cues;
  }
  if (!Array.isArray(value)) throw new SubtitleError(1, 'expected SRT or WebVTT text, or a list of { text, start, end } words');
  if (value.length > MAX_WORDS) throw new SubtitleError(MAX_WORDS + 1, `more than ${MAX_WORDS} words`);
  const words: CaptionWord[] = value.flatMap((item: unknown, i) => {
    const w = item as Record<string, unknown> | null;
    const start = Number(w?.start);
    const end = Number(w?.end);
    if (!w || typeof w !== 'object' || (typeof w.text !== 'string' && typeof w.text !== 'number')) {
      throw new SubtitleError(i + 1, `word ${i + 1}: expected { text, start, end }`);
    }
    if (!Number.isFinite(start) || !Number.isFinite(end) || start < 0 || end <= start || end > 86400) {
      throw new SubtitleError(i + 1, `word ${i + 1}: start and end are seconds, 0 ≤ start < end`);
    }
    // A word is one word: inner whitespace and tags would break the layout and the VTT.
    const text = cleanText(String(w.text)).replace(/\s+/g, ' ');
    return text === '' ? [] : [{ text, start, end }];
  });
  const cues = cuesFromWords(words, layout);
  if (cues.length > MAX_CUES) throw new SubtitleError(1, `more than ${MAX_CUES} cues`);
  return cues;
}

/** Cues moved to movie time (the layer starts at `offset` s) and cut to [from, to) s; cues outside go. */
export function placeCues(cues: CaptionCue[], offset: number, from: number, to: number): CaptionCue[] {
  const clip = (t: number) => Math.min(to, Math.max(from, t + offset));
  return cues
    .map((cue) => ({
      start: clip(cue.start),
      end: clip(cue.end),
      lines: cue.lines.map((line) => line.map((w) => ({ text: w.text, start: clip(w.start), end: clip(w.end) }))),
    }))
    .filter((cue) => cue.end > cue.start);
}
