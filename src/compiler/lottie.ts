import * as path from 'node:path';

/**
 * Lottie layers, the pure parts: what a Lottie file must look like before it reaches the
 * renderer, which animation frame each movie frame shows, and the encoder's arguments.
 */

/** Bounds on what a Lottie file and a Lottie layer may ask for. */
export const LOTTIE_LIMITS = {
  /** Bytes of the JSON (embedded images included). */
  maxBytes: 16 * 1024 * 1024,
  /** Nesting of JSON objects and arrays: Skottie builds groups recursively and runs out of stack near 10,000. */
  maxDepth: 128,
  /** The composition's own size only sets the layer's default box and aspect. */
  maxCompositionSide: 16384,
  maxFps: 240,
  /** Seconds of animation between the in and out points. */
  maxSeconds: 3600,
  /** Pixels of one rendered frame: 4K UHD. */
  maxPixels: 3840 * 2160,
  maxSide: 7680,
  /** Pixels × frames of one layer's clip: about five minutes of 1080p at 30 fps. */
  maxPixelFrames: 2.5e10,
};

/** What Montage reads of a Lottie file itself; the rest is Skottie's business. */
export interface LottieHeader {
  width: number;
  height: number;
  /** Frames per second of the animation. */
  fps: number;
  inPoint: number;
  outPoint: number;
  /** Image assets kept beside the JSON (not embedded): the name Skottie asks for (`p`) and the path it is at (`u` + `p`). */
  images: Array<{ name: string; path: string }>;
  /** Fonts of text layers, by `fName`: Skottie draws text only with the font's file. */
  fonts: string[];
}

/** Checks a Lottie file's text; returns its header, or why it cannot be used. */
export function readLottieHeader(text: string): LottieHeader | string {
  if (Buffer.byteLength(text) > LOTTIE_LIMITS.maxBytes) return `a Lottie file may be at most ${LOTTIE_LIMITS.maxBytes / 1024 / 1024} MiB`;
  const depth = jsonDepth(text);
  if (depth > LOTTIE_LIMITS.maxDepth) return `the Lottie JSON nests deeper than ${LOTTIE_LIMITS.maxDepth} levels`;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'not JSON (a Lottie file is the JSON that Bodymovin or LottieFiles exports)';
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return 'not a Lottie animation (expected a JSON object)';
  const d = doc as Record<string, unknown>;
  if (!Array.isArray(d.layers)) return 'not a Lottie animation (no "layers")';
  const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  for (const key of ['w', 'h', 'fr', 'ip', 'op']) {
    if (!finite(d[key])) return `not a Lottie animation ("${key}" must be a number)`;
  }
  const [w, h, fr, ip, op] = [d.w, d.h, d.fr, d.ip, d.op] as number[];
  const max = LOTTIE_LIMITS.maxCompositionSide;
  if (w <= 0 || h <= 0 || w > max || h > max) return `the animation's size must be between 1 and ${max} pixels a side (it is ${w}×${h})`;
  if (fr <= 0 || fr > LOTTIE_LIMITS.maxFps) return `the animation's frame rate must be between 0 and ${LOTTIE_LIMITS.maxFps} (it is ${fr})`;
  if (op <= ip) return 'the animation ends before it starts ("op" ≤ "ip")';
  if ((op - ip) / fr > LOTTIE_LIMITS.maxSeconds) return `the animation may last at most ${LOTTIE_LIMITS.maxSeconds} s`;
  const images: LottieHeader['images'] = [];
  for (const asset of Array.isArray(d.assets) ? d.assets : []) {
    const a = asset as Record<string, unknown> | null;
    if (!a || typeof a.p !== 'string' || a.layers !== undefined || a.e === 1 || a.p.startsWith('data:')) continue;
    images.push({ name: a.p, path: `${typeof a.u === 'string' ? a.u : ''}${a.p}` });
  }
  const list = (d.fonts as { list?: unknown } | undefined)?.list;
  const fonts = (Array.isArray(list) ? list : []).map((f) => (f as { fName?: unknown } | null)?.fName).filter((n): n is string => typeof n === 'string');
  return { width: w, height: h, fps: fr, inPoint: ip, outPoint: op, images, fonts: [...new Set(fonts)] };
}

/** The deepest nesting of objects and arrays, counted without parsing (strings skipped). */
export function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}

/**
 * The files of the template that the animation needs, by the name Skottie asks for them:
 * images at `u` + `p` from the JSON's folder, fonts as `<fName>.ttf` or `.otf` beside the
 * JSON or in its `fonts/` folder. Relative paths of the template; an error message when one
 * is missing or would leave the folder.
 */
