/** What ffprobe (or a fake) learned about a downloaded file. */
export interface ProbeResult {
  hasVideo: boolean;
  hasAudio: boolean;
  isImage: boolean;
  width?: number;
  height?: number;
  durationSec?: number;
}

export interface MediaProbe {
  probe(path: string): Promise<ProbeResult>;
  /**
   * Whether the file really decodes as `kind` (a few frames, the first seconds of sound, every
   * pixel of an image), within a time limit: undefined when it does, why not otherwise.
   */
  decodeProblem(path: string, kind: MediaKind): Promise<string | undefined>;
}

export const MEDIA_PROBE = Symbol('MEDIA_PROBE');

export type MediaKind = 'image' | 'video' | 'audio';

/** A downloaded, probed file in the asset cache. */
export interface CachedAsset {
  /** The normalized URL it was fetched from. */
  url: string;
  sha256: string;
  /** Absolute path of the content-addressed file; never rewritten once in place. */
  path: string;
  bytes: number;
  probe: ProbeResult;
}

/** The filesystem operations the asset cache needs, so the service itself does no I/O. */
export interface AssetFileStore {
  /** Creates a directory and its parents; no error if it exists. */
  ensureDir(dir: string): Promise<void>;
  exists(path: string): Promise<boolean>;
  /** The file's UTF-8 text, or undefined if there is no such file. */
  readText(path: string): Promise<string | undefined>;
  /** Replaces the file in one step, so readers see the old or the new text, never a mix. */
  writeTextAtomic(path: string, text: string): Promise<void>;
  /** Moves a file, replacing any file at `to`; atomic within one filesystem. */
  rename(from: string, to: string): Promise<void>;
  /** Deletes a file; no error if it is already gone. */
  remove(path: string): Promise<void>;
  /** Marks a file as just used (its modification time), for least-recently-used eviction. */
  touch(path: string): Promise<void>;
}

export const ASSET_FILE_STORE = Symbol('ASSET_FILE_STORE');
