import type { FrameRange } from '../compiler/ffmpeg-args';
import type { OutputProfile } from '../compiler/output-profiles';

/** Every kind of job. Each has exactly one handler; a worker refuses to start without it. */
export enum JobName {
  /** Frames [from, to) of a movie, video only: taken by render nodes. */
  RenderSegment = 'render-segment',
  /** The parent of a distributed render's segments: runs once all are done, in the API. */
  AssembleRender = 'assemble-render',
}

/** Who takes which jobs: render nodes from `render.<routingKey>`, the API from `montage.assembly`. */
export enum QueueKind {
  Render = 'render',
  Assembly = 'assembly',
}

export const JOB_QUEUE_KIND = {
  [JobName.RenderSegment]: QueueKind.Render,
  [JobName.AssembleRender]: QueueKind.Assembly,
} as const satisfies Record<JobName, QueueKind>;

export const ASSEMBLY_QUEUE = 'montage.assembly';

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
  /** The identity of the storage the API reads segments from: a node on another storage refuses the job. */
  storageId?: string;
}

export interface RenderSegmentResult {
  segment: string;
  frames: number;
  bytes: number;
  node: string;
  /** Frames and segments of this lane up to and including this one (see the render flow). */
  laneFrames: number;
  laneSegments: number;
}

export interface AssembleRenderPayload {
  renderKey: string;
  totalFrames: number;
  segments: number;
}

export interface AssembleRenderResult {
  frames: number;
  segments: number;
}

export interface JobPayloads {
  [JobName.RenderSegment]: RenderSegmentPayload;
  [JobName.AssembleRender]: AssembleRenderPayload;
}
export interface JobResults {
  [JobName.RenderSegment]: RenderSegmentResult;
  [JobName.AssembleRender]: AssembleRenderResult;
}

export interface JobContext {
  attempt: number;
  progress(value: number): Promise<void>;
  /** The results of the job's children in a flow (none for a job without children). */
  childrenValues(): Promise<unknown[]>;
  /** Aborts when this process shuts down and hands its running jobs back: stop, and throw. */
  signal: AbortSignal;
}

type JobsOf<K extends QueueKind> = { [N in JobName]: (typeof JOB_QUEUE_KIND)[N] extends K ? N : never }[JobName];

/** One handler for every job of a queue kind: a worker of that kind refuses to start without each. */
export type JobHandlers<K extends QueueKind> = { [N in JobsOf<K>]: (payload: JobPayloads[N], ctx: JobContext) => Promise<JobResults[N]> };

/** A job of a flow: its children run first (see renderFlow in RendersService). */
export interface FlowJob<N extends JobName = JobName> {
  name: N;
  queue: string;
  jobId: string;
  payload: JobPayloads[N];
  /** Lower runs first among waiting jobs of its queue (BullMQ priority, 1 = highest). */
  priority?: number;
  children?: FlowJob[];
}

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
