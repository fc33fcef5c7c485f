import type { BlenderScenesService } from '../../src/engines/blender/blender-scenes.service';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MontageError } from '../../src/common/errors';
import { loadConfig } from '../../src/config/config';
import { FontsRepository } from '../../src/repositories/fonts.repository';
import { TemplateFilesRepository } from '../../src/repositories/template-files.repository';
import { TemplatesService } from '../../src/templates/templates.service';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'templates-bad');

let dataDir: string;
let service: TemplatesService;

beforeAll(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-check-'));
  const config = loadConfig({ MONTAGE_TEMPLATES_DIR: FIXTURES, MONTAGE_DATA_DIR: dataDir }, process.cwd());
  // Installed fonts as on a bare machine; font files are read for real.
  const fonts = Object.assign(new FontsRepository(), { installedFamilies: async () => new Set(['dejavu sans']) });
  service = new TemplatesService(config, new TemplateFilesRepository(), fonts, { check: async () => [] } as unknown as BlenderScenesService);
});

afterAll(() => {
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<MontageError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(MontageError);
    return err as MontageError;
  }
  throw new Error('expected a rejection');
}

describe('TemplatesService.check: one deliberate mistake per fixture', () => {
  it.each<[string, number, RegExp]>([
    ['yaml-syntax', 5, /Nested mappings|compact mapping/i],
    ['unknown-layer', 8, /scenes\.0\.layers\.1\.type: .*discriminator.*'solid'/i],
    ['wrong-type', 8, /scenes\.0\.layers\.0\.x/],
    ['missing-canvas', 1, /canvas: Required/],
    ['bad-default', 6, /default of name: must be at most 5 characters, got 19/],
    ['enum-no-values', 4, /enum variable "mood" needs values/],
    ['font-not-installed', 10, /font family "Comic Neue Ultra" is not installed/],
    ['font-file-missing', 9, /font file "fonts\/Missing\.ttf" not found/],
    ['svg-missing', 8, /badge\.svg\.hbs.*not found|not an \.svg\.hbs file/],
    ['image-escape', 9, /"\.\.\/\.\.\/etc\/passwd" points outside the template folder/],
    ['hbs-syntax', 10, /^Handlebars: Parse error/],
    ['scene-no-duration', 4, /scene 1 needs a duration/],
    ['each-not-list', 7, /"each: name" needs a list variable/],
  ])('bad/%s → an error at bad/%s/movie.yaml:%i', async (movie, line, message) => {
    const errors = await service.check('bad', movie);
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect(errors[0]).toEqual({ field: `bad/${movie}/movie.yaml:${line}`, message: expect.stringMatching(message) });
    // every error of these fixtures points into the movie file
    for (const e of errors) expect(e.field).toMatch(new RegExp(`^bad/${movie}/movie\\.yaml:\\d+$`));
  });

  it('a fully valid movie (solid + text) has no errors', async () => {
    await expect(service.check('good', 'valid')).resolves.toEqual([]);
  });

  it('the yaml syntax error is reported without a schema check', async () => {
    expect(await service.check('bad', 'yaml-syntax')).toHaveLength(1);
  });

  it('enum-no-values: reported once at the variable, without a confusing second error about its default', async () => {
    const errors = await service.check('bad', 'enum-no-values');
    expect(errors).toEqual([{ field: 'bad/enum-no-values/movie.yaml:4', message: expect.stringMatching(/needs values/) }]);
  });

  it('an unknown project or movie is reported, not thrown', async () => {
    expect(await service.check('nope', 'x')).toEqual([{ field: 'project', message: expect.stringMatching(/nope/) }]);
    expect(await service.check('bad', 'nope')).toEqual([{ field: 'movie', message: expect.stringMatching(/nope/) }]);
  });

  it('unknown key: the message names the typo', async () => {
    const errors = await service.check('bad', 'unknown-key');
    expect(errors).toEqual([{ field: 'bad/unknown-key/movie.yaml:10', message: expect.stringMatching(/unknown field "colour"/) }]);
  });
  it('unknown key: the error points at the line of the typo (colour: on line 10)', async () => {
    const errors = await service.check('bad', 'unknown-key');
    expect(errors[0].field).toBe('bad/unknown-key/movie.yaml:10');
  });

  it('wrong type: the message says a number is expected', async () => {
    const errors = await service.check('bad', 'wrong-type');
    expect(errors[0].message).toMatch(/number/);
  });

  it('an invalid pattern on a variable with a default is reported, not thrown', async () => {
    await expect(service.check('bad', 'bad-pattern')).resolves.toEqual([
      { field: 'bad/bad-pattern/movie.yaml:6', message: expect.stringMatching(/pattern of "code" is not a valid regular expression/) },
    ]);
  });

  it('an alias to a missing anchor is reported at its line, not thrown', async () => {
    await expect(service.check('bad', 'bad-alias')).resolves.toEqual([{ field: 'bad/bad-alias/movie.yaml:7', message: expect.any(String) }]);
  });
});

