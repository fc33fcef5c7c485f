/**
 * The pure part of text layout: paragraph directions and alignment (for Pango), units of a
 * split text, the font-size search of `fit: shrink`, vertical placement in a box. No sharp
 * here; the raster repository measures and draws.
 */

export type TextAlign = 'left' | 'center' | 'right' | 'start' | 'end';
export type VerticalAlign = 'top' | 'middle' | 'bottom';
export type Direction = 'ltr' | 'rtl';

/** Most units a split text may have: each is a raster and an overlay in the filter graph. */
export const MAX_TEXT_UNITS = 300;

const RTL_LETTER = /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}\p{Script=Hanifi_Rohingya}\p{Script=Yezidi}]/u;
const STRONG = /[\p{L}\u200E\u200F\u061C]/u;

/** A paragraph's direction by its first strong character (Unicode's rule P2); none: left to right. */
export function paragraphDirection(paragraph: string): Direction {
  for (const ch of paragraph) {
    if (ch === '\u200E') return 'ltr';
    if (ch === '\u200F' || ch === '\u061C') return 'rtl';
    if (STRONG.test(ch)) return RTL_LETTER.test(ch) ? 'rtl' : 'ltr';
  }
  return 'ltr';
}

/** The physical side a paragraph sits on. */
export function sideOf(align: TextAlign, direction: Direction): 'left' | 'center' | 'right' {
  if (align === 'center' || align === 'left' || align === 'right') return align;
  return (align === 'start') === (direction === 'ltr') ? 'left' : 'right';
}

export interface Paragraph {
  /** UTF-16 offsets of the paragraph in the text, without its line break. */
  start: number;
  end: number;
  direction: Direction;
  side: 'left' | 'center' | 'right';
  /** Invisible marks around the paragraph that put it on its side (see `layoutParagraphs`). */
  before: string;
  after: string;
}

const LRM = '\u200E';
const RLM = '\u200F';
const LRI = '\u2066';
const RLI = '\u2067';
const PDI = '\u2069';

/**
 * Paragraphs with the marks that make Pango put each on its side. Pango's alignment follows
 * each paragraph's direction (`left` is the right edge in Hebrew), so the text is laid out
 * with Pango's `left` throughout, and a paragraph that must sit on the other side gets the
 * other base direction: a mark of that direction, and its own text in an isolate of its own
 * direction, so its words still read in their order.
 */
export function layoutParagraphs(text: string, align: TextAlign): Paragraph[] {
  const paragraphs: Paragraph[] = [];
  const breaks = /\r\n|\r|\n|\u2029/g;
  let start = 0;
  for (;;) {
    const m = breaks.exec(text);
    const end = m ? m.index : text.length;
    const direction = paragraphDirection(text.slice(start, end));
    const side = sideOf(align, direction);
    const base: Direction = side === 'right' ? 'rtl' : 'ltr';
    const flip = side !== 'center' && base !== direction;
    paragraphs.push({
      start,
      end,
      direction,
      side,
      before: flip ? (base === 'rtl' ? RLM : LRM) + (direction === 'rtl' ? RLI : LRI) : '',
      after: flip ? PDI : '',
    });
    if (!m) break;
    start = m.index + m[0].length;
  }
  return paragraphs;
}

/** Where the text block goes in a wider box: on the side all its paragraphs share (left when they differ). */
export function blockSide(paragraphs: Paragraph[]): 'left' | 'center' | 'right' {
  const sides = new Set(paragraphs.map((p) => p.side));
  if (sides.size === 1) return [...sides][0];
  return sides.has('left') ? 'left' : 'right';
}

