import { Inject, Injectable } from '@nestjs/common';
import * as path from 'node:path';
import { badInput, type ErrorDetail, MontageError } from '../common/errors';
import { resolveMovie } from '../compiler/resolve';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import type { ProjectDoc } from '../projects/project.types';
import { ProjectsService } from '../projects/projects.service';
import { TemplateWatcherRepository } from '../repositories/template-watcher.repository';
import { TemplatesService } from '../templates/templates.service';
import { declaredDurationSec } from '../templates/template.types';
import { type FormField, formFields } from './form-model';
import { embedSnippets, type EmbedSnippets } from './snippet';
import { type Timeline, timelineOf } from './timeline';

export interface StudioMovie {
  name: string;
  title: string;
  description?: string;
  width?: number;
  height?: number;
  fps?: number;
  durationSec?: number;
  version?: string;
  engine?: string;
  /** null while the movie does not load (its problems say why). */
  fields: FormField[] | null;
  /** `templates check`: `file:line` and message each. */
  problems: ErrorDetail[];
}

const MOVIE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** The designer studio: a movie's form, problems, timeline and embed snippets, and template changes as they happen. */
@Injectable()
export class StudioService {
  constructor(
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    private readonly projects: ProjectsService,
    private readonly templates: TemplatesService,
    private readonly watcher: TemplateWatcherRepository,
  ) {}

  authenticate(projectId: string, key: string | undefined): Promise<ProjectDoc> {
    return this.projects.authenticate(projectId, key);
  }

  async movies(project: ProjectDoc): Promise<{ project: string; movies: Array<{ name: string; title: string }> }> {
    const names = await this.templates.listMovies(project._id);
    const movies = await Promise.all(
      names.map(async (name) => {
        const title = await this.templates.load(project._id, name).then((t) => t.spec.title ?? name, () => name);
        return { name, title };
      }),
    );
    return { project: project._id, movies };
  }

  /** The movie as the studio shows it; a movie that does not load still answers, with its problems. */
  async movie(project: ProjectDoc, movie: string): Promise<StudioMovie> {
    const name = checkedMovieName(movie);
    const problems = await this.templates.check(project._id, name);
    try {
      const template = await this.templates.load(project._id, name);
      const { spec } = template;
      const durationSec = declaredDurationSec(spec);
      return {
        name,
        title: spec.title ?? name,
        description: spec.description,
        width: spec.canvas.width,
        height: spec.canvas.height,
        fps: spec.canvas.fps,
        durationSec,
        version: template.version,
        engine: spec.engine,
        fields: formFields(spec.variables),
        problems,
      };
    } catch (err) {
      // Unknown movie: a 404 as anywhere else. A template that does not parse: its problems, no form.
      if (err instanceof MontageError && err.kind === 'bad_input') return { name, title: name, fields: null, problems };
      throw err;
    }
  }

  /** Scenes and layers as frame ranges, for these params (400 naming each bad param, as a token POST would). */
  async timeline(project: ProjectDoc, body: unknown): Promise<Timeline> {
    const { movie, params } = movieAndParams(body);
    const template = await this.templates.load(project._id, movie);
    const validated = this.templates.validateParams(template, params);
    return timelineOf(resolveMovie(template, validated));
  }

  /** Embed snippets for these params; the signed URL is made here, so the secret never leaves the service. */
  async embed(project: ProjectDoc, body: unknown, base: string): Promise<EmbedSnippets> {
    const { movie, params, token } = movieAndParams(body);
    const template = await this.templates.load(project._id, movie);
    this.templates.validateParams(template, params); // a URL that would only fail later is refused now
    return embedSnippets({ base, project: project._id, movie, params: params as Parameters<typeof embedSnippets>[0]['params'], token, signingSecret: project.signingSecret });
  }

  /**
   * Calls `onChange` with the movies whose files changed (all of them when shared partials did),
   * after each burst of edits in the project's template folder; returns the unsubscribe.
   */
  watch(project: ProjectDoc, onChange: (movies: string[]) => void): () => void {
    const dir = path.join(this.config.templatesDir, project._id);
    return this.watcher.subscribe(dir, ({ paths }) => {
      const tops = new Set(paths.map((p) => p.split('/')[0]));
      onChange(tops.has('_partials') ? ['*'] : [...tops].filter((t) => MOVIE_NAME.test(t)).sort());
    });
  }
}

function checkedMovieName(movie: unknown): string {
  if (typeof movie !== 'string' || !MOVIE_NAME.test(movie)) throw badInput('movie must be a movie name (letters, digits, - and _)', [{ field: 'movie', message: 'not a movie name' }]);
  return movie;
}

function movieAndParams(body: unknown): { movie: string; params: Record<string, unknown>; token?: string } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badInput('send a JSON object {movie, params}', [{ field: '(body)', message: 'expected an object' }]);
  const { movie, params = {}, token, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length) throw badInput(`unknown field "${unknown[0].slice(0, 64)}"; the fields are movie, params, token`, unknown.slice(0, 20).map((k) => ({ field: k.slice(0, 64), message: 'unknown field' })));
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw badInput('params must be an object', [{ field: 'params', message: 'expected an object' }]);
  if (token !== undefined && (typeof token !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(token))) throw badInput('token must be a token', [{ field: 'token', message: 'not a token' }]);
  return { movie: checkedMovieName(movie), params: params as Record<string, unknown>, token: token as string | undefined };
}
