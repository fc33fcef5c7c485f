import type { FrameRange } from '../compiler/ffmpeg-args';
import type { OutputProfile } from '../compiler/output-profiles';

/** Engines Montage knows. A job says which one renders it; a node takes only jobs of engines it has. */
export enum EngineName {
  /** Layers rasterised once with sharp, composited and encoded by ffmpeg. */
  FfmpegComposite = 'ffmpeg-composite',
  /** A Blender scene with the params bound into it, rendered frame by frame and encoded by ffmpeg. */
  Blender = 'blender',
}

/** What an engine can do on this machine: the devices it renders on (none: it cannot run here). */
export interface EngineCapabilities {
  /** `CPU` and any GPU types (CUDA, OPTIX, HIP) this node takes jobs for. */
  devices: string[];
  version?: string;
  /** Why the engine cannot run here. */
  error?: string;
}

/** What an engine renders: a movie of a template version with validated params, as a profile. */
export interface EngineRequest {
  project: string;
  movie: string;
  params: Record<string, unknown>;
  /** The version the API planned with: a node that loads another one fails the job. */
  templateVersion?: string;
  profile: OutputProfile;
  /** Stills: the frame. */
  frame?: number;
  /** Videos: a part of the movie (a segment), video only; default all of it. */
  range?: FrameRange;
}

/** A movie's sound track: stored under `key` (`ext`), shared by every render whose sound is the same. */
export interface SoundTrack {
  key: string;
  ext: string;
  /** Mixes and encodes it into `output` (`signal` stops it: a shutdown, a cancelled job). */
  make(output: string, signal?: AbortSignal): Promise<void>;
}

export interface EngineRenderResult {
  bytes: number;
  frames: number;
  /** Blender: seconds per frame once running and the start-up before the first frame, under `key` (the scene and its settings). */
  timing?: { key: string; secondsPerFrame: number; startupSeconds: number; totalSeconds: number };
}

export interface EngineRenderOptions {
  /** Write straight into `output` (readers follow it as it grows) rather than through a temporary file. */
  inPlace?: boolean;
  onFrames?: (framesDone: number) => void;
  /** Aborts the render: the node hands its job back. */
  signal?: AbortSignal;
}

/**
 * A render engine: plans a movie into frame ranges and renders a range (or a whole output)
 * into a local file that can be read while it is written. The farm, the live channels,
 * storage and delivery are the same for every engine; a new engine is one folder under
 * `src/engines/` and one line in the registry.
 */
export interface RenderEngine {
  readonly name: EngineName;
  /** Whether and on what this engine renders on this machine (asked once, at a node's start). */
  capabilities(): Promise<EngineCapabilities>;
  /** Frame ranges for `parallel` lanes (pure); `secondsPerFrame`: what this movie's frames took before. */
  planRanges(totalFrames: number, fps: number, parallel: number, secondsPerFrame?: number): FrameRange[];
  /** Renders `request` into `output`; resolves with the bytes written (and what the frames took, where the engine times them). */
  render(request: EngineRequest, output: string, options?: EngineRenderOptions): Promise<EngineRenderResult>;
  /** The movie's sound track as one file (mixed once from its audio tracks and clips): its content address and how to make it. */
  soundTrack(request: Omit<EngineRequest, 'profile'>, format: 'mp4' | 'webm' | 'hls'): Promise<SoundTrack>;
  /**
   * A distributed render's last step: the joined video (fragmented MP4 or IVF) comes in
   * as it arrives, with the movie's sound track (a file), out comes the streamable output.
   */
  muxSound(video: AsyncIterable<Buffer>, sound: string, output: string, format: 'mp4' | 'webm', signal?: AbortSignal): Promise<void>;
  /** A complete streamable output → the regular file that is stored (no re-encode). */
  remux(input: string, output: string, format: 'mp4' | 'webm'): Promise<number>;
}

export const RENDER_ENGINES = Symbol('RENDER_ENGINES');
