import { Module } from '@nestjs/common';
import * as path from 'node:path';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { RenderModule } from '../render/render.module';
import { FileProjectsRepository } from '../repositories/projects-file.repository';
import type { DocumentStore } from '../repositories/document-store/port';
import { createDocumentStore } from '../repositories/document-store/factory';
import { PROJECTS_REPOSITORY } from './project.types';
import { ProjectsService } from './projects.service';
import { StoreProjectsRepository } from './store-projects.repository';

const CLI_STORE = Symbol('CLI_STORE');

/**
 * Projects for the command line, next to a running service: with MongoDB through the store
 * (a provider, so it is closed with the CLI); otherwise through the project files only,
 * never opening the service's NeDB files.
 */
@Module({
  imports: [RenderModule],
  providers: [
    {
      provide: CLI_STORE,
      inject: [MONTAGE_CONFIG],
      useFactory: (config: MontageConfig) => (config.mongodbUri ? createDocumentStore(config) : null),
    },
    {
      provide: PROJECTS_REPOSITORY,
      inject: [CLI_STORE, MONTAGE_CONFIG],
      useFactory: (store: DocumentStore | null, config: MontageConfig) =>
        store ? new StoreProjectsRepository(store) : new FileProjectsRepository(path.join(config.dataDir, 'projects')),
    },
    ProjectsService,
  ],
  exports: [ProjectsService],
})
export class CliProjectsModule {}
