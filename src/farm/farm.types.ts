/**
 * Render-farm jobs (issue 14): a project's own Blender scenes and 3D products, rendered frame
 * by frame on the render nodes. Shared shapes of the API side (files, jobs, products) and the
 * node side (job payloads, frame states). Nodes never read the database: a payload carries
 * every file key they need; what they report goes to Redis (frame states) and job results.
 */

/** What an uploaded file is, found from its bytes at confirm time (never from its name alone). */
export type FarmFileKind = 'blend' | 'model' | 'asset';

/** Blender's output formats a scene job may ask for (`-F`), and the file extension of each. */
export const FARM_FRAME_FORMATS = { PNG: 'png', JPEG: 'jpg', OPEN_EXR: 'exr', TIFF: 'tif', WEBP: 'webp' } as const;
export type FarmFrameFormat = keyof typeof FARM_FRAME_FORMATS;

/** Cycles devices a job may ask for (the node's queue is picked by it, as for template renders). */
export const FARM_DEVICES = ['CPU', 'CUDA', 'OPTIX', 'HIP', 'ONEAPI'] as const;
export type FarmDevice = (typeof FARM_DEVICES)[number];

/** What Blender told us about a .blend at confirm time (the `inspect` mode of montage_farm.py). */
export interface SceneInventory {
  /** The scene Blender opens the file with. */
  scene: string;
  cameras: string[];
  /** The active camera, if any. */
  camera?: string;
  viewLayers: string[];
  frameStart: number;
  frameEnd: number;
  frameStep: number;
  fps: number;
  width: number;
  height: number;
  resolutionPercent: number;
  engine: string;
  /** Paths of external files the scene uses (images, libraries, sounds, caches), as written in it (`//` = its folder). */
  externalFiles: string[];
  /** Blender's version that saved the file (e.g. "3.4.1"). */
  savedWith?: string;
}

/** What the glTF check found in a model (pure header/JSON check at confirm, no Blender). */
export interface ModelInfo {
  container: 'glb' | 'gltf';
  meshes: number;
  nodes: number;
  /** `asset.generator`, if the file names one. */
  generator?: string;
  /** A .gltf's buffers and images that are files beside it, not embedded (`data:`): a product cannot use it (its node lays out the model alone). */
  external?: string[];
}

/**
 * One confirmed file of a project (an upload; an archive's entries are one each). `_id` is the
 * `upload_id`. Files are content-addressed per project: `storageKey` derives from the project
 * and the sha-256, so the same bytes are stored once, whatever their paths.
 */
export interface FarmFileDoc {
  _id: string;
  project: string;
  /** Normalised relative path (`shot/lgt.blend`, `asset/tex/wood.png`): never absolute, never `..`. */
  path: string;
  kind: FarmFileKind;
  sha256: string;
  size: number;
  /** Where the bytes are: `storage.read(storageKey, ext)`. */
  storageKey: string;
  ext: string;
  inventory?: SceneInventory;
  model?: ModelInfo;
  /** The archive this entry came from (its upload's key). */
  archive?: string;
  createdAt: string;
}

/** A file a node lays out in a job's folder before Blender starts. */
export interface FarmFileRef {
  path: string;
  storageKey: string;
  ext: string;
  sha256: string;
  size: number;
}

/** Rentaflop's words for a job's state. */
export type FarmJobStatus = 'In progress' | 'Finished' | 'Stopped' | 'Failed';

export type FarmJobKind = 'scene' | 'product-stills' | 'product-turntable';

/** Settings of a scene job, validated against the scene's inventory. */
export interface SceneSettings {
  /** Scene frames, in order, each once. */
  frames: number[];
  /** As given (`1-10[1]`, `1,5,10-20`): shown back in listings. */
  framesSpec: string;
  renderLayer?: string;
  camera?: string;
  format: FarmFrameFormat;
  resolutionPercent: number;
  samples?: number;
  device: FarmDevice;
  blenderVersion?: string;
}

/** The automatic product set-up (no scene given: an automatic camera that frames the model and a neutral light rig). */
export interface ProductShot {
  /** `stills`: frame i is view i of PRODUCT_VIEWS; `turntable`: frame i of `count` is i × 360° / count around the model. */
  mode: 'stills' | 'turntable';
  count: number;
  width: number;
  height: number;
  samples: number;
}

