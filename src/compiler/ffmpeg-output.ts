import type { ProbeResult } from '../assets/asset-cache.types';

/**
 * Parsers for what ffmpeg and ffprobe print. Small and pure so that each rule is tested
 * on captured output instead of being an inline regex next to a process.
 */

/** One `-progress` report: frames encoded, bytes written, and media time reached (µs). */
export interface ProgressBlock {
  frame: number;
  totalSize: number;
  outTimeUs: number;
}

/** Accumulates `-progress pipe:1` output (key=value lines, blocks ending in `progress=...`). */
export class ProgressParser {
  private buffer = '';
  private current: Record<string, string> = {};

  /** Feeds a chunk of stdout; returns the frame counts of the blocks it completed. */
  push(chunk: string): number[] {
    return this.pushBlocks(chunk).map((b) => b.frame);
  }

  /** Feeds a chunk of stdout; returns the blocks it completed (missing numbers are 0). */
  pushBlocks(chunk: string): ProgressBlock[] {
    this.buffer += chunk;
    const lines = this.buffer.split('\n');
    this.buffer = lines.pop() ?? '';
    const blocks: ProgressBlock[] = [];
    const n = (v: string | undefined) => (Number.isFinite(Number(v)) ? Number(v) : 0);
    for (const raw of lines) {
      const line = raw.trim();
      const eq = line.indexOf('=');
      if (eq <= 0) continue;
      const key = line.slice(0, eq);
      const value = line.slice(eq + 1);
      this.current[key] = value;
      if (key === 'progress') {
        if (Number.isFinite(Number(this.current.frame)) || this.current.total_size !== undefined) {
          blocks.push({ frame: n(this.current.frame), totalSize: n(this.current.total_size), outTimeUs: n(this.current.out_time_us) });
        }
        this.current = {};
      }
    }
    return blocks;
  }
}

/**
 * Whether a run moved since the last report: more frames, more bytes or more media time.
 * A process whose reports stop moving is stuck (an undecodable input looping, a full disk).
 */
export function progressed(last: ProgressBlock | undefined, now: ProgressBlock): boolean {
  if (!last) return now.frame > 0 || now.totalSize > 0 || now.outTimeUs > 0;
  return now.frame > last.frame || now.totalSize > last.totalSize || now.outTimeUs > last.outTimeUs;
}

const IMAGE_CODECS = new Set(['png', 'mjpeg', 'jpegls', 'webp', 'bmp', 'tiff', 'gif', 'apng', 'jpeg2000', 'svg']);
const IMAGE_FORMATS = /(^|,)(image2|png_pipe|jpeg_pipe|webp_pipe|bmp_pipe|tiff_pipe|gif_pipe|svg_pipe|gif)(,|$)/;

interface FfprobeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  duration?: string | number;
  nb_frames?: string | number;
  disposition?: { attached_pic?: number };
}
export interface FfprobeData {
  streams?: FfprobeStream[];
  format?: { format_name?: string; duration?: string | number };
}

/**
 * Container formats a media file may have. Anything else counts as nothing usable: above all
 * playlists (HLS, concat, DASH), which make ffmpeg open other files or URLs, or wait forever.
 */
export const ALLOWED_FORMATS = new Set([
  'mov', 'mp4', 'm4a', '3gp', '3g2', 'mj2', 'matroska', 'webm', 'avi', 'mpegts', 'flv', 'mp3', 'wav', 'ogg', 'flac', 'aac',
  'image2', 'png_pipe', 'jpeg_pipe', 'webp_pipe', 'bmp_pipe', 'tiff_pipe', 'gif', 'gif_pipe',
]);
const NOTHING: ProbeResult = { hasVideo: false, hasAudio: false, isImage: false };

/** ffprobe's JSON → what a media param can be used as. A still image is not a video. */
export function parseProbe(data: FfprobeData): ProbeResult {
  const names = (data.format?.format_name ?? '').split(',').filter(Boolean);
  if (names.length === 0 || !names.every((n) => ALLOWED_FORMATS.has(n))) return { ...NOTHING };
  const streams = data.streams ?? [];
  const video = streams.find((s) => s.codec_type === 'video' && !s.disposition?.attached_pic);
  const audio = streams.find((s) => s.codec_type === 'audio');
  const formatName = data.format?.format_name ?? '';
  const duration = Number(data.format?.duration ?? video?.duration ?? audio?.duration);
  const frames = Number(video?.nb_frames);
  const isImage =
    !!video && !audio && (IMAGE_FORMATS.test(formatName) || (IMAGE_CODECS.has(video.codec_name ?? '') && !(frames > 1)));
  return {
    hasVideo: !!video && !isImage,
    hasAudio: !!audio,
    isImage,
    width: video?.width,
    height: video?.height,
    durationSec: Number.isFinite(duration) && duration > 0 ? duration : undefined,
  };
}

/** The last lines of stderr that say what went wrong, without the noise before them. */
export function ffmpegErrorSummary(stderr: string, maxLines = 6): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.slice(-maxLines).join(' | ') || 'ffmpeg exited without an error message';
}

/** A written picture: its size and how many frames it holds. */
export interface PictureFacts {
  width: number;
  height: number;
  frames: number;
}

/**
 * ffprobe's `-count_packets -show_entries stream=width,height,nb_read_packets` of a file's
 * first video stream → its size and frame count (one packet per frame for every output format).
 */
export function parsePictureFacts(data: { streams?: Array<{ width?: number; height?: number; nb_read_packets?: string | number }> }): PictureFacts | undefined {
  const stream = data.streams?.[0];
  const frames = Number(stream?.nb_read_packets);
  if (!stream?.width || !stream.height || !Number.isInteger(frames) || frames < 1) return undefined;
  return { width: stream.width, height: stream.height, frames };
}
