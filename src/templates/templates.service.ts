import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { badInput, type ErrorDetail, MontageError, notFound } from '../common/errors';
import { createHandlebarsEnv } from '../compiler/handlebars-env';
import { compilePattern, MEDIA_TYPES, type Params, validateParams, type ValidateOptions } from '../compiler/params';
import { lottieAssetFiles, readLottieHeader } from '../compiler/lottie';
import { resolveMovie } from '../compiler/resolve';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { FontsRepository } from '../repositories/fonts.repository';
import { TemplateFilesRepository } from '../repositories/template-files.repository';
import { BlenderScenesService } from '../engines/blender/blender-scenes.service';
import { FONT_FILE, type FontNames } from './font-names';
import { explainIssue, type MovieFile, movieSchema, type Variable } from './movie.schema';
import { GENERIC_FAMILIES, svgFontFamilies } from './svg-check';
import { type PartialUse, unknownReferences } from './template-references';
import type { LoadedTemplate } from './template.types';
import { parseSource } from './yaml-source';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export interface TemplateCheck {
  id: string;
  errors: ErrorDetail[];
}

/** Loads, validates and lists the designers' movie templates. */
@Injectable()
export class TemplatesService {
  /** Parsed templates by movie file, reused while their version (content hash) is unchanged. */
  private readonly loaded = new Map<string, LoadedTemplate>();

  constructor(
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    private readonly files: TemplateFilesRepository,
    private readonly fonts: FontsRepository,
    private readonly blenderScenes: BlenderScenesService,
  ) {}

  async listProjects(): Promise<string[]> {
    return this.files.listDirs(this.config.templatesDir);
  }

  async listMovies(project: string): Promise<string[]> {
    const dir = await this.projectDir(project);
    const movies: string[] = [];
    for (const name of await this.files.listDirs(dir)) {
      if (await this.files.findMovieFile(path.join(dir, name))) movies.push(name);
    }
    return movies;
  }

  /** `project/movie` → a checked template, or a MontageError whose details are `file:line` messages. */
  async load(project: string, movie: string): Promise<LoadedTemplate> {
    const dir = path.join(await this.projectDir(project), this.safeName(movie, 'movie'));
    const file = (await this.files.isDir(dir)) ? await this.files.findMovieFile(dir) : undefined;
    if (!file) {
      const known = await this.listMovies(project);
      throw notFound(`unknown movie "${movie}" in project "${project}"; it has ${known.join(', ') || 'no movies'}`, [
        { field: 'movie', message: `unknown movie "${movie}"` },
      ]);
    }
    const rel = `${project}/${movie}/${file}`;
    // The version is a hash of every file's content (hashes remembered by size and mtime), so it
    // costs a directory listing and a few stats; parsing is redone only when it changes.
    const files = await this.files.listFiles(dir);
    const projectPartialsDir = path.join(this.config.templatesDir, project, '_partials');
    const sharedPartials = (await this.files.listFiles(projectPartialsDir)).filter((f) => f.endsWith('.hbs'));
    const versionHash = createHash('sha256');
    for (const f of files) versionHash.update(`${f}\0${await this.files.hashFile(path.join(dir, f))}\0`);
    for (const f of sharedPartials) versionHash.update(`_partials/${f}\0${await this.files.hashFile(path.join(projectPartialsDir, f))}\0`);
    const version = versionHash.digest('hex').slice(0, 16);
    const cached = this.loaded.get(rel);
    if (cached?.version === version) return cached;

    const parsed = parseSource(rel, await this.files.readText(path.join(dir, file)));
    if (!parsed.ok) throw badInput(`${parsed.errors[0].field}: ${parsed.errors[0].message}`, parsed.errors);
    const { doc } = parsed;
    const checked = movieSchema.safeParse(doc.data);
    if (!checked.success) {
      const errors = checked.error.issues.map((raw) => {
        const issue = explainIssue(raw);
        return { field: `${rel}:${doc.lineOf(issue.path)}`, message: `${issue.path.join('.') || '(movie)'}: ${issue.message}` };
      });
      throw badInput(`${errors[0].field}: ${errors[0].message}`, errors);
    }
    const partials: Record<string, string> = {};
    for (const f of sharedPartials) partials[partialName(f)] = await this.files.readText(path.join(projectPartialsDir, f));
    for (const f of files.filter((f) => f.startsWith('partials/') && f.endsWith('.hbs'))) {
      partials[partialName(f.slice('partials/'.length))] = await this.files.readText(path.join(dir, f));
    }
    const svgSources: Record<string, string> = {};
    for (const f of files.filter((f) => f.endsWith('.svg.hbs'))) svgSources[f] = await this.files.readText(path.join(dir, f));

    const fonts: Record<string, FontNames> = {};
    for (const f of files.filter((f) => FONT_FILE.test(f))) fonts[f] = await this.fonts.familiesOf(path.join(dir, f));

    const template: LoadedTemplate = {
      project,
      movie,
      dir,
      file: rel,
      version,
      spec: checked.data,
      svgSources,
      partials,
      files,
      fonts,
      // None known (no fc-list here): renders are not refused for it, `templates check` says so.
      installedFamilies: await this.fonts.installedFamilies().then((f) => (f.size ? f : undefined)),
      lineOf: doc.lineOf,
    };
    // A misspelt name would render as empty text: refused here, so a render fails with a 400 naming it.
    const unknown = referenceErrors(template, createHandlebarsEnv().helpers);
    if (unknown.length) throw badInput(`${unknown[0].field}: ${unknown[0].message}`, unknown);
    this.loaded.set(rel, template);
    return template;
  }

