import { Module } from '@nestjs/common';
import { RenderModule } from '../render/render.module';
import { DiskAreasRepository } from '../repositories/disk-areas.repository';
import { CacheSweeper } from './cache-sweeper';
import { DiskUsage } from './disk-usage';

/** The data dir's caches and staging, swept in every process that has them (API and render nodes). */
@Module({
  imports: [RenderModule], // for MONTAGE_CONFIG
  providers: [DiskAreasRepository, DiskUsage, CacheSweeper],
  exports: [DiskAreasRepository, DiskUsage, CacheSweeper],
})
export class RetentionModule {}