/** One chunk of a job: a node renders its frames in one Blender. */
export interface FarmChunk {
  /** The BullMQ job id (deterministic: `farm-<job>-c<index>-a<attempt>`). */
  jobId: string;
  queue: string;
  frames: number[];
  /** Which try of these frames (1 for the job's own chunks; a retry's are higher). */
  attempt?: number;
  /** When it was queued: a frame state older than its newest chunk is of an earlier try. */
  createdAt?: string;
}

export interface FarmJobDoc {
  /** `job_<random>`: Rentaflop's `job_id`, Fox's task id. */
  _id: string;
  project: string;
  kind: FarmJobKind;
  /** The .blend (scene jobs) or the model (product jobs). */
  upload: string;
  product?: string;
  /** The product render request this job belongs to (products). */
  productRender?: string;
  settings: SceneSettings;
  shot?: ProductShot;
  /** Fox's `project_name`: a label to filter tasks by (not the Montage project). */
  projectName?: string;
  /** The render queue's routing key (`routingkey`, default `default`). */
  routingKey?: string;
  totalFrames: number;
  chunks: FarmChunk[];
  /** Set by a stop: no chunk starts after it, running ones finish. */
  stoppedAt?: string;
  /** Set once every frame is done or failed for good (frame states are then copied in `frames`). */
  settledAt?: string;
  /** Set by a delete while a chunk still runs: the job is hidden, and the settler sweeps its frames and the document once no chunk is left. */
  removedAt?: string;
  /** Frame states copied from Redis when the job settles (Redis keeps them only while it runs). */
  frames?: Record<string, FrameState>;
  status: FarmJobStatus;
  createdAt: string;
  updatedAt: string;
}

/** One frame, as a node reports it (Redis hash `montage:farm:<job>:frames`, field = the frame number). */
export interface FrameState {
  status: 'rendering' | 'done' | 'failed';
  node: string;
  /** Done: where the frame is stored, its size and hash (the download manifest). */
  storageKey?: string;
  ext?: string;
  bytes?: number;
  sha256?: string;
  error?: string;
  at: string;
}

/** The node's job: render `frames` of a scene (or of a product shot) and store each one as it is saved. */
export interface RenderFarmFramesPayload {
  engine: 'blender';
  /** The farm job (`job_…`), its project, and this chunk. */
  job: string;
  project: string;
  chunk: number;
  attempt: number;
  frames: number[];
  /** A scene: its .blend (`main`) and the files laid out beside it; a product: its model and the shot. */
  source: { kind: 'blend'; main: FarmFileRef; files: FarmFileRef[] } | { kind: 'product'; model: FarmFileRef; shot: ProductShot };
  settings: Omit<SceneSettings, 'frames' | 'framesSpec'>;
  /** Each frame is stored as `storage.storeOutput(frameKey(job, frame), ext)`. */
  storageId?: string;
}

export interface RenderFarmFramesResult {
  node: string;
  frames: Array<{ frame: number } & Required<Pick<FrameState, 'storageKey' | 'ext' | 'bytes' | 'sha256'>>>;
}

/** The node's job: a .blend's inventory (cameras, view layers, frames, external files), read by Blender with scripts off. */
export interface InspectScenePayload {
  project: string;
  file: FarmFileRef;
}

/** The node's job: a turntable's stored frames encoded into an MP4 (and a GIF). */
export interface EncodeTurntablePayload {
  job: string;
  project: string;
  frames: FarmFileRef[];
  frameRate: number;
  width: number;
  height: number;
  includeGif: boolean;
  /** Stored as `storage.storeOutput(key, 'mp4' | 'gif')`. */
  mp4Key: string;
  gifKey?: string;
  storageId?: string;
}

export interface EncodeTurntableResult {
  node: string;
  mp4: { bytes: number; frames: number };
  gif?: { bytes: number; frames: number };
}

/** Stills of a product: one per view, named so. */
export const PRODUCT_VIEWS = ['front', 'front-right', 'right', 'back', 'left', 'top'] as const;

export const FARM_FILES_COLLECTION = 'farm_files';
export const FARM_JOBS_COLLECTION = 'farm_jobs';
export const PRODUCTS_COLLECTION = 'products';
