import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const MAX = 64 * 1024 * 1024;

export interface ProbedStream {
  codec_type: string;
  codec_name: string;
  width?: number;
  height?: number;
  nb_read_frames?: string;
  duration?: string;
  pix_fmt?: string;
  color_space?: string;
  color_primaries?: string;
  color_transfer?: string;
  color_range?: string;
}

/** ffprobe with frames counted by decoding: the truth about a rendered file. */
export async function probe(file: string): Promise<{ video?: ProbedStream; audio?: ProbedStream; durationSec: number; formatName: string }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_streams', '-show_format', '-of', 'json', file], { maxBuffer: MAX });
  const data = JSON.parse(stdout) as { streams: ProbedStream[]; format: { duration?: string; format_name: string } };
  return {
    video: data.streams.find((s) => s.codec_type === 'video'),
    audio: data.streams.find((s) => s.codec_type === 'audio'),
    durationSec: Number(data.format.duration),
    formatName: data.format.format_name,
  };
}

/** `probe` of bytes in memory (an upload that arrived, a downloaded video). */
export async function probeBuffer(bytes: Buffer): Promise<Awaited<ReturnType<typeof probe>>> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'montage-probe-'));
  try {
    const file = path.join(dir, 'media');
    await fs.promises.writeFile(file, bytes);
    return await probe(file);
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

export interface Frame {
  width: number;
  height: number;
  data: Buffer;
}

/** Frame `n` (0-based, decode order) of a video, as packed RGB. */
export async function frameAt(file: string, n: number, width: number, height: number): Promise<Frame> {
  const { stdout } = await run(
    'ffmpeg',
    ['-v', 'error', '-i', file, '-vf', `select=eq(n\\,${n})`, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'],
    { encoding: 'buffer', maxBuffer: MAX },
  );
  if (stdout.length !== width * height * 3) throw new Error(`frame ${n} of ${file}: got ${stdout.length} bytes`);
  return { width, height, data: stdout };
}

export function pixel(frame: Frame, x: number, y: number): [number, number, number] {
  const i = (y * frame.width + x) * 3;
  return [frame.data[i], frame.data[i + 1], frame.data[i + 2]];
}

/** True when a pixel is within `tolerance` of an RGB colour on every channel (codecs shift colours a little). */
export function near(actual: [number, number, number], expected: [number, number, number], tolerance = 40): boolean {
  return actual.every((v, i) => Math.abs(v - expected[i]) <= tolerance);
}

/** How many pixels in a rectangle are brighter than `threshold` on every channel (i.e. white-ish ink). */
export function brightPixels(frame: Frame, x0: number, y0: number, w: number, h: number, threshold = 200): number {
  let count = 0;
  for (let y = y0; y < y0 + h; y++) {
    for (let x = x0; x < x0 + w; x++) {
      const [r, g, b] = pixel(frame, x, y);
      if (r > threshold && g > threshold && b > threshold) count++;
    }
  }
  return count;
}

/**
 * SSIM of the `count` frames of `part` against frames [from, from + count) of `whole`. Both are re-stamped by
 * frame index first, so only the pictures are compared, never container timestamps.
 */
export async function ssimPerFrame(whole: string, part: string, from: number, count: number): Promise<number[]> {
  const lavfi = `[0:v]trim=start_frame=${from}:end_frame=${from + count},setpts=N/TB/30[w];[1:v]setpts=N/TB/30[p];[w][p]ssim=stats_file=-`;
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-i', whole, '-i', part, '-lavfi', lavfi, '-f', 'null', '-'], { maxBuffer: MAX });
  return stdout
    .split('\n')
    .map((l) => /All:([0-9.]+)/.exec(l)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number);
}

/** Frame types (I/P/B) in order, to find keyframes. */
export async function pictTypes(file: string): Promise<string[]> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pict_type', '-of', 'csv=p=0', file], { maxBuffer: MAX });
  return stdout.split('\n').map((s) => s.trim().replace(/,+$/, '')).filter(Boolean);
}

/** Mean volume in dB of an audio stretch (−91 is digital silence). */
export async function meanVolume(file: string, startSec: number, durSec: number): Promise<number> {
  const { stderr } = await run('ffmpeg', ['-v', 'info', '-ss', String(startSec), '-t', String(durSec), '-i', file, '-vn', '-af', 'volumedetect', '-f', 'null', '-'], { maxBuffer: MAX });
  const m = /mean_volume: (-?[0-9.]+|-inf) dB/.exec(stderr);
  if (!m) throw new Error(`no volume for ${file}`);
  return m[1] === '-inf' ? -91 : Number(m[1]);
}


/** Y, U, V of pixel (x, y) of frame `n`, read from the decoded yuv420p planes as they are (no conversion). */
export async function yuvAt(file: string, n: number, x: number, y: number, width: number, height: number): Promise<[number, number, number]> {
  const { stdout } = await run(
    'ffmpeg',
    ['-v', 'error', '-i', file, '-vf', `select=eq(n\\,${n})`, '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-'],
    { encoding: 'buffer', maxBuffer: MAX },
  );
  const chroma = (width / 2) * (height / 2);
  if (stdout.length !== width * height + 2 * chroma) throw new Error(`frame ${n} of ${file}: got ${stdout.length} bytes`);
  const c = Math.floor(y / 2) * (width / 2) + Math.floor(x / 2);
  return [stdout[y * width + x], stdout[width * height + c], stdout[width * height + chroma + c]];
}

/** BT.709 limited-range Y'CbCr → R'G'B' (0–255), as a browser shows a stream tagged bt709/tv. */
export function bt709ToRgb([y, u, v]: [number, number, number]): [number, number, number] {
  const l = ((y - 16) * 255) / 219;
  const pb = ((u - 128) * 255) / 224;
  const pr = ((v - 128) * 255) / 224;
  const clamp = (c: number) => Math.round(Math.min(255, Math.max(0, c)));
  return [clamp(l + 1.5748 * pr), clamp(l - 0.1873 * pb - 0.4681 * pr), clamp(l + 1.8556 * pb)];
}

/** How many Clusters a WebM (Matroska) file has: its top-level elements, walked by their sizes. */
export function webmClusters(file: string): number {
  const b = fs.readFileSync(file);
  const vint = (at: number, keepMarker: boolean) => {
    let len = 1;
    while (len <= 8 && !(b[at] & (0x80 >> (len - 1)))) len++;
    let v = keepMarker ? b[at] : b[at] & (0xff >> len);
    for (let k = 1; k < len; k++) v = v * 256 + b[at + k];
    return { v, len, unknown: !keepMarker && v === 2 ** (7 * len) - 1 };
  };
  const element = (at: number) => {
    const id = vint(at, true);
    const size = vint(at + id.len, false);
    return { id: id.v, body: at + id.len + size.len, size };
  };
  const header = element(0); // EBML
  const segment = element(header.body + header.size.v);
  if (segment.id !== 0x18538067) throw new Error(`${file}: no Segment`);
  let clusters = 0;
  for (let at = segment.body; at < b.length; ) {
    const e = element(at);
    if (e.id === 0x1f43b675) clusters++;
    if (e.size.unknown) break;
    at = e.body + e.size.v;
  }
  return clusters;
}

export interface Span {
  start: number;
  end: number;
}

/** Where the video and the audio stream start and end (seconds), from their packets: what a player schedules. */
export async function streamSpans(file: string): Promise<{ video: Span; audio: Span }> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=index,codec_type:packet=stream_index,pts_time,duration_time', '-of', 'json', file], { maxBuffer: MAX });
  const data = JSON.parse(stdout) as { streams: Array<{ index: number; codec_type: string }>; packets: Array<{ stream_index: number; pts_time: string; duration_time?: string }> };
  const span = (type: string): Span => {
    const index = data.streams.find((s) => s.codec_type === type)?.index;
    const packets = data.packets.filter((p) => p.stream_index === index);
    if (packets.length === 0) throw new Error(`${file}: no ${type} packets`);
    return {
      start: Math.min(...packets.map((p) => Number(p.pts_time))),
      end: Math.max(...packets.map((p) => Number(p.pts_time) + Number(p.duration_time ?? 0))),
    };
  };
  return { video: span('video'), audio: span('audio') };
}

/** One AAC frame (1024 samples at 48 kHz): the grain of an AAC track's length. */
export const AAC_FRAME_SEC = 1024 / 48000;

/**
 * The sound lasts as long as the picture and both start at 0. An audio start before 0 is the
 * codec's priming (AAC 1024 samples, Opus 312), which the file's edit list / CodecDelay skips.
 */
export function expectSoundMatchesPicture(spans: { video: Span; audio: Span }, startTolerance = 0.001): void {
  expect(Math.abs(spans.video.start)).toBeLessThanOrEqual(startTolerance);
  expect(spans.audio.start).toBeGreaterThanOrEqual(-AAC_FRAME_SEC - 0.001);
  expect(spans.audio.start).toBeLessThanOrEqual(startTolerance);
  expect(Math.abs(spans.audio.end - spans.video.end)).toBeLessThanOrEqual(AAC_FRAME_SEC + 0.001);
}
