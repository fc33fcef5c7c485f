import type { FrameRange } from '../compiler/ffmpeg-args';
import type { OutputProfile } from '../compiler/output-profiles';
import { EngineName } from '../engines/engine';
import type {
  EncodeTurntablePayload,
  EncodeTurntableResult,
  InspectScenePayload,
  RenderFarmFramesPayload,
  RenderFarmFramesResult,
  SceneInventory,
} from '../farm/farm.types';

/** Every kind of job. Each has exactly one handler; a worker refuses to start without it. */
export enum JobName {
  /** A whole output (any format) rendered by one node, published on its live channel as it is written, then stored. */
  RenderOutput = 'render-output',
  /** Frames [from, to) of a movie, video only, published piece by piece on the segment's channel. */
  RenderSegment = 'render-segment',
  /** A distributed render's segments joined in order as they arrive, the sound muxed once, published and stored. */
  AssembleRender = 'assemble-render',
  /** Play mode's sound: the movie's sound track mixed once into fragmented AAC and stored under its key. */
  RenderSound = 'render-sound',
  /** One upload task: the stored output streamed to its destination (S3, HTTP, Azure, FTP, SFTP, YouTube, Facebook). */
  Upload = 'upload',
  /** One webhook message to one endpoint: one attempt per run, later attempts on the retry schedule. */
  SendWebhook = 'send-webhook',
  /** One item of a batch: its outputs rendered on the farm, its result recorded for the batch's webhook. */
  RenderBatchItem = 'render-batch-item',
  /** Finished items of a batch not yet sent go to its webhook, `size` at a time. */
  FlushBatch = 'flush-batch',
  /** A farm job's chunk: scene (or product shot) frames rendered by Blender, each stored as it is saved. */
  RenderFarmFrames = 'render-farm-frames',
  /** An uploaded .blend read by Blender with scripts off: cameras, view layers, frames, external files. */
  InspectScene = 'inspect-scene',
  /** A product turntable's stored frames encoded into an MP4 and a GIF. */
  EncodeTurntable = 'encode-turntable',
  /** A product render request followed in an API process: its farm jobs, the turntable's encode, the webhooks. */
  TrackProductRender = 'track-product-render',
}

/** Who takes which jobs: render nodes take both kinds, from `render.<routingKey>` and `montage.assembly`. */
export enum QueueKind {
  Render = 'render',
  Assembly = 'assembly',
  /** Delivery work runs in API processes (it reads the store and decrypts credentials): never on render nodes. */
  Upload = 'upload',
  Webhook = 'webhook',
  Batch = 'batch',
  /** Batch groups to webhooks: their own queue, so a flush never waits behind item jobs that wait for renders. */
  BatchFlush = 'batch-flush',
  /** Product render requests followed by API processes (they emit webhooks and write the store). */
  Farm = 'farm',
}

export const JOB_QUEUE_KIND = {
  [JobName.RenderOutput]: QueueKind.Render,
  [JobName.RenderSegment]: QueueKind.Render,
  [JobName.RenderSound]: QueueKind.Render,
  [JobName.AssembleRender]: QueueKind.Assembly,
  [JobName.Upload]: QueueKind.Upload,
  [JobName.SendWebhook]: QueueKind.Webhook,
  [JobName.RenderBatchItem]: QueueKind.Batch,
  [JobName.FlushBatch]: QueueKind.BatchFlush,
  [JobName.RenderFarmFrames]: QueueKind.Render,
  [JobName.InspectScene]: QueueKind.Render,
  [JobName.EncodeTurntable]: QueueKind.Render,
  [JobName.TrackProductRender]: QueueKind.Farm,
} as const satisfies Record<JobName, QueueKind>;

/** Assembly only copies video and mixes sound: light work, taken by every node beside its renders. */
export const ASSEMBLY_QUEUE = 'montage.assembly';
export const UPLOAD_QUEUE = 'montage.uploads';
export const WEBHOOK_QUEUE = 'montage.webhooks';
export const BATCH_QUEUE = 'montage.batches';
export const BATCH_FLUSH_QUEUE = 'montage.batch-flush';
export const FARM_QUEUE = 'montage.farm';

/** What every job of a render carries: nodes never read the database. */
export interface RenderTarget {
  engine: EngineName;
  /** The device the engine renders on (Blender: CPU, CUDA, OPTIX, HIP): it picks the queue. */
  device?: string;
  /** The routing key of its queue (a node that hands a job on looks for another node taking it). */
  routingKey?: string;
  renderKey: string;
  /** The render's run (one per claim): channels and job ids of another run never mix with it. */
  run: string;
  project: string;
  movie: string;
  params: Record<string, unknown>;
  /** The template version the API planned with: a node with another version fails the job. */
  templateVersion?: string;
  profile: OutputProfile;
  /** The identity of the storage the API reads outputs from: a node on another storage refuses the job. */
  storageId?: string;
  /** The run's live channel (outputs) or the segment's channel. */
  channel: string;
  /** The run's progress hash (frames per piece of work, bytes streamed). */
  progressKey: string;
}

export interface RenderOutputPayload extends RenderTarget {
  /** Stills: the frame. */
  frame?: number;
  totalFrames: number;
}

export interface RenderSegmentPayload extends RenderTarget {
  range: FrameRange;
  index: number;
  /** Its content address: the node stores it under this key once rendered (or reuses it, if another run stored it meanwhile). */
  segmentKey?: string;
}

/** `soundKey`: where the API looks for it (the node checks it makes the same key). */
export interface RenderSoundPayload extends RenderTarget {
  soundKey: string;
}