export function lottieAssetFiles(header: LottieHeader, jsonPath: string, templateFiles: readonly string[]): Record<string, string> | string {
  const dir = path.posix.dirname(jsonPath);
  const files = new Set(templateFiles);
  const assets: Record<string, string> = {};
  for (const image of header.images) {
    const rel = path.posix.normalize(path.posix.join(dir, image.path.replace(/\\/g, '/')));
    if (/^[a-z][a-z0-9+.-]*:/i.test(image.path) || path.posix.isAbsolute(image.path) || rel === '..' || rel.startsWith('../') || rel.includes('\0')) {
      return `the animation's image "${image.path.slice(0, 80)}" must be a file beside it in the template (or embedded)`;
    }
    if (!files.has(rel)) return `the animation's image "${rel.slice(0, 80)}" is not a file of the template`;
    assets[image.name] = rel;
  }
  for (const font of header.fonts) {
    const candidates = ['', 'fonts/'].flatMap((sub) => ['.ttf', '.otf'].map((ext) => path.posix.normalize(path.posix.join(dir, `${sub}${font}${ext}`))));
    const found = /[/\\\0]/.test(font) ? undefined : candidates.find((c) => files.has(c));
    if (!found) return `the animation's text uses the font "${font.slice(0, 80)}": ship ${font.slice(0, 80)}.ttf or .otf beside the animation or in fonts/ (Skottie draws text only with the font's file)`;
    assets[font] = found;
  }
  return assets;
}

/** The layer's box: as the template says, else the animation's own size (one side given: the other keeps its aspect). Even, for yuv420p. */
export function lottieBox(box: { width?: number; height?: number }, header: LottieHeader): { width: number; height: number } {
  const aspect = header.width / header.height;
  const width = box.width ?? (box.height !== undefined ? box.height * aspect : header.width);
  const height = box.height ?? (box.width !== undefined ? box.width / aspect : header.height);
  return { width: even(width), height: even(height) };
}

/** Why a clip of this size and length is refused, or undefined. */
export function lottieClipProblem(width: number, height: number, frames: number): string | undefined {
  const { maxSide, maxPixels, maxPixelFrames } = LOTTIE_LIMITS;
  if (width > maxSide || height > maxSide || width * height > maxPixels) {
    return `a Lottie layer may be at most ${maxSide} pixels a side and ${maxPixels} pixels in all (3840×2160); this one is ${width}×${height}`;
  }
  if (width * height * frames > maxPixelFrames) {
    return `a Lottie layer of ${width}×${height} may last at most ${Math.floor(maxPixelFrames / (width * height))} frames; this one lasts ${frames}`;
  }
  return undefined;
}

export interface LottieTiming {
  /** Frames of the layer in the movie. */
  layerFrames: number;
  movieFps: number;
  speed: number;
  loop: boolean;
}

/**
 * The clip to render: for each of its frames, the animation frame to show (relative to the
 * in point, as Skottie's seekFrame takes it), and whether the clip repeats over the layer.
 *
 * Movie frame i of the layer is i / fps seconds into it, speed × that into the animation.
 * Without loop the last frame holds (frame op−1, the last one the animation draws: at op
 * its layers have ended). With loop the animation restarts at ip; when one pass lasts a
 * whole number of movie frames, only one pass is rendered and the video layer repeats it.
 */
export function lottieClipFrames(header: LottieHeader, timing: LottieTiming): { frames: number[]; loop: boolean } {
  const length = header.outPoint - header.inPoint;
  const perMovieFrame = (header.fps * timing.speed) / timing.movieFps; // animation frames per movie frame
  const pass = length / perMovieFrame; // movie frames in one pass
  const wholePass = Math.round(pass);
  const repeats = timing.loop && Math.abs(pass - wholePass) < 1e-6 && wholePass >= 1 && wholePass < timing.layerFrames;
  const count = repeats ? wholePass : timing.layerFrames;
  const frames: number[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * perMovieFrame;
    frames.push(tidy(timing.loop ? at % length : Math.min(at, Math.max(0, length - 1))));
  }
  return { frames, loop: repeats };
}

/** Rounds away float noise (0.30000000000000004), so equal frames compare equal and cache keys are stable. */
function tidy(frame: number): number {
  return Math.round(frame * 1e6) / 1e6;
}

function even(n: number): number {
  return Math.max(2, Math.round(n / 2) * 2);
}

/**
 * Raw RGBA frames (straight alpha) on stdin → a QuickTime Animation (qtrle) clip with alpha:
 * lossless, fast to encode and decode, and ARGB so the compositor's video layer keeps the
 * transparency. Its frames carry pts i in 1/fps like every stream of the movie.
 */
export function buildLottieEncodeArgs(width: number, height: number, fps: number, output: string): string[] {
  return [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgba', '-s', `${width}x${height}`, '-framerate', String(fps), '-i', 'pipe:0',
    '-c:v', 'qtrle', '-pix_fmt', 'argb',
    '-f', 'mov', output,
  ];
}
