import { type DynamicModule, Logger, Module } from '@nestjs/common';
import { RenderNodeModule } from '../render-nodes/render-node.module';
import { NodesController } from './jobs/nodes.controller';
import { QueueModule } from './jobs/queue.module';
import * as path from 'node:path';
import { MONTAGE_CONFIG, type MontageConfig } from './config/config';
import { DeliveryController } from './delivery/delivery.controller';
import { PlayController } from './play/play.controller';
import { PlayService } from './play/play.service';
import { PlayFilesRepository } from './repositories/play-files.repository';
import { HealthController } from './health/health.controller';
import { MetricsController } from './metrics/metrics.controller';
import { MetricsService } from './metrics/metrics.service';
import { TemplateProjectsInitializer } from './projects/demo-project.initializer';
import { MoviesController } from './projects/movies.controller';
import { PROJECTS_REPOSITORY } from './projects/project.types';
import { ProjectsService } from './projects/projects.service';
import { StoreProjectsRepository } from './projects/store-projects.repository';
import { RenderModule } from './render/render.module';
import { TokensController } from './tokens/tokens.controller';
import { TokensService } from './tokens/tokens.service';
import { RenderRunner } from './renders/render-runner.service';
import { ConfigModule } from './config/config.module';
import { EnginesModule } from './engines/engines.module';
import { LiveFilesRepository } from './repositories/live-files.repository';
import { OutputStorageModule } from './repositories/output-storage/output-storage.module';
import { FileProjectsRepository } from './repositories/projects-file.repository';
import { DOCUMENT_STORE, type DocumentStore } from './repositories/document-store/port';
import { createDocumentStore } from './repositories/document-store/factory';
import { LifecycleModule } from './lifecycle/lifecycle.module';
import { LimitsModule } from './limits/limits.module';
import { TokenRemoval } from './renders/token-removal';
import { OutputAccessService } from './retention/output-access.service';
import { RetentionModule } from './retention/retention.module';
import { StoreSweeper } from './retention/store-sweeper';
import { waitForDependency } from './health/dependency-wait';
import { RenderEventsModule } from './renders/render-events';
import { SecretsModule } from './secrets/secrets.module';
import { WebhooksModule } from './webhooks/webhooks.module';
import { BatchesController } from './batches/batches.controller';
import { BatchesService } from './batches/batches.service';
import { ConnectionsController } from './connections/connections.controller';
import { ConnectionsService } from './connections/connections.service';
import { OutboundHttpRepository } from './repositories/outbound-http/outbound-http.repository';
import { UploadTargetModule } from './repositories/upload-target/upload-target.module';
import { UploadTasksService } from './uploads/upload-tasks.service';
import { UploadsService } from './uploads/uploads.service';
import { StudioController } from './studio/studio.controller';
import { StudioService } from './studio/studio.service';
import { StudioFilesRepository } from './repositories/studio-files.repository';
import { TemplateWatcherRepository } from './repositories/template-watcher.repository';
import { FARM_CONTROLLERS, FARM_PROVIDERS } from './farm/farm.module';

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
  /**
   * The API: plans, routes, follows and serves; renders run on render nodes. With the embedded
   * default (EMBEDDED_RENDER_NODE=1) one node runs inside this process, so a single machine works.
   */
  static forRoot(config: MontageConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [ConfigModule.forRoot(config), LifecycleModule, RenderModule, EnginesModule, OutputStorageModule, QueueModule, LimitsModule, RetentionModule, SecretsModule, RenderEventsModule, WebhooksModule, UploadTargetModule, ...(config.embeddedRenderNode ? [RenderNodeModule] : [])],
      // DeliveryController last: its `/:file` short form must not shadow the other routes; PlayController before it (`/v2/play/<token>.m3u8`).
      controllers: [HealthController, MetricsController, TokensController, MoviesController, NodesController, ConnectionsController, BatchesController, StudioController, ...FARM_CONTROLLERS, PlayController, DeliveryController],
      providers: [
        documentStoreProvider,
        projectsRepositoryProvider,
        ProjectsService,
        LiveFilesRepository,
        TokenRemoval,
        OutputAccessService,
        RenderRunner,
        TokensService,
        ConnectionsService,
        UploadTasksService,
        UploadsService,
        BatchesService,
        OutboundHttpRepository,
        StoreSweeper,
        TemplateProjectsInitializer,
        MetricsService,
        StudioService,
        StudioFilesRepository,
        TemplateWatcherRepository,
        PlayService,
        PlayFilesRepository,
        ...FARM_PROVIDERS,
      ],
    };
  }
}
