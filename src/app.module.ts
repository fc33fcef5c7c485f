import { type DynamicModule, Logger, Module } from '@nestjs/common';
import { RenderNodeModule } from '../render-nodes/render-node.module';
import { NodesController } from './jobs/nodes.controller';
import { QueueModule } from './jobs/queue.module';
import * as path from 'node:path';
import { MONTAGE_CONFIG, type MontageConfig } from './config/config';
import { DeliveryController } from './delivery/delivery.controller';
import { HealthController } from './health/health.controller';
import { MetricsController } from './metrics/metrics.controller';
import { MetricsService } from './metrics/metrics.service';
import { TemplateProjectsInitializer } from './projects/demo-project.initializer';
import { MoviesController } from './projects/movies.controller';
import { PROJECTS_REPOSITORY } from './projects/project.types';
import { ProjectsService } from './projects/projects.service';
import { StoreProjectsRepository } from './projects/store-projects.repository';
import { RenderModule } from './render/render.module';
import { RenderRequestsController } from './renders/render-requests.controller';
import { RendersService } from './renders/renders.service';
import { LiveFilesRepository } from './repositories/live-files.repository';
import { StorageModule } from './repositories/output-storage/output-storage.module';
import { FileProjectsRepository } from './repositories/projects-file.repository';
import { DOCUMENT_STORE, type DocumentStore } from './repositories/document-store/port';
import { createDocumentStore } from './repositories/document-store/factory';
import { LifecycleModule } from './lifecycle/lifecycle.module';
import { LimitsModule } from './limits/limits.module';
import { LiveRenders } from './renders/live-renders';
import { TokenRemoval } from './renders/token-removal';
import { OutputAccessService } from './retention/output-access.service';
import { RetentionModule } from './retention/retention.module';
import { StoreSweeper } from './retention/store-sweeper';
import { waitForDependency } from './health/dependency-wait';

/** Projects live with the documents on MongoDB; with the embedded store, in files the CLI can share. */
export const projectsRepositoryProvider = {
  provide: PROJECTS_REPOSITORY,
  inject: [DOCUMENT_STORE, MONTAGE_CONFIG],
  useFactory: (store: DocumentStore, config: MontageConfig) =>
    store.kind === 'mongodb' ? new StoreProjectsRepository(store) : new FileProjectsRepository(path.join(config.dataDir, 'projects')),
};

/** The document store; MongoDB is waited for at start-up (said once, with backoff) up to STARTUP_TIMEOUT_MS. */
export const documentStoreProvider = {
  provide: DOCUMENT_STORE,
  inject: [MONTAGE_CONFIG],
  useFactory: (config: MontageConfig) =>
    waitForDependency(config.mongodbUri ? 'MongoDB (MONGODB_URI)' : 'the embedded document store', () => createDocumentStore(config), {
      publicName: 'store',
      timeoutMs: config.startupTimeoutMs,
      logger: new Logger('Store'),
    }),
};

@Module({})
export class AppModule {
  /** The API; with the embedded default it also runs a render node in the same process. */
  static forRoot(config: MontageConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [LifecycleModule, RenderModule, StorageModule, QueueModule, LimitsModule, RetentionModule, ...(config.embeddedRenderNode ? [RenderNodeModule] : [])],
      // DeliveryController last: its `/:file` short form must not shadow the other routes.
      controllers: [HealthController, MetricsController, RenderRequestsController, MoviesController, NodesController, DeliveryController],
      providers: [
        documentStoreProvider,
        projectsRepositoryProvider,
        ProjectsService,
        LiveFilesRepository,
        LiveRenders,
        TokenRemoval,
        OutputAccessService,
        RendersService,
        StoreSweeper,
        TemplateProjectsInitializer,
        MetricsService,
      ],
    };
  }
}
