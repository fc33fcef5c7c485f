import type { RenderedFormat } from '../formats/output-formats';

/**
 * How a render is encoded. Part of a render's identity: the same movie and params with another
 * profile is another output.
 */
export interface OutputProfile {
  format: RenderedFormat;
  /** mp4/webm: constant-quality factor (x264 CRF 0–51, VP9 CRF 0–63). */
  crf?: number;
  /** mp4: x264 preset. */
  preset?: 'ultrafast' | 'superfast' | 'veryfast' | 'faster' | 'fast' | 'medium' | 'slow';
  /** Stills: 1–100 for jpg/webp. */
  quality?: number;
  /** gif: frames per second (default min(movie fps, 15)) and width (default min(movie width, 640)). */
  gifFps?: number;
  gifWidth?: number;
  /** mp4/webm: leave the audio out (segments of a distributed render carry video only). */
  videoOnly?: boolean;
  /**
   * mp4/webm: written to be read while it is written (fragmented MP4 with a keyframe every
   * second, live WebM). Remuxed into a regular file once complete (see buildRemuxArgs).
   */
  streamable?: boolean;
  /**
   * webm: `ivf` writes the bare VP9 stream in IVF (video only): the segments of a distributed
   * render, which the IVF joiner concatenates and the live muxer puts into WebM.
   */
  container?: 'ivf';
}

export const DEFAULTS = {
  mp4: { crf: 23, preset: 'veryfast' as const },
  webm: { crf: 33 },
  still: { quality: 85 },
  gif: { fps: 15, width: 640 },
};
