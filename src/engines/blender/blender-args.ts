import { badInput } from '../../common/errors';
import type { ResolvedBlenderScene } from '../../compiler/resolve-blender';
import type { BlenderDevice } from './blender.schema';

/** What the scene script (`python/montage_scene.py`) is asked to do. */
export type BlenderMode = 'render' | 'serve' | 'inventory' | 'devices';

/** The JSON after `--`: settings and bindings with every media param a local file. Data only. */
export interface BlenderJob {
  mode: BlenderMode;
  settings?: ResolvedBlenderScene['settings'] & { width: number; height: number; fps: number };
  bindings?: Array<Record<string, unknown>>;
}

/** Linux's limit on one argument (MAX_ARG_STRLEN): a job longer than this cannot be passed. */
export const MAX_JOB_BYTES = 131_072 - 1;

export interface BlenderRenderCommand {
  scene: ResolvedBlenderScene['scene'];
  /** Path of `montage_scene.py`. */
  script: string;
  /** Frames are written as `<dir>/f_#####.png`. */
  outputDir: string;
  /** Scene frames, inclusive. */
  frames: { start: number; end: number };
  device: BlenderDevice;
  /** Render threads; 0 lets Blender use every core. */
  threads: number;
  job: BlenderJob;
}

/**
 * The job for one render of a resolved scene: bindings as data, image params replaced by the
 * local files they were fetched to (`images`, by binding index). Pure.
 */
export function blenderJob(scene: ResolvedBlenderScene, canvas: { width: number; height: number; fps: number }, images: Record<number, string>): BlenderJob {
  const bindings = scene.bindings.map((binding, i) => {
    if (binding.type !== 'image') return { ...binding } as Record<string, unknown>;
    const file = images[i];
    if (!file) throw new Error(`image binding ${i} has no local file`);
    return { type: 'image', image: binding.image, path: file };
  });
  return { mode: 'render', settings: { ...scene.settings, ...canvas }, bindings };
}

/** Where Blender saves scene frame `frame` of a render into `dir` (`-o <dir>/f_#####`, and the serving script's name). */
export function frameFile(dir: string, frame: number): string {
  return `${dir}/f_${String(frame).padStart(5, '0')}.png`;
}

/** The part every call shares: no user preferences or add-ons, no scripts stored in the .blend, a failing script fails Blender. */
export function head(scene: BlenderRenderCommand['scene'] | undefined): string[] {
  return [
    '--factory-startup',
    '-b',
    // Before the file is loaded: auto-run of Python stored in the .blend stays off.
    '-Y',
    // Without it a script that raises is ignored, Blender renders anyway and exits 0.
    '--python-exit-code', '3',
    ...(scene?.kind === 'blend' ? [scene.path] : []),
    ...(scene?.kind === 'script' ? ['-P', scene.path] : []),
  ];
}

function jobArg(job: BlenderJob): string {
  const json = JSON.stringify(job);
  const bytes = Buffer.byteLength(json);
  // Long text params are the user's to shorten: a 400, not a failed render.
  if (bytes > MAX_JOB_BYTES) throw badInput(`the bindings are too long to pass to Blender (${bytes} bytes, at most ${MAX_JOB_BYTES}): shorten the text params`, [{ field: 'params', message: 'too long for Blender' }]);
  return json;
}

/**
 * `blender … -P montage_scene.py -o <dir>/f_##### -s a -e b -a -- --cycles-device X '<job>'`
 * (pure). The order matters: the output path before `-a`, and `-s`/`-e`/`-a` last, or the
 * frames go elsewhere; the job is data after `--`, never Python source.
 */
export function blenderRenderArgs(c: BlenderRenderCommand): string[] {
  if (!Number.isInteger(c.frames.start) || !Number.isInteger(c.frames.end) || c.frames.end < c.frames.start) {
    throw new Error(`invalid frame range ${c.frames.start}–${c.frames.end}`);
  }
  return [
    ...head(c.scene),
    '-P', c.script,
    '-t', String(c.threads),
    '-o', `${c.outputDir}/f_#####`,
    '-F', 'PNG',
    '-x', '1',
    '-s', String(c.frames.start),
    '-e', String(c.frames.end),
    '-a',
    '--',
    '--cycles-device', c.device,
    jobArg(c.job),
  ];
}

/**
 * A Blender that keeps the scene loaded and renders chunks sent on its stdin (pure): the
 * scene's bindings applied once, `-t` before the script (the script renders), the job after `--`.
 */
export function blenderServeArgs(c: Omit<BlenderRenderCommand, 'frames' | 'outputDir'>): string[] {
  return [...head(c.scene), '-t', String(c.threads), '-P', c.script, '--', '--cycles-device', c.device, jobArg({ ...c.job, mode: 'serve' })];
}

/** One chunk for a serving Blender: scene frames `start`–`end` (inclusive) into `dir`. */
export function serveChunkLine(frames: { start: number; end: number }, dir: string): string {
  if (!Number.isInteger(frames.start) || !Number.isInteger(frames.end) || frames.end < frames.start) throw new Error(`invalid frame range ${frames.start}–${frames.end}`);
  return `${JSON.stringify({ start: frames.start, end: frames.end, dir })}\n`;
}

/** Asks the scene script about a scene (`inventory`) or about this Blender (`devices`): renders nothing. */
export function blenderQueryArgs(script: string, mode: Exclude<BlenderMode, 'render' | 'serve'>, scene?: BlenderRenderCommand['scene']): string[] {
  return [...head(scene), '-P', script, '--', jobArg({ mode })];
}
