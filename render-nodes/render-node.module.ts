import { Module } from '@nestjs/common';
import { EnginesModule, FarmWorkspaceRepository, LiveFilesRepository, OutputStorageModule, RenderModule } from '../src/render-node-kit';
import { AssemblyJob } from './assembly.job';
import { FarmJob } from './farm.job';
import { NodeJobs } from './node-jobs';
import { OutputJob } from './output.job';
import { PiecePublisher } from './piece-publisher';
import { RenderNodeRunner } from './render-node.runner';
import { SegmentJob } from './segment.job';
import { SoundJob } from './sound.job';

/**
 * A render node: the engines, queue workers for every job kind, and the live channels its
 * output goes out on. No HTTP, no database. The API runs one inside its own process unless
 * EMBEDDED_RENDER_NODE=0.
 */
@Module({
  imports: [RenderModule, EnginesModule, OutputStorageModule],
  providers: [LiveFilesRepository, NodeJobs, PiecePublisher, OutputJob, SegmentJob, SoundJob, AssemblyJob, FarmWorkspaceRepository, FarmJob, RenderNodeRunner],
})
export class RenderNodeModule {}
