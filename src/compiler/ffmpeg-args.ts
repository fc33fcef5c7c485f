import { DEFAULTS, type OutputProfile } from './output-profiles';
import { isStillFormat } from '../formats/output-formats';
import type { RenderPlan } from './render-plan';
import { type FrameRange, GraphBuilder } from './filter-graph';

export { ffColor, type FrameRange } from './filter-graph';

const BT709_TAGS = ['-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', '-color_range', 'tv'];
/**
 * For files read while they are written: a write per packet (ffmpeg's file output otherwise holds
 * 256 KiB back, seconds of video) and, for live WebM, clusters of at most 1 s or 32 KB.
 */
const FLUSH = ['-flush_packets', '1'];
// A fragment at every keyframe and at least every 0.2 s: a viewer's first picture does not wait
// for a whole GOP. Cut by time and keyframes only, so every encode of the same frames is cut alike.
// delay_moov: the moov waits for the first fragment so that it can hold edit lists: without them
// the AAC priming (1024 samples) plays as sound and the video starts at its B-frame delay (2 frames).
const MP4_FRAGMENTS = ['-frag_duration', '200000', '-movflags', 'frag_keyframe+empty_moov+default_base_moof+delay_moov'];
// Clusters cut by time only (a size limit would cut where the encoder's bytes fall): every
// encode of the same frames is cut alike, so a retried render's pieces line up with the first's.
const LIVE_WEBM = [...FLUSH, '-cluster_time_limit', '1000', '-cluster_size_limit', '1073741824', '-live', '1'];

/**
 * The output of a still handed over raw: RGB24 on stdout, for sharp to encode (jpg, webp) with
 * no PNG written, read back and decoded in between.
 */
export const RAW_STILL_OUTPUT = 'pipe:1';

export interface RenderArgsOptions {
  /** Threads for the encoder; 0 or undefined lets ffmpeg choose. */
  threads?: number;
  /** Write machine-readable progress (`frame=N` lines) to stdout. */
  progress?: boolean;
}

/**
 * Render plan + frame range + output profile → the ffmpeg argument array (without the binary).
 *
 * Every stream in the graph carries absolute movie time: frame k has pts k in a 1/fps time
 * base. Animations are expressions of that absolute `t`, so frames [a, b) rendered alone are
 * the same frames as in a whole-movie render — the property that distributed rendering needs.
 * User text never appears here: text and SVG arrive as rasters, referenced by file path only
 * as `-i` arguments, never inside the filter string. A still is a PNG file, or raw RGB24 on
 * stdout when `output` is RAW_STILL_OUTPUT (then without progress: it would share the pipe).
 */
export function buildRenderArgs(
  plan: RenderPlan,
  range: FrameRange,
  profile: OutputProfile,
  output: string,
  options: RenderArgsOptions = {},
): string[] {
  if (!Number.isInteger(range.from) || !Number.isInteger(range.to) || range.from < 0 || range.to > plan.totalFrames || range.to <= range.from) {
    throw new Error(`invalid frame range [${range.from}, ${range.to}) for a movie of ${plan.totalFrames} frames`);
  }
  const graph = new GraphBuilder(plan, range);
  const video = graph.video();
  const still = isStillFormat(profile.format);
  const raw = output === RAW_STILL_OUTPUT;
  if (raw && !still) throw new Error(`only a still can be written raw to ${RAW_STILL_OUTPUT}, not ${profile.format}`);
  const withAudio = (profile.format === 'mp4' || profile.format === 'webm') && !profile.videoOnly;
  if (profile.container && (profile.format !== 'webm' || !profile.videoOnly)) {
    throw new Error(`the ${profile.container} container holds webm video only`);
  }
  // Opus takes 20 ms frames; a graph without inputs is not cut to the encoder's frame size (ffmpeg 5.1).
  const audio = withAudio ? graph.audio(profile.format === 'webm' ? 960 : undefined) : undefined;

  // Frames of another engine come on stdin; otherwise ffmpeg must not read it.
  const framesOnStdin = plan.scenes.some((scene) => scene.layers.some((layer) => layer.source.kind === 'frames'));
  const args = ['-hide_banner', ...(framesOnStdin ? [] : ['-nostdin']), '-loglevel', 'error', '-y'];
  if (options.progress && !raw) args.push('-progress', 'pipe:1', '-nostats');
  for (const input of graph.inputs) args.push(...input);

  let finalVideo = video;
  if (profile.format === 'gif') {
    const fps = Math.min(plan.fps, profile.gifFps ?? DEFAULTS.gif.fps);
    const width = Math.min(plan.width, profile.gifWidth ?? DEFAULTS.gif.width);
    graph.chain(
      `[${video}]fps=${fps},scale=${width}:-2:flags=lanczos:in_color_matrix=bt709:in_range=tv,split[gifa][gifb];[gifa]palettegen=stats_mode=full[gifp];[gifb][gifp]paletteuse=dither=bayer:bayer_scale=4:diff_mode=rectangle[gif]`,
    );
    finalVideo = 'gif';
  } else if (still) {
    graph.chain(`[${video}]scale=in_color_matrix=bt709:in_range=tv,format=rgb24[rgb]`);
    finalVideo = 'rgb';
  }
  args.push('-filter_complex', graph.chains.join(';'), '-map', `[${finalVideo}]`);
  if (audio) args.push('-map', `[${audio}]`);
  if (options.threads) args.push('-threads', String(options.threads));

  switch (profile.format) {
    case 'mp4':
      args.push(
        '-c:v', 'libx264',
        '-preset', profile.preset ?? DEFAULTS.mp4.preset,
        '-crf', String(profile.crf ?? DEFAULTS.mp4.crf),
        '-pix_fmt', 'yuv420p', ...BT709_TAGS,
        ...(audio ? ['-c:a', 'aac', '-b:a', '160k', '-ar', '48000', '-ac', '2'] : []),
        ...(profile.streamable
          ? // A keyframe exactly every second, none at scene cuts: fragments fall on the same frames in every encode.
            ['-g', String(plan.fps), '-sc_threshold', '0', ...FLUSH, ...MP4_FRAGMENTS]
          : ['-movflags', '+faststart']),
        '-f', 'mp4',
      );
      break;
    case 'webm':
      args.push(
        '-c:v', 'libvpx-vp9',
        '-crf', String(profile.crf ?? DEFAULTS.webm.crf), '-b:v', '0',
        '-deadline', 'good', '-cpu-used', '5', '-row-mt', '1',
        '-pix_fmt', 'yuv420p', ...BT709_TAGS,
        ...(audio ? ['-c:a', 'libopus', '-b:a', '128k', '-ar', '48000', '-ac', '2'] : []),
        ...(profile.streamable ? ['-g', String(plan.fps), '-keyint_min', String(plan.fps)] : []),
        ...(profile.container === 'ivf' ? [...FLUSH, '-f', 'ivf'] : [...(profile.streamable ? LIVE_WEBM : []), '-f', 'webm']),
      );
      break;
    case 'gif':
      args.push('-loop', '0', '-f', 'gif');
      break;
    default:
      if (raw) args.push('-frames:v', '1', '-f', 'rawvideo');
      else if (still) args.push('-frames:v', '1', '-c:v', 'png', '-f', 'image2', '-update', '1');
  }
  args.push(output);
  return args;
}

