import * as path from 'node:path';
import { head, MAX_JOB_BYTES } from '../engines/blender/blender-args';
import { FARM_FRAME_FORMATS, type FarmDevice, type FarmFrameFormat, type ProductShot } from './farm.types';

/**
 * The render node's commands for farm jobs, as data (pure): Blender for scenes and products
 * (`python/montage_farm.py` beside the file), ffmpeg for turntables. One place runs them.
 */

/** Montage's farm script (copied into dist beside montage_scene.py by the build). */
export const FARM_SCRIPT = path.join(__dirname, '..', 'engines', 'blender', 'python', 'montage_farm.py');
/** Its folder: what a sandboxed farm Blender reads of Montage. */
export const FARM_SCRIPT_DIR = path.dirname(FARM_SCRIPT);

/** What montage_farm.py is asked to do: the JSON after `--`. Data only, never code. */
export type FarmScriptJob =
  | { mode: 'inspect'; file: string; folder: string }
  | {
      mode: 'render';
      /** The .blend (Blender checks it opened this one, not its default scene). */
      file: string;
      /** The job's folder: an external file resolving outside it is refused. */
      folder: string;
      camera?: string;
      renderLayer?: string;
      resolutionPercent: number;
      samples?: number;
      device: FarmDevice;
    }
  | { mode: 'product'; model: string; folder: string; shot: ProductShot; device: 'CPU' };

/** Frames are saved as `<dir>/f_######.<ext>` (`-o`; six digits: Fox's frames go past 9999). */
export function farmFrameFile(dir: string, frame: number, format: FarmFrameFormat): string {
  return `${dir}/f_${String(frame).padStart(6, '0')}.${FARM_FRAME_FORMATS[format]}`;
}

function framesArg(frames: number[]): string {
  if (frames.length === 0) throw new Error('no frames to render');
  for (const f of frames) if (!Number.isInteger(f) || f < 0 || f > 1_048_574) throw new Error(`invalid frame ${f}`);
  if (new Set(frames).size !== frames.length) throw new Error('a frame is listed twice');
  return frames.join(',');
}

function scriptJob(job: FarmScriptJob): string {
  const json = JSON.stringify(job);
  if (Buffer.byteLength(json) > MAX_JOB_BYTES) throw new Error('the farm job is too long to pass to Blender');
  return json;
}

/**
 * `blender … <file> -P montage_farm.py -- '{"mode":"inspect",…}'`: the scene's inventory, nothing
 * rendered. `folder` (the job's, by default the file's own): names of data linked from outside it are left out.
 */
export function farmInspectArgs(file: string, script: string, folder = path.dirname(file)): string[] {
  return [...head({ kind: 'blend', path: file }), '-P', script, '--', scriptJob({ mode: 'inspect', file, folder })];
}

export interface FarmRenderCommand {
  file: string;
  script: string;
  outputDir: string;
  /** Scene frames, in the order they are saved. */
  frames: number[];
  format: FarmFrameFormat;
  device: FarmDevice;
  threads: number;
  job: Extract<FarmScriptJob, { mode: 'render' }>;
}

/**
 * `blender … <file> -P montage_farm.py -t N -o <dir>/f_###### -F PNG -x 1 -f 1,5,7 -- --cycles-device X '<job>'`:
 * `-o` before `-f`, and `-f` last before `--`, or the frames go elsewhere.
 */
export function farmRenderArgs(c: FarmRenderCommand): string[] {
  return [
    ...head({ kind: 'blend', path: c.file }),
    '-P', c.script,
    '-t', String(c.threads),
    '-o', `${c.outputDir}/f_######`,
    '-F', c.format,
    '-x', '1',
    '-f', framesArg(c.frames),
    '--',
    '--cycles-device', c.device,
    scriptJob(c.job),
  ];
}

export interface ProductRenderCommand {
  script: string;
  outputDir: string;
  frames: number[];
  threads: number;
  /** PNG unless the stills are asked in another format. */
  format?: FarmFrameFormat;
  job: Extract<FarmScriptJob, { mode: 'product' }>;
}

/** A product shot: no .blend, the script builds the scene (`-P` before `-o`/`-f`, which render it). */
export function productRenderArgs(c: ProductRenderCommand): string[] {
  return [
    ...head(undefined),
    '-P', c.script,
    '-t', String(c.threads),
    '-o', `${c.outputDir}/f_######`,
    '-F', c.format ?? 'PNG',
    '-x', '1',
    '-f', framesArg(c.frames),
    '--',
    '--cycles-device', 'CPU',
    scriptJob(c.job),
  ];
}

/** H.264 and its 4:2:0 chroma need even sides. */
const even = (n: number) => Math.max(2, Math.floor(n / 2) * 2);

export interface TurntableEncode {
  /** An image2 pattern of the frames, numbered from 1 (`<dir>/t_%06d.png`). */
  input: string;
  frameRate: number;
  width: number;
  height: number;
  output: string;
}

function frameRateArg(rate: number): string {
  if (!Number.isFinite(rate) || rate <= 0 || rate > 240) throw new Error(`invalid frame rate ${rate}`);
  return String(rate);
}

function side(n: number): number {
  if (!Number.isInteger(n) || n < 2 || n > 8192) throw new Error(`invalid turntable size ${n}`);
  return n;
}

function inputArgs(t: TurntableEncode): string[] {
  side(t.width);
  side(t.height);
  return ['-hide_banner', '-nostdin', '-v', 'error', '-progress', 'pipe:1', '-nostats', '-y', '-f', 'image2', '-framerate', frameRateArg(t.frameRate), '-start_number', '1', '-i', t.input];
}

/** The turntable's frames → an MP4 (H.264, yuv420p, index up front: plays while it downloads). */
export function turntableEncodeArgs(t: TurntableEncode): string[] {
  return [
    ...inputArgs(t),
    '-vf', `scale=${even(t.width)}:${even(t.height)}:flags=lanczos,setsar=1`,
    '-c:v', 'libx264',
    '-preset', 'medium',
    '-crf', '18',
    '-pix_fmt', 'yuv420p',
    '-r', frameRateArg(t.frameRate),
    '-movflags', '+faststart',
    '-f', 'mp4',
    t.output,
  ];
}

/** The turntable's frames → a looping GIF with a palette made from them, at the same frame rate. */
export function turntableGifArgs(t: TurntableEncode): string[] {
  return [
    ...inputArgs(t),
    '-filter_complex', `[0:v]scale=${t.width}:${t.height}:flags=lanczos,split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse=dither=bayer:bayer_scale=4:diff_mode=rectangle`,
    '-loop', '0',
    '-f', 'gif',
    t.output,
  ];
}
