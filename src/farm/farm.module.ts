import { FarmFilesController } from './farm-files.controller';
import { FarmFilesService } from './farm-files.service';
import { FarmJobsController } from './farm-jobs.controller';
import { FarmJobsService } from './farm-jobs.service';
import { FarmSettler } from './farm-settler';
import { FarmStore } from './farm-store';
import { FarmSweeper } from './farm-sweeper';
import { FarmUrlsService } from './farm-urls.service';
import { ArchiveRepository } from '../repositories/archive.repository';
import { FarmSpoolRepository } from '../repositories/farm-spool.repository';
import { PRODUCTS_CONTROLLERS, PRODUCTS_PROVIDERS } from '../products/products.module';

/**
 * The farm's controllers and providers. They join AppModule's own (spread there, not a Nest
 * module of their own): they need ProjectsService and the document store, which are
 * AppModule providers, and a second instance of either would be a second store.
 */
export const FARM_CONTROLLERS = [FarmFilesController, FarmJobsController, ...PRODUCTS_CONTROLLERS];
export const FARM_PROVIDERS = [FarmFilesService, FarmUrlsService, FarmSpoolRepository, ArchiveRepository, FarmStore, FarmJobsService, FarmSettler, FarmSweeper, ...PRODUCTS_PROVIDERS];