/**
 * A streamable render (fragmented MP4, live WebM) → the regular file that is stored and
 * served with Range: faststart MP4 with its index up front, WebM with cues. No re-encode.
 */
export function buildRemuxArgs(input: string, output: string, format: 'mp4' | 'webm'): string[] {
  return [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
    '-progress', 'pipe:1', '-nostats', // bytes written: what the stall watchdog watches
    // The input's own times: shifted to start at 0, the AAC priming (pts < 0) would become sound and push the video late.
    '-copyts',
    '-i', input,
    '-map', '0', '-c', 'copy',
    ...(format === 'mp4' ? ['-movflags', '+faststart', '-f', 'mp4'] : ['-f', 'webm']),
    output,
  ];
}

/** The container a movie's sound track is stored in, per output format (its codec is the output's; `hls`: AAC for play mode). */
export const SOUND_EXT = { mp4: 'm4a', webm: 'weba', hls: 'mp4' } as const;
export type SoundFormat = keyof typeof SOUND_EXT;
/** Play mode's sound: fragmented every 2 s (all AAC frames are sync samples: cut by time only), each fragment an HLS segment by byte range. */
const HLS_SOUND = ['-c:a', 'aac', '-b:a', '160k', '-ar', '48000', '-ac', '2', '-frag_duration', '2000000', '-movflags', 'empty_moov+default_base_moof', '-f', 'mp4'];

/**
 * A movie's whole sound track, mixed and encoded once (AAC for mp4, Opus for webm) into a file
 * that is stored by what it is made of: every render of the movie with the same sound reuses it.
 */
export function buildSoundArgs(plan: RenderPlan, output: string, format: SoundFormat): string[] {
  const graph = new GraphBuilder(plan, { from: 0, to: plan.totalFrames });
  const audio = graph.audio();
  return [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
    ...graph.inputs.flat(),
    '-filter_complex', graph.chains.join(';'),
    '-map', `[${audio}]`,
    ...(format === 'hls' ? HLS_SOUND : format === 'mp4' ? ['-c:a', 'aac', '-b:a', '160k', '-ar', '48000', '-ac', '2', '-f', 'mp4'] : ['-c:a', 'libopus', '-b:a', '128k', '-ar', '48000', '-ac', '2', '-f', 'webm']),
    output,
  ];
}

/**
 * Assembles a distributed render as it arrives, with its stored sound track: the joined video
 * comes in on stdin (fragmented MP4 for mp4, IVF for webm), both are copied; out comes a file
 * viewers follow (fragmented MP4, live WebM). The sound keeps its own times (`-copyts`): the
 * AAC priming stays before 0, as an edit list, not as sound that would push the picture late.
 */
export function buildLiveMuxArgs(sound: string, output: string, format: 'mp4' | 'webm' = 'mp4'): string[] {
  return [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-copyts',
    '-i', sound,
    '-probesize', '32', '-analyzeduration', '0',
    '-f', format === 'mp4' ? 'mp4' : 'ivf', '-i', 'pipe:0',
    '-map', '1:v', '-map', '0:a',
    '-c', 'copy', ...BT709_TAGS,
    ...(format === 'mp4' ? [...FLUSH, ...MP4_FRAGMENTS, '-f', 'mp4'] : [...LIVE_WEBM, '-f', 'webm']),
    output,
  ];
}

