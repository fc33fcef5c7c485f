import { Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import * as path from 'node:path';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { WorkFilesRepository } from '../repositories/work-files.repository';
import { TemplatesService } from '../templates/templates.service';
import { ProjectsService } from './projects.service';

/**
 * Every template project gets a project record on start-up if it has none, with its first
 * API key written to `<dataDir>/<project>-api-key` (owner-readable only): the embedded
 * default works out of the box, and the README can say where the demo key is.
 */
@Injectable()
export class TemplateProjectsInitializer implements OnApplicationBootstrap {
  constructor(
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    private readonly projects: ProjectsService,
    private readonly templates: TemplatesService,
    private readonly work: WorkFilesRepository,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    for (const name of await this.templates.listProjects()) {
      await this.projects.ensureProject(name, async (key) => {
        const file = path.join(this.config.dataDir, `${name}-api-key`);
        await this.work.writeSecret(file, `${key}\n`);
        return file;
      });
    }
  }
}