  /** Params validated against the movie's variables: 400 naming every bad field. */
  validateParams(template: LoadedTemplate, raw: Record<string, unknown>, options: ValidateOptions = {}): Params {
    // A constant is the template's own: a param of that name is refused by name, not taken.
    const constantErrors = Object.keys(raw)
      .filter((k) => Object.hasOwn(template.spec.constants, k))
      .map((k) => ({ field: k, message: `"${k}" is a constant of this movie, not a variable: it cannot be set` }));
    const rest = Object.fromEntries(Object.entries(raw).filter(([k]) => !Object.hasOwn(template.spec.constants, k)));
    const validated = validateParams(template.spec.variables, rest, options);
    const result = constantErrors.length ? { ok: false as const, errors: [...constantErrors, ...(validated.ok ? [] : validated.errors)] } : validated;
    if (!result.ok) {
      const shown = result.errors.slice(0, 5).map((e) => `${e.field.slice(0, 60)}: ${e.message.slice(0, 200)}`);
      const more = result.errors.length > 5 ? `; and ${result.errors.length - 5} more (see details)` : '';
      throw badInput(`invalid params for ${template.project}/${template.movie}: ${shown.join('; ')}${more}`, result.errors);
    }
    return result.params;
  }

  /**
   * Everything that can be checked before a render: the file parses and matches the format,
   * variables' defaults are valid, fonts exist, Handlebars compiles, and the movie resolves
   * with sample values for its variables.
   */
  async check(project: string, movie: string): Promise<ErrorDetail[]> {
    let template: LoadedTemplate;
    try {
      template = await this.load(project, movie);
    } catch (err) {
      if (err instanceof MontageError) return err.details.length ? err.details : [{ field: `${project}/${movie}`, message: err.message }];
      throw err;
    }
    const errors: ErrorDetail[] = [];
    const at = (p: Array<string | number>) => `${template.file}:${template.lineOf(p)}`;
    const { spec } = template;
    for (const [name, variable] of Object.entries(spec.variables)) {
      errors.push(...this.checkVariable(template, name, variable, at));
    }
    errors.push(...(await this.checkFonts(template, at)));
    const hb = createHandlebarsEnv(template.partials);
    errors.push(...(await this.checkSvgFonts(template)));
    for (const [file, source] of Object.entries(template.svgSources)) {
      try {
        hb.precompile(source);
      } catch (err) {
        errors.push({ field: `${template.project}/${template.movie}/${file}:${handlebarsLine(err)}`, message: handlebarsMessage(err) });
      }
    }
    walkStrings(spec, [], (value, p) => {
      try {
        hb.precompile(value);
      } catch (err) {
        errors.push({ field: at(p), message: `Handlebars: ${handlebarsMessage(err)}` });
      }
    });
    // A Blender scene's bindings against what the scene has (Blender is asked once per version).
    if (errors.length === 0 && spec.engine === 'blender') errors.push(...(await this.blenderScenes.check(template)));
    if (errors.length === 0) {
      try {
        resolveMovie(template, sampleParams(spec));
      } catch (err) {
        if (!(err instanceof MontageError)) throw err;
        errors.push(...err.details);
      }
    }
    if (errors.length === 0) errors.push(...(await this.checkLottie(template, at)));
    return errors;
  }

