import { Module } from '@nestjs/common';
import { RenderModule } from '../src/render/render.module';
import { StorageModule } from '../src/repositories/output-storage/output-storage.module';
import { RenderNodeRunner } from './render-node.runner';
import { SegmentRenderer } from './segment-renderer';

/** A render node: the renderer core and queue workers; no HTTP, no database; segments go to the shared storage. */
@Module({
  imports: [RenderModule, StorageModule],
  providers: [SegmentRenderer, RenderNodeRunner],
})
export class RenderNodeModule {}
