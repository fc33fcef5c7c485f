import type { ResolvedMovie } from '../compiler/resolve';
import { cueText } from './caption-cues';

/** Every caption layer's cues at movie time (already offset and cut to the layer in resolve), in order. */
export function movieCaptionCues(movie: ResolvedMovie): Array<{ start: number; end: number; text: string }> {
  return movie.scenes
    .flatMap((s) => s.layers)
    .flatMap((l) => l.captions ?? [])
    .map((cue) => ({ start: cue.start, end: cue.end, text: cueText(cue) }))
    .sort((a, b) => a.start - b.start || a.end - b.end);
}

/** The movie's captions as WebVTT; undefined when it has no caption layer. */
export function movieVtt(movie: ResolvedMovie): string | undefined {
  const has = movie.scenes.some((s) => s.layers.some((l) => l.spec.type === 'captions'));
  return has ? toWebVtt(movieCaptionCues(movie)) : undefined;
}

/** Cues → a WebVTT file. The text is escaped: it can never end a cue or open a tag. */
export function toWebVtt(cues: Array<{ start: number; end: number; text: string }>): string {
  const blocks = cues.map((c) => `${stamp(c.start)} --> ${stamp(c.end)}\n${escapeVtt(c.text)}`);
  return `WEBVTT\n\n${blocks.join('\n\n')}${blocks.length ? '\n' : ''}`;
}

function escapeVtt(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Seconds → `hh:mm:ss.mmm`. */
export function stamp(seconds: number): string {
  const ms = Math.round(seconds * 1000);
  const h = Math.floor(ms / 3600000);
  const m = Math.floor(ms / 60000) % 60;
  const s = Math.floor(ms / 1000) % 60;
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(h)}:${pad(m)}:${pad(s)}.${pad(ms % 1000, 3)}`;
}
