/**
 * SRT and WebVTT text → cues, in seconds. Pure. Written for hostile input: anything that is not
 * a cue is skipped (VTT NOTE/STYLE/REGION blocks) or refused with the line it is on, and the
 * text is bounded before it is read.
 */

export interface SubtitleCue {
  /** Seconds from the start of the caption layer. */
  start: number;
  end: number;
  /** Plain text: tags stripped, entities decoded, control characters gone; lines joined by `\n`. */
  text: string;
}

export const MAX_SUBTITLE_BYTES = 1024 * 1024;
export const MAX_CUES = 5000;

/** A problem of the caption text itself, with its 1-based line in that text. */
export class SubtitleError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
  }
}

// hh:mm:ss,mmm (SRT) or [hh:]mm:ss.mmm (VTT); both separators and 1–3 digit fractions accepted.
const TIME = /^(?:(\d{1,3}):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3}))?$/;
const ARROW = /^\s*(\S*?)\s*-->\s*(\S*)(.*)$/;

export function parseSubtitles(raw: string): SubtitleCue[] {
  if (Buffer.byteLength(raw, 'utf8') > MAX_SUBTITLE_BYTES) {
    throw new SubtitleError(1, `caption text is over ${MAX_SUBTITLE_BYTES / 1024} KiB`);
  }
  const lines = raw.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  const vtt = /^WEBVTT(?:[ \t].*)?$/.test(lines[0] ?? '');
  const cues: SubtitleCue[] = [];
  let i = 0;
  // WebVTT's header block (`WEBVTT`, then lines such as `Kind:` and `Language:`) ends at the first blank line.
  if (vtt) while (i < lines.length && lines[i].trim() !== '') i++;
  while (i < lines.length) {
    // One block: up to the next blank line.
    while (i < lines.length && lines[i].trim() === '') i++;
    if (i >= lines.length) break;
    const blockStart = i;
    const block: string[] = [];
    while (i < lines.length && lines[i].trim() !== '') block.push(lines[i++]);
    if (vtt && /^(NOTE|STYLE|REGION)(\s|$)/.test(block[0])) continue;
    // The timing line is the first or, after an identifier (SRT's number, VTT's cue id), the second.
    const at = ARROW.test(block[0]) ? 0 : block.length > 1 && ARROW.test(block[1]) ? 1 : -1;
    if (at < 0) throw new SubtitleError(blockStart + 1, `expected a cue timing like "00:00:01,000 --> 00:00:02,500", got "${preview(block[0])}"`);
    const timingLine = blockStart + at + 1;
    const [, from, to] = ARROW.exec(block[at])!; // cue settings after the end time are ignored
    const start = seconds(from, timingLine);
    const end = seconds(to, timingLine);
    if (end <= start) throw new SubtitleError(timingLine, 'the cue ends before it starts');
    if (cues.length >= MAX_CUES) throw new SubtitleError(timingLine, `more than ${MAX_CUES} cues`);
    const text = block
      .slice(at + 1)
      .map(cleanText)
      .filter((l) => l !== '')
      .join('\n');
    if (text !== '') cues.push({ start, end, text });
  }
  return cues.sort((a, b) => a.start - b.start || a.end - b.end);
}

function seconds(stamp: string, line: number): number {
  const m = TIME.exec(stamp);
  if (!m) throw new SubtitleError(line, `"${preview(stamp)}" is not a time like 00:01:02,500`);
  const [h, min, s] = [Number(m[1] ?? 0), Number(m[2]), Number(m[3])];
  if (min > 59 || s > 59) throw new SubtitleError(line, `"${preview(stamp)}" is not a time like 00:01:02,500`);
  const fraction = m[4] ? Number(m[4].padEnd(3, '0')) / 1000 : 0;
  return h * 3600 + min * 60 + s + fraction;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', lrm: '\u200e', rlm: '\u200f' };

/** Tags (`<i>`, `<c.yellow>`, `<00:00:01.000>`, `{\an8}`) go; entities are decoded; control characters go. */
export function cleanText(line: string): string {
  return line
    .replace(/<[^>]*>/g, '')
    .replace(/\{\\[^}]*\}/g, '')
    .replace(/&(amp|lt|gt|quot|apos|nbsp|lrm|rlm);/g, (_, name: string) => ENTITIES[name])
    .replace(/&#(\d{1,7});/g, (all, n: string) => codePoint(Number(n)) ?? all)
    .replace(/&#x([0-9a-fA-F]{1,6});/g, (all, n: string) => codePoint(parseInt(n, 16)) ?? all)
    // eslint-disable-next-line no-control-regex -- control characters are what this removes
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '')
    .replace(/[ \t]+/g, ' ')
    .trim();
}

function codePoint(n: number): string | undefined {
  return n > 0x1f && n <= 0x10ffff && !(n >= 0xd800 && n <= 0xdfff) && !(n >= 0x7f && n <= 0x9f) ? String.fromCodePoint(n) : undefined;
}

function preview(s: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this hides
  const clean = s.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > 40 ? `${clean.slice(0, 40)}…` : clean;
}