export interface AssembleRenderPayload extends RenderTarget {
  format: 'mp4' | 'webm';
  totalFrames: number;
  fps: number;
  ranges: FrameRange[];
  /** Where each segment is published, and its job (to notice one that failed for good). */
  segments: Array<{ channel: string; queue: string; jobId: string; stored?: { key: string; ext: string } }>;
  /** The last segment of each lane (its flow's root): removed when the render fails for good, so nothing more of it runs. */
  laneRoots: string[];
}

/** Delivery payloads name a record in the store: credentials never travel through Redis. */
export interface UploadPayload {
  upload: string;
}
export interface SendWebhookPayload {
  message: string;
}
export interface RenderBatchItemPayload {
  batch: string;
  item: string;
}
/** A product render request (`prr_…`, in the store) to follow. */
export interface TrackProductRenderPayload {
  productRender: string;
}
export interface FlushBatchPayload {
  batch: string;
}

export interface RenderOutputResult {
  bytes: number;
  frames: number;
  node: string;
}

export interface RenderSegmentResult {
  frames: number;
  pieces: number;
  node: string;
  /** Published from storage: another render had drawn these frames. */
  reused?: boolean;
}

export interface AssembleRenderResult {
  bytes: number;
  frames: number;
  node: string;
}

export interface JobPayloads {
  [JobName.RenderOutput]: RenderOutputPayload;
  [JobName.RenderSegment]: RenderSegmentPayload;
  [JobName.RenderSound]: RenderSoundPayload;
  [JobName.AssembleRender]: AssembleRenderPayload;
  [JobName.Upload]: UploadPayload;
  [JobName.SendWebhook]: SendWebhookPayload;
  [JobName.RenderBatchItem]: RenderBatchItemPayload;
  [JobName.FlushBatch]: FlushBatchPayload;
  [JobName.RenderFarmFrames]: RenderFarmFramesPayload;
  [JobName.InspectScene]: InspectScenePayload;
  [JobName.EncodeTurntable]: EncodeTurntablePayload;
  [JobName.TrackProductRender]: TrackProductRenderPayload;
}
export interface JobResults {
  [JobName.RenderOutput]: RenderOutputResult;
  [JobName.RenderSegment]: RenderSegmentResult;
  [JobName.RenderSound]: { bytes: number; node: string; reused?: boolean };
  [JobName.AssembleRender]: AssembleRenderResult;
  [JobName.Upload]: { status: string };
  [JobName.SendWebhook]: { status: string };
  [JobName.RenderBatchItem]: { status: string };
  [JobName.FlushBatch]: { sent: number };
  [JobName.RenderFarmFrames]: RenderFarmFramesResult;
  [JobName.InspectScene]: { node: string; inventory: SceneInventory };
  [JobName.EncodeTurntable]: EncodeTurntableResult;
  [JobName.TrackProductRender]: { status: string };
}

/** Per-job queue options beside the defaults (3 attempts, exponential backoff from 0.5 s). */
export interface EnqueueOptions {
  attempts?: number;
  /** Exponential backoff's first delay. */
  backoffMs?: number;
  /** Runs no sooner than this many ms from now. */
  delayMs?: number;
  priority?: number;
}

/**
 * Thrown by a handler: try this job again after `delayMs` without spending an attempt (a
 * webhook's retry schedule, a batch flush that waits for more items). The handler keeps its
 * own count of tries where it needs one.
 */
export class RetryLater extends Error {
  constructor(readonly delayMs: number, reason = 'retry later') {
    super(reason);
    this.name = 'RetryLater';
  }
}

export interface JobContext {
  /** This start of the job (1, 2, …): higher for every start, retries, stalled re-runs and hand-backs alike. */
  attempt: number;
  progress(value: number): Promise<void>;
  /** No attempt is left after this one (or it fails for good anyway): the failure is the render's. */
  lastAttempt: boolean;
  /** Aborts when this process shuts down and hands its running jobs back: stop, and throw. */
  signal: AbortSignal;
}

type JobsOf<K extends QueueKind> = { [N in JobName]: (typeof JOB_QUEUE_KIND)[N] extends K ? N : never }[JobName];

/** One handler for every job of a queue kind: a worker of that kind refuses to start without each. */
export type JobHandlers<K extends QueueKind> = { [N in JobsOf<K>]: (payload: JobPayloads[N], ctx: JobContext) => Promise<JobResults[N]> };

/** A job of a flow: its children run first (see planRenderFlow). */
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
export const queueName = (routingKey: string, engine: EngineName = EngineName.FfmpegComposite, device = 'CPU') =>
  engine === EngineName.FfmpegComposite
    ? `render.${routingKey}` // the compositor keeps the short name
    : `render.${routingKey}.${engine}${device === 'CPU' ? '' : `.${device.toLowerCase()}`}`; // a GPU job waits for a node with that GPU

/** Deterministic job ids deduplicate: the same segment of the same render is one job. */
export const segmentJobId = (renderKey: string, run: string, range: FrameRange) => `${renderKey}-r${run}-${range.from}-${range.to}`;
/** The job of a whole output, or of a distributed render's assembly: what followers watch. */
export const runJobId = (renderKey: string, run: string) => `${renderKey}-r${run}`;

export interface NodeHeartbeat {
  id: string;
  host: string;
  pid: number;
  version: string;
  routingKeys: string[];
  concurrency: number;
  engines: string[];
  /** Blender on this node: its version and the Cycles device types it renders on. */
  blender?: { version?: string; devices: string[] };
  encoders: string[];
  cpus: number;
  load: number[];
  running: number;
  startedAt: string;
  seenAt: string;
}

export const HEARTBEAT_PREFIX = 'montage:node:';
export const HEARTBEAT_TTL_SEC = 10;