  /** Lottie files read as a render would read them: the header, its limits, and the images and fonts it needs among the template's files. */
  private async checkLottie(template: LoadedTemplate, at: (p: Array<string | number>) => string): Promise<ErrorDetail[]> {
    const errors: ErrorDetail[] = [];
    for (const [si, scene] of template.spec.scenes.entries()) {
      for (const [li, layer] of scene.layers.entries()) {
        if (layer.type !== 'lottie' || layer.src.includes('{{')) continue;
        const rel = path.posix.normalize(layer.src);
        if (!template.files.includes(rel)) continue; // resolve already said so
        const field = at(['scenes', si, 'layers', li, 'src']);
        const header = readLottieHeader(await this.files.readText(path.join(template.dir, rel)));
        const problem = typeof header === 'string' ? header : lottieAssetFiles(header, rel, template.files);
        if (typeof problem === 'string') errors.push({ field, message: problem });
      }
    }
    return errors;
  }

  async checkAll(): Promise<TemplateCheck[]> {
    const out: TemplateCheck[] = [];
    for (const project of await this.listProjects()) {
      for (const movie of await this.listMovies(project)) out.push({ id: `${project}/${movie}`, errors: await this.check(project, movie) });
    }
    return out;
  }

  private checkVariable(template: LoadedTemplate, name: string, variable: Variable, at: (p: Array<string | number>) => string): ErrorDetail[] {
    const errors: ErrorDetail[] = [];
    const where = at(['variables', name]);
    if (variable.type === 'enum' && !variable.values) errors.push({ field: where, message: `enum variable "${name}" needs values` });
    if (variable.type === 'list' && variable.fields && variable.of) errors.push({ field: where, message: `list variable "${name}": use fields or of, not both` });
    if (variable.type !== 'list' && variable.pattern !== undefined && !compilePattern(variable.pattern)) {
      errors.push({ field: at(['variables', name, 'pattern']), message: `pattern of "${name}" is not a valid regular expression` });
    }
    if (errors.length === 0 && variable.default !== undefined) {
      // Defaults are the designer's: media defaults may be files of the template, which must exist.
      const checked = validateParams({ [name]: variable }, { [name]: variable.default }, { allowTemplateFiles: true });
      if (!checked.ok) {
        errors.push(...checked.errors.map((e) => ({ field: at(['variables', name, 'default']), message: `default of ${e.field}: ${e.message}` })));
      }
      for (const file of mediaFiles(variable, variable.default)) {
        if (!template.files.includes(path.posix.normalize(file))) {
          errors.push({ field: at(['variables', name, 'default']), message: `default of ${name}: file "${file}" not found in the template folder` });
        }
      }
    }
    return errors;
  }

  private async checkFonts(template: LoadedTemplate, at: (p: Array<string | number>) => string): Promise<ErrorDetail[]> {
    const installed = await this.fonts.installedFamilies();
    const errors: ErrorDetail[] = [];
    template.spec.scenes.forEach((scene, si) =>
      scene.layers.forEach((layer, li) => {
        if (layer.type !== 'text' && layer.type !== 'captions') return;
        const p = ['scenes', si, 'layers', li, 'font'];
        if (layer.font.file) {
          const file = path.posix.normalize(layer.font.file);
          const names = template.fonts?.[file];
          if (!template.files.includes(file)) {
            if (!file.includes('{{')) errors.push({ field: at([...p, 'file']), message: `font file "${layer.font.file}" not found in the template folder` });
          } else if (!FONT_FILE.test(file)) {
            errors.push({ field: at([...p, 'file']), message: `font file "${file}" is not a .ttf, .otf or .ttc font` });
          } else if (names && 'problem' in names) {
            errors.push({ field: at([...p, 'file']), message: `font file "${file}" ${names.problem}` });
          }
        } else if (layer.font.family !== undefined && !layer.font.family.includes('{{') && !installed.has(layer.font.family.toLowerCase())) {
          errors.push({ field: at([...p, 'family']), message: `font family "${layer.font.family}" is not installed (fc-list lists the installed ones)` });
        }
      }),
    );
    return errors;
  }

