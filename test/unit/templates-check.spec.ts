import type { BlenderScenesService } from '../../src/engines/blender/blender-scenes.service';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MontageError } from '../../src/common/errors';
import { createHandlebarsEnv } from '../../src/compiler/handlebars-env';
import { loadConfig } from '../../src/config/config';
import { FontsRepository } from '../../src/repositories/fonts.repository';
import { TemplateFilesRepository } from '../../src/repositories/template-files.repository';
import { fontFamilies } from '../../src/templates/font-names';
import { svgFontFamilies, xmlProblem } from '../../src/templates/svg-check';
import { type ReferenceScope, unknownReferences } from '../../src/templates/template-references';
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
    ['unknown-variable', 10, /^unknown variable "nmae" in \{\{nmae\}\} \(did you mean "name"\?\)$/],
    ['font-not-a-font', 9, /font file "fonts\/Fake\.ttf" is not a TrueType or OpenType font/],
    ['constant-clash', 6, /"brand" is both a constant and a variable/],
    ['each-range-too-long', 5, /each: range \[1, 5000\] makes 5000 scenes; at most 1000/],
    ['lottie-not-lottie', 7, /Lottie/i],
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

it('unknown names in a block scalar: each at its own line', async () => {
  expect(await service.check('bad', 'unknown-in-block')).toEqual([
    { field: 'bad/unknown-in-block/movie.yaml:12', message: 'unknown variable "nmae" in {{#if nmae}} (did you mean "name"?)' },
    { field: 'bad/unknown-in-block/movie.yaml:13', message: 'unknown variable "nam" in {{../nam}} (did you mean "name"?)' },
  ]);
});

describe('TemplatesService.check: graphics', () => {
  it('an .svg.hbs that is not well-formed XML: its file and line, with what is wrong', async () => {
    expect(await service.check('bad', 'svg-broken')).toEqual([
      { field: 'bad/svg-broken/badge.svg.hbs:3', message: expect.stringMatching(/not well-formed XML.*end tag <\/txt> does not match <text> \(line 3\)/) },
    ]);
  });

  it('an .svg.hbs naming a font family that is not installed: its file and line; installed and generic families pass', async () => {
    expect(await service.check('bad', 'svg-font')).toEqual([
      { field: 'bad/svg-font/badge.svg.hbs:2', message: expect.stringMatching(/font family "Comic Neue Ultra" is not installed/) },
    ]);
  });
});

describe('template logic (fixture ok/countdown: constants, a range, helpers, a partial, an SVG per item)', () => {
  it('passes check()', async () => {
    await expect(service.check('ok', 'countdown')).resolves.toEqual([]);
  });

  it('constants are not variables: not in the variables, and a param of that name is refused by name', async () => {
    const t = await service.load('ok', 'countdown');
    expect(Object.keys(t.spec.variables)).toEqual(['from', 'label']);
    expect(t.spec.constants).toEqual({ brand: { accent: '#e94e1b', name: 'Acme' }, sizes: [48, 64] });
    const err = await rejection(Promise.resolve().then(() => service.validateParams(t, { brand: { accent: '#000000' }, from: 3 })));
    expect(err.kind).toBe('bad_input');
    expect(err.details).toEqual([{ field: 'brand', message: '"brand" is a constant of this movie, not a variable: it cannot be set' }]);
  });
});

describe('existing templates still load (no unknown names in them)', () => {
  const roots: Array<[string, string]> = [
    ['templates', path.join(__dirname, '..', '..', 'templates')],
    ['test/fixtures/templates', path.join(__dirname, '..', 'fixtures', 'templates')],
    ['test/fixtures/blender/templates', path.join(__dirname, '..', 'fixtures', 'blender', 'templates')],
  ];
  it.each(roots)('every movie of %s', async (_name, dir) => {
    const config = loadConfig({ MONTAGE_TEMPLATES_DIR: dir, MONTAGE_DATA_DIR: dataDir }, process.cwd());
    const fonts = Object.assign(new FontsRepository(), { installedFamilies: async () => new Set(['dejavu sans', 'dejavu serif']) });
    const other = new TemplatesService(config, new TemplateFilesRepository(), fonts, { check: async () => [] } as unknown as BlenderScenesService);
    let movies = 0;
    for (const project of await other.listProjects()) {
      for (const movie of await other.listMovies(project)) {
        await expect(other.load(project, movie)).resolves.toMatchObject({ project, movie });
        movies++;
      }
    }
    expect(movies).toBeGreaterThanOrEqual(3);
  });
});

