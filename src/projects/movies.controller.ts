import { Controller, Get, Param } from '@nestjs/common';
import { notFound } from '../common/errors';
import { TemplatesService } from '../templates/templates.service';
import { declaredDurationSec } from '../templates/template.types';
import type { ProjectDoc } from './project.types';
import { ProjectsService } from './projects.service';
import { signedUrl } from './url-signing';

/** What a front-end needs to build a form for a movie: its variables, size, duration, a poster. */
@Controller('v2/projects/:projectId/movies')
export class MoviesController {
  constructor(
    private readonly templates: TemplatesService,
    private readonly projects: ProjectsService,
  ) {}

  @Get()
  async list(@Param('projectId') projectId: string) {
    const project = await this.projectOr404(projectId);
    const movies = await this.templates.listMovies(projectId);
    return { project: projectId, movies: await Promise.all(movies.map((m) => this.describe(project, m, false))) };
  }

  @Get(':movie')
  async one(@Param('projectId') projectId: string, @Param('movie') movie: string) {
    return this.describe(await this.projectOr404(projectId), movie, true);
  }

  private async describe(project: ProjectDoc, movie: string, withVariables: boolean) {
    const projectId = project._id;
    const template = await this.templates.load(projectId, movie);
    const { spec } = template;
    const needsInput = Object.values(spec.variables).some((v) => v.required && v.default === undefined);
    const durationSec = declaredDurationSec(spec);
    return {
      name: movie,
      title: spec.title ?? movie,
      description: spec.description,
      width: spec.canvas.width,
      height: spec.canvas.height,
      fps: spec.canvas.fps,
      /** With default params; a list variable can make it longer. */
      durationSec,
      version: template.version,
      // A signed URL for the poster with default params, when the defaults are enough to render.
      posterUrl: needsInput ? null : signedUrl('', projectId, movie, 'jpg', {}, project.signingSecret),
      ...(withVariables ? { variables: spec.variables } : { variableNames: Object.keys(spec.variables) }),
    };
  }

  private async projectOr404(projectId: string) {
    const project = await this.projects.find(projectId);
    if (!project) throw notFound(`unknown project "${projectId.slice(0, 64)}"`, [{ field: 'project', message: 'unknown project' }]);
    return project;
  }
}
