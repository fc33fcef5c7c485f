import type { EngineName } from '../engines/engine';
import type { OutputProfile } from '../compiler/output-profiles';
import type { OutputFormat, RenderedFormat } from '../formats/output-formats';
import type { RunWatch } from './render-jobs';
import type { MovieSpec } from '../tokens/render-request';
import type { ResolvedMovie } from '../compiler/resolve';

export type RenderStatus = 'pending' | 'queued' | 'rendering' | 'done' | 'failed';

/** A token: a capability to fetch one request's outputs. */
export interface TokenDoc {
  _id: string;
  project: string;
  movie: MovieSpec;
  /** As sent; validated against each movie when a format is fetched. */
  params: Record<string, unknown>;
  parallel: number;
  routingkey: string;
  /** Ids of the token's upload tasks (the `uploads` collection has them, credentials sealed). */
  upload: string[];
  createdAt: string;
  /** Render keys this token has used, for DELETE (outputs no other token shares). */
  renderKeys: string[];
  /** The most recent render key per extension, for progress. */
  renders: Partial<Record<OutputFormat, string>>;
  /** Signed-URL tokens stand for exactly the output that was signed: query values are ignored. */
  pinned?: { frame?: number; q?: number };
  /** Which API key made the token (a short hash): its rate limits and quotas pay for the renders. */
  keyId?: string;
  /** After this, the token answers 410 and the sweeper removes it (with its unshared outputs). */
  expiresAt?: string;
  /** Outputs of a pinned token are kept whatever the project's output TTL and byte limit. */
  pin?: boolean;
  /** Play-mode segments this token's viewers had rendered (`<key>.<ext>`): removed with it unless something else uses them. */
  pieces?: string[];
  /** The caller's own data, sent back in every webhook about this token. */
  metadata?: Record<string, unknown>;
  /** Where the token's URLs point (PUBLIC_URL or the host the POST came to): for webhooks and batch results. */
  baseUrl?: string;
  /** The batch this token is an item of. */
  batch?: { id: string; key: string };
}

/** One output: content-addressed by its render key, shared by every token that asks for it. */
export interface RenderDoc {
  _id: string;
  project: string;
  movie: string;
  format: OutputFormat;
  status: RenderStatus;
  framesDone: number;
  totalFrames: number;
  bytes: number;
  error?: string;
  /** How many times a render of this key was started (a restart or a failure makes another). */
  attempts: number;
  /** The run under way (one per claim): its jobs, channels and progress carry it. */
  run?: string;
  /** Where followers of the run look: its live channel, progress, and the job whose end is the render's. */
  watch?: RunWatch;
  /**
   * The reusable segments its latest run was cut into (`<key>.<ext>`): they draw this output's
   * params (a name, say), so they go with it unless another output or token uses them.
   */
  pieces?: string[];
  /** When a stored output was last fetched (written at most every ten minutes): for its expiry. */
  lastAccessAt?: string;
  createdAt: string;
  updatedAt: string;
}

/** A token's output for one extension, located and identified, not yet rendered. */
export interface LocatedOutput {
  token: TokenDoc;
  templateVersion: string;
  format: RenderedFormat;
  movie: string;
  profile: OutputProfile;
  frame?: number;
  key: string;
  fps: number;
  totalFrames: number;
  /** Width × height × seconds of this output: what it costs of a daily quota. */
  pixelSeconds: number;
  /** What renders it (default the compositor), and on which device (Blender: CPU or a GPU type). */
  engine?: EngineName;
  device?: string;
  /** Where the nodes record what this scene's frames take (Blender's adaptive chunks). */
  timingKey?: string;
  /** The movie with the token's params applied: what cuts it into reusable segments. */
  resolved?: ResolvedMovie;
}