/** Pango markup escaping: the user's text is shown as typed, never interpreted. */
export function escapePango(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/**
 * Pango markup of the text with its paragraph marks. `visible` [from, to) (UTF-16 offsets)
 * shows only that part: the rest is laid out (so shaping, kerning and wrapping are those of the
 * whole paragraph) but drawn with no alpha. `visible: null` draws nothing.
 */
export function textMarkup(text: string, align: TextAlign, visible?: [number, number] | null): string {
  const hidden = (s: string) => (s ? `<span fgalpha="1">${escapePango(s)}</span>` : '');
  const shown = (from: number, to: number) => {
    const s = text.slice(from, to);
    if (visible === undefined) return escapePango(s);
    if (visible === null) return hidden(s);
    const a = Math.min(Math.max(visible[0], from), to);
    const b = Math.min(Math.max(visible[1], from), to);
    return hidden(text.slice(from, a)) + escapePango(text.slice(a, b)) + hidden(text.slice(b, to));
  };
  const paragraphs = layoutParagraphs(text, align);
  return paragraphs
    .map((p, i) => {
      const lineBreak = i + 1 < paragraphs.length ? shown(p.end, paragraphs[i + 1].start) : '';
      return p.before + shown(p.start, p.end) + p.after + lineBreak;
    })
    .join('');
}

/**
 * The units of a split text as UTF-16 ranges: words (runs of non-space, punctuation kept with
 * its word) or letters (grapheme clusters, so an emoji or a letter with its accents is one).
 * Spaces are never units.
 */
export function textUnits(text: string, by: 'word' | 'letter'): Array<[number, number]> {
  const units: Array<[number, number]> = [];
  if (by === 'word') {
    for (const m of text.matchAll(/\S+/gu)) units.push([m.index!, m.index! + m[0].length]);
    return units;
  }
  for (const s of new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text)) {
    if (!/^\s+$/u.test(s.segment)) units.push([s.index, s.index + s.segment.length]);
  }
  return units;
}

/**
 * The largest whole size in [min, max] for which `fits` holds, by bisection (at most
 * `maxSteps` measurements after the first); `min` when nothing fits (the text is then clipped).
 */
export async function largestFittingSize(
  min: number,
  max: number,
  fits: (size: number) => Promise<boolean>,
  maxSteps = 12,
): Promise<{ size: number; fits: boolean }> {
  let lo = Math.max(1, Math.ceil(min));
  let hi = Math.max(lo, Math.floor(max));
  if (await fits(hi)) return { size: hi, fits: true };
  if (!(await fits(lo))) return { size: lo, fits: false };
  hi -= 1;
  for (let step = 0; lo < hi && step < maxSteps; step++) {
    const mid = Math.ceil((lo + hi) / 2);
    if (await fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return { size: lo, fits: true };
}

/**
 * Where content of height `content` sits in a box of height `box`: `top` pixels of space above
 * it when it is shorter, or the `crop` rows of it that show when it is taller (clipped).
 */
export function placeVertically(content: number, box: number, align: VerticalAlign): { top: number; crop?: { top: number; height: number } } {
  const k = align === 'top' ? 0 : align === 'middle' ? 0.5 : 1;
  if (content <= box) return { top: Math.round((box - content) * k) };
  return { top: 0, crop: { top: Math.round((content - box) * k), height: box } };
}

/** `padding: 8` or `[vertical, horizontal]`. */
export function paddingOf(padding: number | [number, number] | undefined): { v: number; h: number } {
  if (padding === undefined) return { v: 0, h: 0 };
  return typeof padding === 'number' ? { v: padding, h: padding } : { v: padding[0], h: padding[1] };
}

/** Frames a unit of a split text waits for: index × stagger, whole frames. */
export function unitDelay(index: number, staggerSec: number, fps: number): number {
  return Math.round(index * staggerSec * fps);
}

export interface SplitOptions {
  by: 'word' | 'letter';
  stagger: number;
  /** typewriter: letters appear, nothing moves; pop: words scale in. */
  preset?: 'typewriter' | 'pop';
}

/** `split: typewriter`, `split: pop` or `split: {by, stagger}` → what they mean. */
export function splitOptions(split: 'typewriter' | 'pop' | { by: 'word' | 'letter'; stagger: number }): SplitOptions {
  if (split === 'typewriter') return { by: 'letter', stagger: 0.06, preset: 'typewriter' };
  if (split === 'pop') return { by: 'word', stagger: 0.12, preset: 'pop' };
  return { by: split.by, stagger: split.stagger };
}
