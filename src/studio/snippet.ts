import type { Params } from '../compiler/params';
import { signedUrl } from '../projects/url-signing';

export interface EmbedSnippets {
  /** The token flow: POST the params with the project's key (left as $MONTAGE_API_KEY), then GET. */
  curl: string;
  /** A <video> on the token's mp4 (the current preview token). */
  video: string;
  /** A signed direct-render URL: no POST, no key; anyone with it renders these params. */
  signedUrl: string;
  /** A <video> on the signed URL. */
  signedVideo: string;
}

export interface SnippetInput {
  base: string;
  project: string;
  movie: string;
  params: Params;
  token?: string;
  signingSecret: string;
}

/** Query values are strings: numbers and booleans as written, lists as JSON (the API parses them back). */
export function queryParams(params: Params): Record<string, string> {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [k, typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v)]));
}

/** Single-quoted for a POSIX shell: a ' inside becomes '\''. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function attr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function embedSnippets(input: SnippetInput): EmbedSnippets {
  const base = input.base.replace(/\/+$/, '');
  const body = JSON.stringify({ movie: input.movie, params: input.params });
  const curl = [
    `curl -s -X POST ${shellQuote(`${base}/v2/token/${encodeURIComponent(input.project)}`)} \\`,
    `  -H "Authorization: Bearer $MONTAGE_API_KEY" -H 'Content-Type: application/json' \\`,
    `  -d ${shellQuote(body)}`,
  ].join('\n');
  const mp4 = input.token ? `${base}/v2/get/${input.token}.mp4` : `${base}/v2/get/<token>.mp4`;
  const poster = input.token ? `${base}/v2/get/${input.token}.jpg` : `${base}/v2/get/<token>.jpg`;
  const video = `<video controls playsinline preload="metadata" poster="${attr(poster)}" src="${attr(mp4)}"></video>`;
  const signed = signedUrl(base, input.project, input.movie, 'mp4', queryParams(input.params), input.signingSecret);
  const signedVideo = `<video controls playsinline preload="metadata" src="${attr(signed)}"></video>`;
  return { curl, video, signedUrl: signed, signedVideo };
}
