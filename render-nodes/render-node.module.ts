import { Module } from '@nestjs/common';
import { RenderModule } from '../src/render/render.module';
import { RenderNodeRunner } from './render-node.runner';
import { SegmentRenderer } from './segment-renderer';

/** A render node: the renderer core and queue workers; no HTTP, no database. */
@Module({
  imports: [RenderModule],
  providers: [SegmentRenderer, RenderNodeRunner],
})
export class RenderNodeModule {}
