import type { FrameRange } from '../compiler/ffmpeg-args';
import type { OutputProfile } from '../compiler/output-profiles';

/** Every kind of job. Each has exactly one handler; a worker refuses to start without it. */
export enum JobName {
  RenderSegment = 'render-segment',
}

/** Everything a render node needs for one segment; nodes never read the database. */
export interface RenderSegmentPayload {
  renderKey: string;
  project: string;
  movie: string;
  params: Record<string, unknown>;
  /** The template version the API planned with: a node with another version fails the segment. */
  templateVersion?: string;
  profile: OutputProfile;
  range: FrameRange;
  /** The segment's name in the shared storage (STORAGE_URL). */
  segment: string;
}

export interface RenderSegmentResult {
  segment: string;
  frames: number;
  bytes: number;
  node: string;
}

export interface JobPayloads {
  [JobName.RenderSegment]: RenderSegmentPayload;
}
export interface JobResults {
  [JobName.RenderSegment]: RenderSegmentResult;
}

export interface JobContext {
  attempt: number;
  progress(value: number): Promise<void>;
}

export type JobHandlers = { [N in JobName]: (payload: JobPayloads[N], ctx: JobContext) => Promise<JobResults[N]> };

/** One queue per routing key: dedicated pools of nodes (GPU nodes, say) take their own key. */
export const queueName = (routingKey: string) => `render.${routingKey}`;

/** Deterministic job ids deduplicate: the same segment of the same render is one job. */
export const segmentJobId = (renderKey: string, range: FrameRange) => `${renderKey}-${range.from}-${range.to}`;

export interface NodeHeartbeat {
  id: string;
  host: string;
  pid: number;
  version: string;
  routingKeys: string[];
  concurrency: number;
  engines: string[];
  encoders: string[];
  cpus: number;
  load: number[];
  running: number;
  startedAt: string;
  seenAt: string;
}

export const HEARTBEAT_PREFIX = 'montage:node:';
export const HEARTBEAT_TTL_SEC = 10;