describe('TemplatesService.load', () => {
  it('loads a valid movie with its defaults applied', async () => {
    const t = await service.load('good', 'valid');
    expect(t.project).toBe('good');
    expect(t.movie).toBe('valid');
    expect(t.file).toBe('good/valid/movie.yaml');
    expect(t.dir).toBe(path.join(FIXTURES, 'good', 'valid'));
    expect(t.files).toEqual(['movie.yaml']);
    expect(t.version).toMatch(/^[0-9a-f]{16}$/);
    expect(t.spec.canvas).toEqual({ width: 640, height: 360, fps: 25, background: '#000000' });
    expect(t.spec.version).toBe(1);
    expect(t.spec.audio).toEqual([]);
    expect(t.spec.scenes[0].layers[1]).toMatchObject({ type: 'text', font: { family: 'DejaVu Sans', size: 36, weight: 'bold', style: 'normal' } });
    expect(t.lineOf(['scenes', 0, 'layers', 1, 'text'])).toBe(14);
    expect((await service.load('good', 'valid')).version).toBe(t.version); // stable
  });

  it.each([
    ['an unknown project', 'nope', 'valid', 'project'],
    ['an unknown movie', 'good', 'nope', 'movie'],
    ['a project named ../etc', '../etc', 'valid', 'project'],
    ['a movie named ../etc', 'good', '../etc', 'movie'],
    ['a movie reaching into a sibling project', 'good', '../bad/wrong-type', 'movie'],
    ['an absolute project', '/etc', 'passwd', 'project'],
    ['a dot name', '.', 'valid', 'project'],
    ['a dot-dot name', 'good', '..', 'movie'],
    ['an empty name', '', 'valid', 'project'],
    ['a name with a NUL', 'good\0', 'valid', 'project'],
    ['a backslash name', 'good', '..\\bad', 'movie'],
    ['an over-long name', 'a'.repeat(65), 'valid', 'project'],
  ])('%s → not_found', async (_what, project, movie, field) => {
    const err = await rejection(service.load(project, movie));
    expect(err.kind).toBe('not_found');
    expect(err.details[0].field).toBe(field);
  });

  it('an unknown movie: the message lists the movies the project has', async () => {
    const err = await rejection(service.load('good', 'nope'));
    expect(err.message).toMatch(/unknown movie "nope" in project "good"; it has valid/);
  });

  it('a broken movie → bad_input whose details are file:line', async () => {
    const err = await rejection(service.load('bad', 'unknown-layer'));
    expect(err.kind).toBe('bad_input');
    expect(err.details[0].field).toBe('bad/unknown-layer/movie.yaml:8');
    expect(err.message).toMatch(/^bad\/unknown-layer\/movie\.yaml:8: /);
  });

  it('lists projects and movies, skipping folders without a movie file', async () => {
    expect(await service.listProjects()).toEqual(expect.arrayContaining(['bad', 'good']));
    expect(await service.listMovies('good')).toEqual(['valid']);
    expect(await service.listMovies('bad')).toEqual(expect.arrayContaining(['yaml-syntax', 'wrong-type', 'each-not-list']));
  });
});

describe('TemplatesService.validateParams', () => {
  it('returns the params with defaults', async () => {
    const t = await service.load('good', 'valid');
    expect(service.validateParams(t, { name: 'Ada' })).toEqual({ name: 'Ada', tint: '#204060' });
  });

  it('throws bad_input naming every bad field', async () => {
    const t = await service.load('good', 'valid');
    let err: unknown;
    try {
      service.validateParams(t, { tint: 'blue', extra: 1 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MontageError);
    const m = err as MontageError;
    expect(m.kind).toBe('bad_input');
    expect(m.httpStatus).toBe(400);
    expect(m.details.map((d) => d.field).sort()).toEqual(['extra', 'name', 'tint']);
    expect(m.message).toMatch(/^invalid params for good\/valid: /);
    expect(m.message).toMatch(/name: missing required string variable "name"/);
    expect(m.message).toMatch(/tint: expected a colour/);
    expect(m.message).toMatch(/extra: unknown variable "extra"; this movie declares name, tint/);
  });

  it('refuses a template file path as a request param for a media variable (only defaults may name files)', async () => {
    const t = await service.load('good', 'valid');
    const fake = { ...t, spec: { ...t.spec, variables: { ...t.spec.variables, photo: { type: 'image' as const, required: false } } } };
    expect(() => service.validateParams(fake, { name: 'x', photo: 'movie.yaml' })).toThrow(MontageError);
  });
});
