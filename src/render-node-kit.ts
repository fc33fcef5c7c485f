/**
 * Everything the render node program (`render-nodes/`) uses of the service, in one place:
 * the engines, the repositories it reaches (queue, live channels, storage, local files), the
 * job types and the pure streaming pieces. The node imports nothing else from `src/`.
 */
export { badInput, isPermanent, MontageError, renderFailed, unavailable, unusableMedia } from './common/errors';
export { loadConfig, MONTAGE_CONFIG, type MontageConfig } from './config/config';
export { ConfigModule } from './config/config.module';
export { EngineRegistry, EnginesModule } from './engines/engines.module';
export { type EngineCapabilities, EngineName, type EngineRenderResult, type EngineRequest } from './engines/engine';
export { formatSpec, type FragmentKind } from './formats/output-formats';
export {
  ASSEMBLY_QUEUE,
  type AssembleRenderPayload,
  type AssembleRenderResult,
  type JobContext,
  type JobHandlers,
  JobName,
  type NodeHeartbeat,
  QueueKind,
  queueName,
  RetryLater,
  type RenderOutputPayload,
  type RenderOutputResult,
  type RenderSegmentPayload,
  type RenderSegmentResult,
  type RenderSoundPayload,
  type RenderTarget,
} from './jobs/job.types';
export { JOB_QUEUE, LIVE_STREAM, QueueModule } from './jobs/queue.module';
export { LifecycleModule } from './lifecycle/lifecycle.module';
export { LifecycleService } from './lifecycle/lifecycle.service';
export { handleShutdown } from './lifecycle/shutdown';
export type { JobQueueRepository } from './repositories/job-queue/job-queue.repository';
export { LiveFilesRepository } from './repositories/live-files.repository';
export type { LiveStreamRepository } from './repositories/live-stream/live-stream.repository';
export { MediaRepository } from './repositories/media.repository';
export { OutputStorageModule } from './repositories/output-storage/output-storage.module';
export { OUTPUT_STORAGE, type OutputStorage, readWhole } from './repositories/output-storage/port';
export { RenderModule } from './render/render.module';
export { BlenderRepository, type FarmSandbox, type FarmSandboxState } from './repositories/blender.repository';
export { FarmWorkspaceRepository, type FarmWorkspace } from './repositories/farm-workspace.repository';
export { FARM_SCRIPT, FARM_SCRIPT_DIR, farmFrameFile, farmInspectArgs, farmRenderArgs, productRenderArgs, turntableEncodeArgs, turntableGifArgs } from './farm/blender-farm-args';
export { farmFrameKey } from './farm/farm-keys';
export { parseSceneInventory } from './farm/farm-inventory';
export {
  FARM_FRAME_FORMATS,
  type EncodeTurntablePayload,
  type EncodeTurntableResult,
  type FarmFileRef,
  type FrameState,
  type InspectScenePayload,
  type RenderFarmFramesPayload,
  type RenderFarmFramesResult,
  type SceneInventory,
} from './farm/farm.types';
export { RetentionModule } from './retention/retention.module';
export { Fmp4Joiner } from './streaming/fmp4-joiner';
export { fragmentChunker, framesInFile, framesInPiece } from './streaming/fragment-chunker';
export { IvfJoiner, type SegmentJoiner } from './streaming/ivf-joiner';
export { PieceSequence } from './streaming/live-entries';