  /** Families an SVG names must be installed (or generic): librsvg would silently pick another. */
  private async checkSvgFonts(template: LoadedTemplate): Promise<ErrorDetail[]> {
    const installed = await this.fonts.installedFamilies();
    const errors: ErrorDetail[] = [];
    for (const [file, source] of Object.entries(template.svgSources)) {
      for (const { line, family } of svgFontFamilies(source)) {
        if (GENERIC_FAMILIES.has(family.toLowerCase()) || installed.has(family.toLowerCase())) continue;
        errors.push({
          field: `${template.project}/${template.movie}/${file}:${line}`,
          message: `font family "${family.slice(0, 80)}" is not installed (fc-list lists the installed ones; SVGs cannot use the template's font files)`,
        });
      }
    }
    return errors;
  }

  private async projectDir(project: string): Promise<string> {
    const dir = path.join(this.config.templatesDir, this.safeName(project, 'project'));
    if (!(await this.files.isDir(dir))) {
      throw notFound(`unknown project "${project}"`, [{ field: 'project', message: `unknown project "${project}"` }]);
    }
    return dir;
  }

  private safeName(name: string, what: 'project' | 'movie'): string {
    if (!NAME.test(name)) throw notFound(`unknown ${what} "${name.slice(0, 64)}"`, [{ field: what, message: `not a valid ${what} name` }]);
    return name;
  }
}

/** Template files named by a media variable's value (lists included). */
function mediaFiles(variable: Variable, value: unknown): string[] {
  if (variable.type === 'list') {
    if (!Array.isArray(value)) return [];
    return value.flatMap((item) => {
      if (variable.of) return mediaFiles(variable.of, item);
      if (!variable.fields || typeof item !== 'object' || item === null) return [];
      return Object.entries(variable.fields).flatMap(([k, f]) => mediaFiles(f, (item as Record<string, unknown>)[k]));
    });
  }
  return MEDIA_TYPES.has(variable.type) && typeof value === 'string' && !/^https?:/i.test(value) ? [value] : [];
}