describe('TemplatesService.load', () => {
  it('an unknown name fails the load (so a render is a 400 naming it, not empty text)', async () => {
    const err = await rejection(service.load('bad', 'unknown-variable'));
    expect(err.kind).toBe('bad_input');
    expect(err.httpStatus).toBe(400);
    expect(err.details).toEqual([{ field: 'bad/unknown-variable/movie.yaml:10', message: 'unknown variable "nmae" in {{nmae}} (did you mean "name"?)' }]);
  });


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

describe('unknownReferences (Handlebars AST)', () => {
  const scope = (extra: Partial<ReferenceScope> = {}): ReferenceScope => ({
    roots: new Set(['name', 'slides', 'brand']),
    helpers: new Set(Object.keys(createHandlebarsEnv().helpers)),
    partials: new Set(['sig']),
    inEachScene: false,
    ...extra,
  });
  const messages = (source: string, extra: Partial<ReferenceScope> = {}) => unknownReferences(source, scope(extra)).map((p) => `${p.line}: ${p.message}`);

  it('declared names, constants, helpers, literals and this pass', () => {
    expect(messages('{{name}} {{brand.accent}} {{upper name}} {{#if (gt (length slides) 2)}}{{add 1 2}}{{/if}} {{"x"}} {{this}}')).toEqual([]);
  });

  it('an unknown name: the line, the mustache and the nearest declared name', () => {
    expect(messages('a\nb {{upper nmae}}')).toEqual(['2: unknown variable "nmae" in {{upper nmae}} (did you mean "name"?)']);
    expect(messages('{{zzz}}')).toEqual(['1: unknown variable "zzz" in {{zzz}}']);
    expect(messages('{{#if shown}}x{{/if}}')).toEqual(['1: unknown variable "shown" in {{#if shown}}']);
  });

  it('a value called with arguments must be a helper', () => {
    expect(messages('{{uper name}}')).toEqual(['1: unknown helper "uper" in {{uper name}} (did you mean "upper"?)']);
  });

  it('item and @index only inside each scenes', () => {
    expect(messages('{{item.caption}} {{@index}}', { inEachScene: true })).toEqual([]);
    expect(messages('{{item}}')).toEqual(['1: unknown variable "item" in {{item}}']);
    expect(messages('{{@index}}')).toEqual([expect.stringMatching(/^1: unknown data variable "@index" in \{\{@index\}\} \(only `each` scenes/)]);
    expect(messages('{{@indx}}', { inEachScene: true })).toEqual(['1: unknown data variable "@indx" in {{@indx}}']);
  });

  it('inside #each and #with, relative paths are the item\'s; ../ and @root are the root\'s', () => {
    expect(messages('{{#each slides}}{{caption}}{{this.image}}{{@index}}{{@key}}{{/each}}{{#with brand}}{{accent}}{{/with}}')).toEqual([]);
    expect(messages('{{#each slides}}{{../nmae}}{{@root.nmae}}{{../name}}{{/each}}')).toEqual([
      '1: unknown variable "nmae" in {{../nmae}} (did you mean "name"?)',
      '1: unknown variable "nmae" in {{@root.nmae}} (did you mean "name"?)',
    ]);
    // ../ inside two levels only reaches the root from the second
    expect(messages('{{#each slides}}{{#each tags}}{{../caption}}{{../../nope}}{{/each}}{{/each}}')).toEqual(['1: unknown variable "nope" in {{../../nope}}']);
    // #if does not change the context: an unknown name inside it is still an error
    expect(messages('{{#if name}}{{nope}}{{/if}}')).toEqual(['1: unknown variable "nope" in {{nope}}']);
    // {{else}} of #each runs in the outer context
    expect(messages('{{#each slides}}{{x}}{{else}}{{y}}{{/each}}')).toEqual(['1: unknown variable "y" in {{y}}']);
  });

  it('block params are known inside their block only', () => {
    expect(messages('{{#each (range 10 1) as |n i|}}{{n}}/{{i}}{{/each}}')).toEqual([]);
    expect(messages('{{#each (range 10 1) as |n|}}{{/each}}{{n}}')).toEqual(['1: unknown variable "n" in {{n}}']);
  });

  it('partials: an unknown one is named; arguments are checked', () => {
    expect(messages('{{> sig}} {{> sgi}}')).toEqual(['1: unknown partial "sgi" in {{> sgi}} (did you mean "sig"?)']);
    expect(messages('{{> sig who=nmae}}')).toEqual(['1: unknown variable "nmae" in {{> sig who=nmae}} (did you mean "name"?)']);
  });

  it('hostile sources: no throw, clipped messages', () => {
    expect(messages('{{#if}')).toEqual([]); // a syntax error is reported by the syntax check
    const long = 'x'.repeat(5000);
    const [m] = messages(`{{${long}}}`);
    expect(m.length).toBeLessThan(200);
    expect(messages('{{n\u0000ame}}')).toEqual(['1: unknown variable "n?ame" in {{n?ame}} (did you mean "name"?)']); // control characters shown as ?
    expect(messages('{{名前}} {{"<script>"}}')).toEqual(['1: unknown variable "名前" in {{名前}}']);
  });
});

describe('xmlProblem', () => {
  it.each<[string, string]>([
    ['<svg/>', ''],
    ['<?xml version="1.0"?>\n<!-- c -->\n<svg a="1" b=\'2\'><![CDATA[<&>]]>&amp;&#38;&#x26;<g/></svg>\n', ''],
    ['<!DOCTYPE svg [<!ENTITY x "y">]><svg>&x;</svg>', ''],
    ['<svg><g></svg>', '1: end tag </svg> does not match <g> (line 1)'],
    ['<svg>\n<g>\n', '2: <g> is never closed'],
    ['<svg>a & b</svg>', '1: a bare "&" (write &amp;)'],
    ['<svg>&nbsp;</svg>', '1: unknown entity "&nbsp;"'],
    ['<svg a=1/>', '1: the value of "a" is not in quotes'],
    ['<svg a="1" a="2"/>', '1: attribute "a" appears twice in <svg>'],
    ['<svg a="<"/>', '1: a "<" in the value of "a"'],
    ['<svg checked/>', '1: attribute "checked" has no value (write checked="…")'],
    ['<svg/><svg/>', '1: a second root element <svg>'],
    ['hello <svg/>', '1: text before the root element'],
    ['<svg/>x', '1: text after the root element'],
    ['<svg>1 < 2</svg>', '1: a "<" that starts no tag (write &lt;)'],
    ['</svg>', '1: end tag </svg> without a start tag'],
    ['<svg>\u0001</svg>', '1: control character U+0001 is not allowed in XML'],
    ['<svg><!-- never', '1: a comment that is never closed (-->)'],
    ['', '1: no root element'],
    ['<svg a="1"', '1: tag <svg> is never closed'],
  ])('%j → %j', (xml, expected) => {
    const p = xmlProblem(xml);
    expect(p ? `${p.line}: ${p.message}` : '').toBe(expected);
  });

  it('is linear on a huge document', () => {
    const big = `<svg>${'<g a="1">x</g>'.repeat(100_000)}</svg>`;
    expect(xmlProblem(big)).toBeUndefined();
    expect(xmlProblem(`<svg>${'<g>'.repeat(50_000)}`)?.message).toBe('<g> is never closed');
  });
});

describe('svgFontFamilies', () => {
  it('attributes and CSS, quoted or not; templated ones are left out', () => {
    expect(svgFontFamilies('<text font-family="A B, \'C\', serif"/>\n<g style="font-family: &quot;D&quot;; fill: red"/>\n<style>.t { font-family: E, monospace }</style>\n<text font-family="{{f}}"/>')).toEqual([
      { line: 1, family: 'A B' },
      { line: 1, family: 'C' },
      { line: 1, family: 'serif' },
      { line: 2, family: 'D' },
      { line: 3, family: 'E' },
      { line: 3, family: 'monospace' },
    ]);
  });
});

describe('fontFamilies (the name table of a font file)', () => {
  const brand = fs.readFileSync(path.join(FIXTURES, 'ok', 'card', 'fonts', 'Brand.ttf'));

  it('reads the family of a TrueType file', () => {
    expect(fontFamilies(brand)).toEqual({ families: ['Montage Test'] });
  });

  it('the first font of a collection (ttcf header)', () => {
    const header = Buffer.alloc(16);
    header.write('ttcf', 0, 'latin1');
    header.writeUInt32BE(0x00010000, 4);
    header.writeUInt32BE(1, 8);
    header.writeUInt32BE(16, 12);
    // the font's own offsets are from the file's start: shift its table offsets by 16
    const font = Buffer.from(brand);
    const tables = font.readUInt16BE(4);
    for (let i = 0; i < tables; i++) font.writeUInt32BE(font.readUInt32BE(12 + i * 16 + 8) + 16, 12 + i * 16 + 8);
    expect(fontFamilies(Buffer.concat([header, font]))).toEqual({ families: ['Montage Test'] });
  });

  it.each<[string, Buffer, RegExp]>([
    ['empty', Buffer.alloc(0), /not a font/],
    ['text', Buffer.from('this is not a font'), /not a TrueType or OpenType font/],
    ['a WOFF', Buffer.from('wOFF\x00\x00\x00\x00', 'latin1'), /web font/],
    ['a truncated header', brand.subarray(0, 20), /damaged|no name table/],
    ['a truncated file', brand.subarray(0, 2000), /no name table|names no font family/],
    ['a TTC pointing past the end', Buffer.from('ttcf\x00\x01\x00\x00\x00\x00\x00\x01\xff\xff\xff\xff', 'latin1'), /damaged font collection/],
  ])('%s → a reason, never a throw', (_what, bytes, reason) => {
    const names = fontFamilies(bytes);
    expect(names).toEqual({ problem: expect.stringMatching(reason) });
  });

  it('random bytes never throw', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) & 0xff;
    for (let n = 0; n < 200; n++) {
      const bytes = Buffer.from(Array.from({ length: 64 + n * 7 }, random));
      bytes.writeUInt32BE(0x00010000, 0); // past the signature check, into the tables
      expect(() => fontFamilies(bytes)).not.toThrow();
    }
  });
});
