import { Module } from '@nestjs/common';
import { ArchiveRepository } from '../repositories/archive.repository';
import { OutputStorageModule } from '../repositories/output-storage/output-storage.module';
import { FarmFilesService } from './farm-files.service';
import { FarmJobsController } from './farm-jobs.controller';
import { FarmJobsService } from './farm-jobs.service';
import { FarmStore } from './farm-store';

/** Render-farm jobs of a project's own scenes (Rentaflop's and Fox's contracts). */
@Module({
  imports: [OutputStorageModule],
  controllers: [FarmJobsController],
  providers: [FarmStore, FarmFilesService, ArchiveRepository, FarmJobsService],
  exports: [FarmStore, FarmFilesService, FarmJobsService],
})
export class FarmModule {}