function partialName(file: string): string {
  return file.replace(/\.hbs$/, '').replace(/\//g, '.');
}

/** "Parse error on line 1: … Expecting 'CLOSE', got 'EOF'": the first and the last line say it all. */
export function handlebarsMessage(err: unknown): string {
  const lines = String((err as Error).message ?? err).split('\n').filter(Boolean);
  return lines.length > 1 ? `${lines[0]} ${lines[lines.length - 1]}` : (lines[0] ?? 'invalid template');
}

function handlebarsLine(err: unknown): number {
  const m = /line (\d+)/.exec(String((err as Error).message));
  return m ? Number(m[1]) : 1;
}

function walkStrings(value: unknown, at: Array<string | number>, visit: (s: string, p: Array<string | number>) => void): void {
  if (typeof value === 'string') {
    if (value.includes('{{')) visit(value, at);
  } else if (Array.isArray(value)) value.forEach((v, i) => walkStrings(v, [...at, i], visit));
  else if (value && typeof value === 'object') {
    // Variables and constants are values, never templated.
    for (const [k, v] of Object.entries(value)) if (at.length > 0 || (k !== 'variables' && k !== 'constants')) walkStrings(v, [...at, k], visit);
  }
}

/** Values that satisfy each variable, for checking a template without a real request. */
export function sampleParams(spec: MovieFile): Params {
  // A caption layer's variable needs captions: one cue of SRT, or one timed word.
  const captionSources = new Set(spec.scenes.flatMap((s) => s.layers.flatMap((l) => (l.type === 'captions' ? [l.source] : []))));
  const sampleCaptions = (v: Variable): Params[string] | undefined => {
    if (v.type === 'string') return '1\n00:00:00,000 --> 00:00:01,000\nSample\n';
    if (v.type === 'list' && v.fields) return [{ ...Object.fromEntries(Object.keys(v.fields).map((k) => [k, 'Sample'])), text: 'Sample', start: 0, end: 1 }];
    return undefined;
  };
  const sample = (v: Variable, name?: string): Params[string] => {
    if (v.default !== undefined) return v.default as Params[string];
    const captions = name !== undefined && captionSources.has(name) ? sampleCaptions(v) : undefined;
    if (captions !== undefined) return captions;
    switch (v.type) {
      case 'number':
        return v.min ?? 0;
      case 'boolean':
        return false;
      case 'color':
        return '#808080';
      case 'enum':
        return v.values?.[0] ?? '';
      case 'image':
      case 'video':
      case 'audio':
        return `https://example.com/sample-${v.type}`;
      case 'list': {
        const item = v.fields
          ? Object.fromEntries(Object.entries(v.fields).map(([k, f]) => [k, sample(f)]))
          : v.of
            ? sample(v.of)
            : 'sample';
        return Array.from({ length: Math.max(1, v.minItems ?? 1) }, () => item);
      }
      default:
        return v.minLength ? 'x'.repeat(v.minLength) : 'Sample';
    }
  };
  return Object.fromEntries(Object.entries(spec.variables).map(([k, v]) => [k, sample(v, k)]));
}

/**
 * Every name a templated string or graphic reads that is neither a variable, a constant, `item`
 * (in `each` scenes), a helper, a partial nor a block's own: `file:line` and a suggestion.
 */
export function referenceErrors(template: LoadedTemplate, helpers: Record<string, unknown>): ErrorDetail[] {
  const { spec } = template;
  const errors: ErrorDetail[] = [];
  const scope = {
    roots: new Set([...Object.keys(spec.variables), ...Object.keys(spec.constants)]),
    helpers: new Set(Object.keys(helpers)),
    partials: new Set(Object.keys(template.partials)),
  };
  const uses: PartialUse[] = [];
  const anyEach = spec.scenes.some((s) => s.each !== undefined);
  walkStrings(spec, [], (value, p) => {
    const inEachScene = p[0] === 'scenes' && typeof p[1] === 'number' && spec.scenes[p[1]]?.each !== undefined && p[2] !== 'each';
    for (const problem of unknownReferences(value, { ...scope, inEachScene }, uses)) {
      // A string with line breaks is a block scalar (`|`), whose first line follows its key's.
      const first = template.lineOf(p) + (value.includes('\n') ? 1 : 0);
      errors.push({ field: `${template.file}:${first + problem.line - 1}`, message: problem.message });
    }
  });
  for (const [file, source] of Object.entries(template.svgSources)) {
    for (const problem of unknownReferences(source, { ...scope, inEachScene: anyEach }, uses)) {
      errors.push({ field: `${template.project}/${template.movie}/${file}:${problem.line}`, message: problem.message });
    }
  }
  // A partial is checked as its callers see it: with the root's names and the ones they pass,
  // unless one calls it with another context (then its paths are that context's).
  const checked = new Set<string>();
  for (let i = 0; i < uses.length; i++) {
    const name = uses[i].name;
    if (checked.has(name) || template.partials[name] === undefined) continue;
    checked.add(name);
    const calls = uses.filter((u) => u.name === name);
    if (calls.some((u) => !u.rootContext)) continue;
    const extraRoots = new Set(calls.flatMap((u) => u.hashKeys));
    for (const problem of unknownReferences(template.partials[name], { ...scope, inEachScene: anyEach, extraRoots }, uses)) {
      errors.push({ field: `${partialFile(template, name)}:${problem.line}`, message: problem.message });
    }
  }
  return errors;
}

/** Where a partial came from: the movie's `partials/` or the project's `_partials/`. */
function partialFile(template: LoadedTemplate, name: string): string {
  const rel = `${name.replace(/\./g, '/')}.hbs`;
  return template.files.includes(`partials/${rel}`) ? `${template.project}/${template.movie}/partials/${rel}` : `${template.project}/_partials/${rel}`;
}
