import type { BlenderScenesService } from '../../src/engines/blender/blender-scenes.service';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Params } from '../../src/compiler/params';
import { busySpans } from '../../src/compiler/poster';
import { type ResolvedMovie, resolveMovie } from '../../src/compiler/resolve';
import { loadConfig } from '../../src/config/config';
import { FontsRepository } from '../../src/repositories/fonts.repository';
import { TemplateFilesRepository } from '../../src/repositories/template-files.repository';
import type { LoadedTemplate } from '../../src/templates/template.types';
import { TemplatesService } from '../../src/templates/templates.service';
import { failure, templateFrom } from '../helpers/movie-fixtures';

const DIR = '/templates/ok/t';

const template = (lines: string[], extra: Partial<LoadedTemplate> = {}) => templateFrom(lines, { dir: DIR, ...extra });

const frames = (m: ResolvedMovie) => m.scenes.map((s) => [s.startFrame, s.endFrame]);

describe('resolveMovie: timing in frames', () => {
  it('scene 2 of a 0.5 s crossfade at 30 fps starts 15 frames before scene 1 ends', () => {
    const t = template([
      'canvas: { width: 640, height: 360, fps: 30 }',
      'scenes:',
      '  - duration: 2',
      '    layers: [{ type: solid, color: "#111111" }]',
      '  - duration: 3',
      '    transition: { type: crossfade, duration: 0.5 }',
      '    layers: [{ type: solid, color: "#222222" }]',
    ]);
    const m = resolveMovie(t, {});
    expect(frames(m)).toEqual([
      [0, 60],
      [45, 135],
    ]);
    expect(m.totalFrames).toBe(135);
    expect(m.fps).toBe(30);
    expect(m.scenes[0].transition).toBeUndefined();
    expect(m.scenes[1].transition).toEqual({ type: 'crossfade', frames: 15, easing: 'easeInOut', direction: 'left' });
    expect(m.scenes[1].layers[0]).toMatchObject({ id: 's1.l0', startFrame: 45, endFrame: 135 });
  });

  it('transitions chain; a transition on the first scene is ignored; names and backgrounds default', () => {
    const t = template([
      'canvas: { width: 640, height: 360, fps: 25, background: "#010203" }',
      'scenes:',
      '  - duration: 2',
      '    transition: { type: wipe, duration: 1 }',
      '  - name: middle',
      '    duration: 2',
      '    background: "#ffffff"',
      '    transition: { type: wipe, duration: 0.4, direction: up, easing: linear }',
      '  - duration: 2',
      '    transition: { type: slide, duration: 1 }',
    ]);
    const m = resolveMovie(t, {});
    expect(frames(m)).toEqual([
      [0, 50],
      [40, 90],
      [65, 115],
    ]);
    expect(m.scenes.map((s) => s.name)).toEqual(['scene 1', 'middle', 'scene 3']);
    expect(m.scenes.map((s) => s.background)).toEqual(['#010203', '#ffffff', '#010203']);
    expect(m.scenes[0].transition).toBeUndefined();
    expect(m.scenes[1].transition).toEqual({ type: 'wipe', frames: 10, easing: 'linear', direction: 'up' });
    expect(m.scenes[2].transition).toEqual({ type: 'slide', frames: 25, easing: 'easeInOut', direction: 'left' });
  });

  it('the last scene without duration fills the movie duration', () => {
    const t = template([
      'canvas: { width: 640, height: 360, fps: 30 }',
      'duration: 10',
      'scenes:',
      '  - duration: 4',
      '  - transition: { type: crossfade, duration: 1 }',
    ]);
    const m = resolveMovie(t, {});
    expect(frames(m)).toEqual([
      [0, 120],
      [90, 300],
    ]);
    expect(m.totalFrames).toBe(300);
  });

  it('a declared duration longer than the scenes makes the movie that long', () => {
    const t = template(['canvas: { width: 640, height: 360 }', 'duration: 5', 'scenes:', '  - duration: 2']);
    const m = resolveMovie(t, {});
    expect(m.totalFrames).toBe(150);
    expect(frames(m)).toEqual([[0, 60]]);
  });

  it('scenes longer than the declared duration → bad_input at the duration line', () => {
    const t = template(['canvas: { width: 640, height: 360 }', 'duration: 3', 'scenes:', '  - duration: 2', '  - duration: 2']);
    const err = failure(() => resolveMovie(t, {}));
    expect(err.kind).toBe('bad_input');
    expect(err.details).toEqual([{ field: 'ok/t/movie.yaml:2', message: expect.stringMatching(/scenes last 4\.00 s but the movie's duration is 3 s/) }]);
  });

  it('the last scene without duration and no movie duration → bad_input at the scene', () => {
    const t = template(['canvas: { width: 640, height: 360 }', 'scenes:', '  - duration: 2', '  - name: open-ended']);
    const err = failure(() => resolveMovie(t, {}));
    expect(err.details).toEqual([{ field: 'ok/t/movie.yaml:4', message: expect.stringMatching(/scene 2 needs a duration/) }]);
  });

  it('a scene without duration that is not the last → bad_input at that scene', () => {
    const t = template(['canvas: { width: 640, height: 360 }', 'duration: 4', 'scenes:', '  - name: first', '  - duration: 2']);
    expect(failure(() => resolveMovie(t, {})).details[0]).toEqual({ field: 'ok/t/movie.yaml:4', message: expect.stringMatching(/scene 1 needs a duration/) });
  });

  it('a transition longer than a scene it joins → bad_input at the transition duration', () => {
    const t = template([
      'canvas: { width: 640, height: 360 }',
      'scenes:',
      '  - duration: 1',
      '  - duration: 3',
      '    transition: { type: crossfade, duration: 2 }',
    ]);
    expect(failure(() => resolveMovie(t, {})).details).toEqual([
      { field: 'ok/t/movie.yaml:5', message: 'a transition cannot be longer than either scene it joins' },
    ]);
  });

  it('a scene shorter than one frame → bad_input', () => {
    const t = template(['canvas: { width: 640, height: 360, fps: 10 }', 'scenes:', '  - duration: 0.01']);
    expect(failure(() => resolveMovie(t, {})).details[0].message).toMatch(/lasts less than one frame/);
  });

  it('layer start/end are seconds from the scene start; end is clamped to the scene', () => {
    const t = template([
      'canvas: { width: 640, height: 360, fps: 30 }',
      'scenes:',
      '  - duration: 2',
      '  - duration: 2',
      '    layers:',
      '      - { type: solid, color: "#000000", start: 0.5, end: 1 }',
      '      - { type: solid, color: "#000000", start: 1 }',
      '      - { type: solid, color: "#000000", end: 99 }',
    ]);
    const layers = resolveMovie(t, {}).scenes[1].layers;
    expect(layers.map((l) => [l.id, l.startFrame, l.endFrame])).toEqual([
      ['s1.l0', 75, 90],
      ['s1.l1', 90, 120],
      ['s1.l2', 60, 120],
    ]);
  });

  it('a layer that is never visible → bad_input at the layer', () => {
    const t = template([
      'canvas: { width: 640, height: 360 }',
      'scenes:',
      '  - duration: 2',
      '    layers:',
      '      - { type: solid, color: "#000000", start: 3 }',
    ]);
    expect(failure(() => resolveMovie(t, {})).details).toEqual([{ field: 'ok/t/movie.yaml:5', message: 'layer 1 of scene 1 is never visible (end ≤ start)' }]);
  });

  it('is pure: the same inputs give the same movie', () => {
    const lines = ['canvas: { width: 640, height: 360 }', 'variables:', '  n: { type: string }', 'scenes:', '  - duration: 1', '    layers: [{ type: text, text: "{{n}}" }]'];
    expect(resolveMovie(template(lines), { n: 'a' })).toEqual(resolveMovie(template(lines), { n: 'a' }));
  });
});

describe('resolveMovie: each', () => {
  const lines = [
    'canvas: { width: 640, height: 360, fps: 30 }', // 1
    'variables:', // 2
    '  slides: { type: list, fields: { caption: { type: string } } }', // 3
    'scenes:', // 4
    '  - duration: 1', // 5
    '    name: title', // 6
    '  - each: slides', // 7
    '    name: "slide {{@index}}"', // 8
    '    duration: 2', // 9
    '    transition: { type: crossfade, duration: 0.5 }', // 10
    '    layers:', // 11
    '      - type: text', // 12
    '        text: "{{add @index 1}}/{{@count}}: {{item.caption}}{{#if @first}} (first){{/if}}{{#if @last}} (last){{/if}}"', // 13
  ];

  it('expands one scene per list item with {{item.caption}} and {{@index}}', () => {
    const m = resolveMovie(template(lines), { slides: [{ caption: 'One' }, { caption: 'Two' }, { caption: 'Three' }] });
    expect(m.scenes.map((s) => s.name)).toEqual(['title', 'slide 0', 'slide 1', 'slide 2']);
    expect(m.scenes.map((s) => s.index)).toEqual([0, 1, 2, 3]);
    expect(m.scenes.map((s) => (s.layers[0]?.spec as { text?: string } | undefined)?.text)).toEqual([
      undefined,
      '1/3: One (first)',
      '2/3: Two',
      '3/3: Three (last)',
    ]);
    expect(frames(m)).toEqual([
      [0, 30],
      [15, 75],
      [60, 120],
      [105, 165],
    ]);
    expect(m.scenes.slice(1).map((s) => s.layers[0].id)).toEqual(['s1.l0', 's2.l0', 's3.l0']);
  });

  it('an empty list expands to no scenes', () => {
    const m = resolveMovie(template(lines), { slides: [] });
    expect(m.scenes.map((s) => s.name)).toEqual(['title']);
    expect(m.totalFrames).toBe(30);
  });

  it('a list of scalars: {{item}} is the value', () => {
    const t = template([
      'canvas: { width: 640, height: 360 }',
      'variables:',
      '  words: { type: list, of: { type: string } }',
      'scenes:',
      '  - each: words',
      '    duration: 1',
      '    layers: [{ type: text, text: "{{@index}}={{item}}" }]',
    ]);
    const m = resolveMovie(t, { words: ['a', 'b'] });
    expect(m.scenes.map((s) => (s.layers[0].spec as { text: string }).text)).toEqual(['0=a', '1=b']);
  });

  it('each: naming a non-list variable → bad_input at the each line', () => {
    const t = template([
      'canvas: { width: 640, height: 360 }',
      'variables:',
      '  name: { type: string }',
      'scenes:',
      '  - duration: 1',
      '    each: name',
    ]);
    expect(failure(() => resolveMovie(t, { name: 'Ada' })).details).toEqual([
      { field: 'ok/t/movie.yaml:6', message: '"each: name" needs a list variable' },
    ]);
  });

  it('a movie whose only scene expands to nothing → bad_input', () => {
    const t = template(['canvas: { width: 640, height: 360 }', 'scenes:', '  - duration: 1', '    each: xs']);
    expect(failure(() => resolveMovie(t, { xs: [] })).details[0].message).toMatch(/no scenes after applying params/);
  });
});

describe('resolveMovie: each over a range', () => {
  const countdown = (range: string, extra: string[] = []) =>
    template([
      'canvas: { width: 640, height: 360, fps: 10 }',
      'variables:',
      '  n: { type: number, default: 3 }',
      'scenes:',
      '  - duration: 1', // 5
      `    each: { range: ${range} }`, // 6
      '    name: "{{item}}/{{@index}}/{{@first}}/{{@last}}/{{@count}}"',
      '    layers: [{ type: solid, color: "#000000" }]',
      ...extra,
    ]);

  it('a countdown from 10 to 1: item is the number; @index, @first, @last and @count as for lists', () => {
    const m = resolveMovie(countdown('[10, 1]'), {});
    expect(m.scenes.map((s) => s.name)).toEqual([
      '10/0/true/false/10',
      ...[9, 8, 7, 6, 5, 4, 3, 2].map((n, i) => `${n}/${i + 1}/false/false/10`),
      '1/9/false/true/10',
    ]);
    expect(frames(m)).toEqual(Array.from({ length: 10 }, (_, i) => [i * 10, i * 10 + 10]));
  });

  it('counts up, with a step, and with templated bounds', () => {
    expect(resolveMovie(countdown('[0, 10, 5]'), {}).scenes.map((s) => s.name.split('/')[0])).toEqual(['0', '5', '10']);
    expect(resolveMovie(countdown('[10, 0, 4]'), {}).scenes.map((s) => s.name.split('/')[0])).toEqual(['10', '6', '2']);
    expect(resolveMovie(countdown('["{{n}}", 1]'), { n: 3 }).scenes.map((s) => s.name.split('/')[0])).toEqual(['3', '2', '1']);
    expect(resolveMovie(countdown('[1, "{{add n 1}}"]'), { n: 2 }).scenes.map((s) => s.name.split('/')[0])).toEqual(['1', '2', '3']);
  });

  it.each<[string, Params, RegExp]>([
    ['[1, 5000]', {}, /^each: range \[1, 5000\] makes 5000 scenes; at most 1000$/],
    ['["{{n}}", 1]', { n: 1e9 }, /makes 1000000000 scenes; at most 1000/],
    ['["{{n}}", 1]', { n: 'ten' }, /^each: range from "\{\{n\}\}" is not a number \(after applying params\)$/],
    ['[1, "{{n}}"]', { n: '' }, /range to .* is not a number/],
    ['[1, 3, 0]', {}, /range step "0" is not a non-zero number/],
    ['[1, "{{#if}}"]', {}, /range to .* is not a number/],
  ])('range %s with %j → bad_input at the range line', (range, params, message) => {
    const err = failure(() => resolveMovie(countdown(range), params));
    expect(err.kind).toBe('bad_input');
    expect(err.details[0]).toEqual({ field: 'ok/t/movie.yaml:6', message: expect.stringMatching(message) });
  });

  it('the shape is checked at load: [from, to] or [from, to, step]', () => {
    expect(() => countdown('[1]')).toThrow(/from, to/);
    expect(() => countdown('[1, 2, 3, 4]')).toThrow(/from, to/);
    expect(() => countdown('[1, "x"]')).toThrow(/number/);
    expect(() => template(['canvas: { width: 640, height: 360 }', 'scenes: [{ duration: 1, each: { rnage: [1, 2] } }]'])).toThrow(/unrecognized_keys[\s\S]*rnage/);
  });
});

describe('resolveMovie: constants', () => {
  const withConstants = () =>
    template([
      'canvas: { width: 640, height: 360 }',
      'variables:',
      '  name: { type: string, default: Ada }',
      'constants:',
      '  brand: { accent: "#e94e1b", names: [Acme, Corp] }',
      '  tagline: "{{name}} stays literal"',
      'scenes:',
      '  - duration: 1',
      '    background: "{{brand.accent}}"',
      '    layers: [{ type: text, text: "{{name}} @ {{lookup brand.names 1}}: {{tagline}}" }]',
      'audio: [{ src: "https://example.com/{{brand.names.[0]}}.m4a" }]',
    ]);

  it('are read like variables, in scenes and audio; their strings are values, not templates', () => {
    const m = resolveMovie(withConstants(), { name: 'Bo' });
    expect(m.scenes[0].background).toBe('#e94e1b');
    expect((m.scenes[0].layers[0].spec as { text: string }).text).toBe('Bo @ Corp: {{name}} stays literal');
    expect(m.audio[0].media).toEqual({ kind: 'url', url: 'https://example.com/Acme.m4a' });
  });

  it('a param cannot stand in for a constant', () => {
    const m = resolveMovie(withConstants(), { name: 'Bo', brand: { accent: '#000000' } } as unknown as Params);
    expect(m.scenes[0].background).toBe('#e94e1b');
  });

  it('a constant named like a variable, or item, is refused at load', () => {
    expect(() => template(['canvas: { width: 640, height: 360 }', 'variables: { a: { type: string } }', 'constants: { a: 1, item: 2 }', 'scenes: [{ duration: 1 }]'])).toThrow(
      /\\"a\\" is both a constant and a variable[\s\S]*\\"item\\" is reserved/,
    );
  });
});

describe('resolveMovie: font files', () => {
  const withFont = (font: string, fonts: LoadedTemplate['fonts']) =>
    template(['canvas: { width: 640, height: 360 }', 'scenes:', '  - duration: 1', '    layers:', '      - type: text', '        text: Hi', `        font: ${font}`], {
      files: ['fonts/B.ttf', 'fonts/notes.txt'],
      fonts,
    });
  const brand = { 'fonts/B.ttf': { families: ['Brand Book', 'Brand'] } };

  it('file only: the family is the file\'s own; file and family: the family must be one of its names', () => {
    const only = resolveMovie(withFont('{ file: fonts/B.ttf }', brand), {});
    expect(only.scenes[0].layers[0].spec).toMatchObject({ font: { family: 'Brand Book' } });
    const both = resolveMovie(withFont('{ file: fonts/B.ttf, family: brand }', brand), {});
    expect(both.scenes[0].layers[0].spec).toMatchObject({ font: { family: 'Brand' } });
  });

  it('no file, no family: DejaVu Sans', () => {
    const m = resolveMovie(withFont('{ size: 20 }', {}), {});
    expect(m.scenes[0].layers[0].spec).toMatchObject({ font: { family: 'DejaVu Sans', size: 20 } });
    expect(m.scenes[0].layers[0].fontFile).toBeUndefined();
  });

  it('a family filled in by a param must be installed: an error, not another font', () => {
    const t = template(
      ['canvas: { width: 640, height: 360 }', 'variables: { face: { type: string } }', 'scenes:', '  - duration: 1', '    layers:', '      - type: text', '        text: Hi', '        font: { family: "{{face}}" }'],
      { installedFamilies: new Set(['dejavu sans', 'dejavu serif']) },
    );
    expect(resolveMovie(t, { face: 'DejaVu Serif' }).scenes[0].layers[0].spec).toMatchObject({ font: { family: 'DejaVu Serif' } });
    const err = failure(() => resolveMovie(t, { face: 'Comic Sans' }));
    expect(err.details).toEqual([{ field: 'ok/t/movie.yaml:8', message: 'font family "Comic Sans" is not installed (after applying params)' }]);
  });

  it.each<[string, LoadedTemplate['fonts'], RegExp]>([
    ['{ file: fonts/B.ttf, family: Other }', brand, /font file "fonts\/B\.ttf" is the family "Brand Book", "Brand", not "Other"/],
    ['{ file: fonts/B.ttf }', { 'fonts/B.ttf': { problem: 'is not a TrueType or OpenType font' } }, /font file "fonts\/B\.ttf" is not a TrueType or OpenType font/],
    ['{ file: fonts/notes.txt }', brand, /is not a \.ttf, \.otf or \.ttc font/],
    ['{ file: fonts/B.ttf }', undefined, /was not read with the template/],
  ])('%s → bad_input at the font line, never another font', (font, fonts, message) => {
    const err = failure(() => resolveMovie(withFont(font, fonts), {}));
    expect(err.details).toEqual([{ field: 'ok/t/movie.yaml:7', message: expect.stringMatching(message) }]);
  });
});

describe('resolveMovie: SVG markup after params', () => {
  it('markup that is not well-formed → bad_input naming the svg file and line', () => {
    const t = template(['canvas: { width: 640, height: 360 }', 'variables: { raw: { type: string } }', 'scenes:', '  - duration: 1', '    layers: [{ type: svg, src: a.svg.hbs }]'], {
      files: ['a.svg.hbs'],
      svgSources: { 'a.svg.hbs': '<svg xmlns="http://www.w3.org/2000/svg">\n<text>{{{raw}}}</text>\n</svg>' },
    });
    expect(resolveMovie(t, { raw: 'fine' }).scenes[0].layers[0].svg).toContain('<text>fine</text>');
    const err = failure(() => resolveMovie(t, { raw: '<b>' }));
    expect(err.details).toEqual([{ field: 'ok/t/a.svg.hbs:2', message: 'not well-formed XML (after applying params): end tag </text> does not match <b> (line 2)' }]);
  });
});

describe('resolveMovie: params applied to fields', () => {
  const offsetLines = [
    'canvas: { width: 640, height: 360 }', // 1
    'variables:', // 2
    '  offset: { type: string }', // 3
    '  size: { type: number }', // 4
    'scenes:', // 5
    '  - duration: "{{size}}"', // 6
    '    layers:', // 7
    '      - type: solid', // 8
    '        color: "#ffffff"', // 9
    '        x: "{{offset}}"', // 10
    '        opacity: "{{#if offset}}0.5{{else}}1{{/if}}"', // 11
  ];

  it('a templated numeric field becomes a number', () => {
    const m = resolveMovie(template(offsetLines), { offset: '120', size: 2 });
    const layer = m.scenes[0].layers[0];
    expect(layer.spec).toMatchObject({ x: 120, y: 0, opacity: 0.5 });
    expect(typeof (layer.spec as { x: unknown }).x).toBe('number');
    expect(m.totalFrames).toBe(60);
    expect(resolveMovie(template(offsetLines), { offset: '-7.5', size: 1 }).scenes[0].layers[0].spec).toMatchObject({ x: -7.5 });
  });

  it.each([['abc'], ['12px'], [' '], ['{{x}}'], ['1e999']])('a param that makes x non-numeric (%j) → bad_input naming the field and file:line', (offset) => {
    const err = failure(() => resolveMovie(template(offsetLines), { offset, size: 2 }));
    expect(err.kind).toBe('bad_input');
    expect(err.details).toEqual([{ field: 'ok/t/movie.yaml:10', message: expect.stringMatching(/^scenes\.0\.layers\.0\.x: .*\(after applying params\)$/) }]);
    expect(err.message).toMatch(/^ok\/t: ok\/t\/movie\.yaml:10: scenes\.0\.layers\.0\.x/);
  });

  it('an empty param for a templated number → bad_input', () => {
    const err = failure(() => resolveMovie(template(offsetLines), { offset: '', size: 2 }));
    expect(err.details.map((d) => d.field)).toEqual(['ok/t/movie.yaml:10']);
  });

  it('a templated scene duration that is not positive → bad_input at the duration line', () => {
    const err = failure(() => resolveMovie(template(offsetLines), { offset: '1', size: 0 }));
    expect(err.details).toEqual([{ field: 'ok/t/movie.yaml:6', message: expect.stringMatching(/^scenes\.0\.duration: /) }]);
  });

  it('a templated colour that is not a colour → bad_input with the colour constraint', () => {
    const t = template(['canvas: { width: 640, height: 360 }', 'scenes:', '  - duration: 1', '    layers:', '      - type: solid', '        color: "{{c}}"']);
    expect(resolveMovie(t, { c: '#abcdef' }).scenes[0].layers[0].spec).toMatchObject({ color: '#abcdef' });
    expect(failure(() => resolveMovie(t, { c: 'red' })).details).toEqual([
      { field: 'ok/t/movie.yaml:6', message: expect.stringMatching(/scenes\.0\.layers\.0\.color: expected a colour/) },
    ]);
  });

  it.each([
    ['Handlebars', '{{x}} {{> p}} {{{y}}}'],
    ['quotes', `"double" 'single' \`back\``],
    ['newlines', 'one\ntwo\r\nthree'],
    ['emoji', '👋🏽 🎬 👩‍👩‍👧‍👦'],
    ['RTL', 'שלום עולם'],
    ['ffmpeg specials', "%{pts} : \\ ' [0:v] ;,"],
    ['markup', '<b>&amp;</b>'],
  ])('a text param with %s ends up unchanged in the layer text', (_what, value) => {
    const t = template([
      'canvas: { width: 640, height: 360 }',
      'variables:',
      '  msg: { type: string }',
      'scenes:',
      '  - duration: 1',
      '    layers:',
      '      - { type: text, text: "{{msg}}" }',
      '      - { type: text, text: "[{{msg}}]" }',
    ]);
    const m = resolveMovie(t, { msg: value, x: 'EVALUATED', y: 'EVALUATED' } as Params);
    expect((m.scenes[0].layers[0].spec as { text: string }).text).toBe(value);
    expect((m.scenes[0].layers[1].spec as { text: string }).text).toBe(`[${value}]`);
  });

  it('strings without {{ are left alone; keys are never templated', () => {
    const t = template(['canvas: { width: 640, height: 360 }', 'scenes:', '  - duration: 1', '    name: "plain } {"', '    layers: [{ type: text, text: "a {b} c" }]']);
    const m = resolveMovie(t, {});
    expect(m.scenes[0].name).toBe('plain } {');
    expect((m.scenes[0].layers[0].spec as { text: string }).text).toBe('a {b} c');
  });
});

describe('resolveMovie: svg layers, partials and fonts (fixture folder ok/card)', () => {
  let service: TemplatesService;
  let dataDir: string;
  const FIXTURES = path.join(__dirname, '..', 'fixtures', 'templates-bad');
  beforeAll(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-resolve-'));
    const config = loadConfig({ MONTAGE_TEMPLATES_DIR: FIXTURES, MONTAGE_DATA_DIR: dataDir }, process.cwd());
    service = new TemplatesService(config, new TemplateFilesRepository(), Object.assign(new FontsRepository(), { installedFamilies: async () => new Set(['dejavu sans']) }), { check: async () => [] } as unknown as BlenderScenesService);
  });
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('the fixture passes check()', async () => {
    await expect(service.check('ok', 'card')).resolves.toEqual([]);
  });

  it('renders the .svg.hbs markup with the params, XML-escaped', async () => {
    const t = await service.load('ok', 'card');
    const m = resolveMovie(t, { name: `<Tom & "Jerry">`, photo: 'assets/photo.png' });
    const svg = m.scenes[0].layers[1];
    expect(svg.spec).toMatchObject({ type: 'svg', src: 'badge.svg.hbs', x: 10 });
    expect(svg.svg).toBe(
      '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="40">' +
        '<text x="4" y="30" data-name="&lt;Tom &amp; &quot;Jerry&quot;&gt;">&lt;TOM &amp; &quot;JERRY&quot;&gt;</text></svg>\n',
    );
  });

  it('partials of the movie are available to movie strings (not escaped there)', async () => {
    const t = await service.load('ok', 'card');
    const m = resolveMovie(t, { name: 'A & B', photo: 'assets/photo.png' });
    expect((m.scenes[0].layers[2].spec as { text: string }).text).toBe('-- A & B');
  });

  it('a font file of the template becomes an absolute path inside the template dir, set in its own family', async () => {
    const t = await service.load('ok', 'card');
    const m = resolveMovie(t, { name: 'x', photo: 'assets/photo.png' });
    expect(m.scenes[0].layers[2].fontFile).toBe(path.join(FIXTURES, 'ok', 'card', 'fonts', 'Brand.ttf'));
    expect(m.scenes[0].layers[2].spec).toMatchObject({ type: 'text', font: { family: 'Montage Test', file: 'fonts/Brand.ttf' } });
  });

  it('the countdown fixture: 10 scenes from a range, constants, helpers, an SVG per number', async () => {
    const t = await service.load('ok', 'countdown');
    const m = resolveMovie(t, { from: 10, label: 'Go' });
    expect(m.scenes.map((s) => (s.layers[0].spec as { text: string }).text)).toEqual([
      ...[10, 9, 8, 7, 6, 5, 4].map((n) => `${n} by Acme\n`),
      ...[3, 2, 1].map((n) => `${n}! by Acme\n`),
      'GO (2 letters, 1-2-3)',
    ]);
    expect(m.scenes.map((s) => s.background)).toEqual([...Array(9).fill('#000000'), '#e94e1b', '#000000']);
    expect(m.scenes.slice(0, 3).map((s) => (s.layers[0].spec as { font: { size: number } }).font.size)).toEqual([64, 48, 48]);
    expect(m.scenes[9].layers[1].svg).toContain('r="22" fill="#e94e1b"');
    expect(m.scenes[9].layers[1].svg).toContain('>1</text>');
    expect(m.totalFrames).toBe(10 * 5 + 10);
  });

  it('template media → {kind: file} inside the template dir; audio too', async () => {
    const t = await service.load('ok', 'card');
    const m = resolveMovie(t, { name: 'x', photo: 'assets/photo.png' });
    expect(m.scenes[0].layers[0].media).toEqual({ kind: 'file', path: path.join(FIXTURES, 'ok', 'card', 'assets', 'photo.png') });
    expect(m.audio).toEqual([
      {
        id: 'a0',
        media: { kind: 'file', path: path.join(FIXTURES, 'ok', 'card', 'assets', 'music.m4a') },
        startFrame: 0,
        spec: { src: 'assets/music.m4a', start: 0, trim: 0, volume: 0.5, fadeIn: 0, fadeOut: 0, loop: false },
      },
    ]);
    expect(m.templateId).toBe('ok/card');
    expect(m.version).toBe(t.version);
    expect(m.width).toBe(320);
    expect(m.height).toBe(180);
  });

  it('an svg src that is not an .svg.hbs of the template → bad_input', () => {
    const t = template(['canvas: { width: 640, height: 360 }', 'scenes:', '  - duration: 1', '    layers:', '      - { type: svg, src: nope.svg.hbs }'], {
      files: ['other.svg.hbs'],
      svgSources: { 'other.svg.hbs': '<svg/>' },
    });
    expect(failure(() => resolveMovie(t, {})).details[0]).toEqual({ field: 'ok/t/movie.yaml:5', message: expect.stringMatching(/nope\.svg\.hbs/) });
  });

  it('an svg src escaping the folder → bad_input', () => {
    const t = template(['canvas: { width: 640, height: 360 }', 'scenes:', '  - duration: 1', '    layers:', '      - { type: svg, src: ../x.svg.hbs }']);
    expect(failure(() => resolveMovie(t, {})).details[0].message).toMatch(/points outside the template folder/);
  });
});

describe('resolveMovie: posterFrame', () => {
  const base = ['canvas: { width: 640, height: 360, fps: 30 }', 'scenes:', '  - duration: 3'];

  it('defaults to the middle frame', () => {
    expect(resolveMovie(template(base), {}).posterFrame).toBe(45);
    expect(resolveMovie(template(['canvas: { width: 640, height: 360, fps: 30 }', 'scenes:', '  - duration: 0.1']), {}).posterFrame).toBe(1);
  });

  it('an explicit poster is seconds into the movie', () => {
    expect(resolveMovie(template(['poster: 1.5', ...base]), {}).posterFrame).toBe(45);
    expect(resolveMovie(template(['poster: 0', ...base]), {}).posterFrame).toBe(0);
    expect(resolveMovie(template(['poster: 2.99', ...base]), {}).posterFrame).toBe(89);
  });

  it('a poster past the end is clamped to the last frame', () => {
    expect(resolveMovie(template(['poster: 60', ...base]), {}).posterFrame).toBe(89);
  });

  it('the default poster avoids frames where a layer is still animating in or out, a transition, or an opacity ramp', () => {
    // Scene 1 lasts 2 s (frames 0–60), scene 2 enters over it by a 0.5 s crossfade (frames
    // 45–60) and ends at frame 90: the middle, frame 45, is where the transition starts.
    const movie = (extra: string[]) =>
      template([
        'canvas: { width: 640, height: 360, fps: 30 }',
        'scenes:',
        '  - duration: 2',
        '  - duration: 1.5',
        '    transition: { type: crossfade, duration: 0.5 }',
        '    layers:',
        ...extra,
      ]);
    // the transition covers frames 45–60: the nearest free frame is 44
    expect(resolveMovie(movie(['      - { type: solid, color: "#ff0000" }']), {}).posterFrame).toBe(44);
    // a layer from 0.5 s into scene 2 fading in for 1 s (frames 60–90) and out for 0.3 s: busy from 45 to the end
    expect(
      resolveMovie(movie(['      - { type: solid, color: "#ff0000", start: 0.5, in: { type: fade, duration: 1 }, out: { type: fade, duration: 0.3 } }']), {}).posterFrame,
    ).toBe(44);
    // an opacity ramp from 0 to 1 over the scene's first second (frames 45–75)
    expect(resolveMovie(movie(['      - { type: solid, color: "#ff0000", keyframes: { opacity: [{ at: 0, value: 0 }, { at: 1, value: 1 }] } }']), {}).posterFrame).toBe(44);
    // a split pop text: its own 0.3 s scale in, then 0.12 s per further word ("a b c": 0.54 s, 17 frames at 30 fps)
    const pop = resolveMovie(template(['canvas: { width: 640, height: 360, fps: 30 }', 'scenes:', '  - duration: 2', '    layers:', '      - { type: text, text: "a b c", start: 0.5, split: pop }']), {});
    expect(busySpans(pop.scenes, 30)).toEqual([{ from: 15, to: 32 }]);
    // a movie where every frame is busy keeps the middle
    expect(resolveMovie(template(['canvas: { width: 640, height: 360, fps: 30 }', 'scenes:', '  - duration: 1', '    layers:', '      - { type: solid, color: "#ff0000", in: { type: fade, duration: 1 } }']), {}).posterFrame).toBe(15);
  });
});

describe('resolveMovie: media sources', () => {
  const lines = [
    'canvas: { width: 640, height: 360 }', // 1
    'scenes:', // 2
    '  - duration: 1', // 3
    '    layers:', // 4
    '      - type: image', // 5
    '        src: "{{src}}"', // 6
  ];
  const files = ['assets/photo.jpg', 'clips/a.mp4'];
  const resolve = (src: string) => resolveMovie(template(lines, { files }), { src });

  it.each(['https://example.com/a.jpg', 'http://example.com/a.jpg?x=1&y=2', 'HTTPS://EXAMPLE.COM/A.JPG'])('URL %s → {kind: url}', (src) => {
    expect(resolve(src).scenes[0].layers[0].media).toEqual({ kind: 'url', url: src });
  });

  it.each([
    ['assets/photo.jpg', 'assets/photo.jpg'],
    ['./assets/photo.jpg', 'assets/photo.jpg'],
    ['assets/../assets/photo.jpg', 'assets/photo.jpg'],
    ['assets\\photo.jpg', 'assets/photo.jpg'],
  ])('template file %s → {kind: file} inside the template dir', (src, rel) => {
    expect(resolve(src).scenes[0].layers[0].media).toEqual({ kind: 'file', path: path.join(DIR, rel) });
  });

  it.each([
    ['../x.png', /points outside the template folder/],
    ['../../etc/passwd', /points outside the template folder/],
    ['assets/../../x.png', /points outside the template folder/],
    ['..\\..\\etc\\passwd', /points outside the template folder/],
    ['/etc/passwd', /points outside the template folder/],
    ['..', /points outside the template folder/],
    ['assets/photo.jpg\0.png', /points outside the template folder|not found/],
    ['file:///etc/passwd', /unsupported media source/],
    ['ftp://example.com/a.jpg', /unsupported media source/],
    ['data:image/png;base64,AAAA', /unsupported media source/],
    ['C:\\Windows\\win.ini', /unsupported media source|outside/],
    ['assets/missing.jpg', /not found in ok\/t/],
    ['', /at least 1 character|media source is empty/], // the schema's min(1) fires before resolve's clearer message
    ['   ', /media source is empty/],
  ])('%j → bad_input at the src line', (src, message) => {
    const err = failure(() => resolve(src));
    expect(err.kind).toBe('bad_input');
    expect(err.details).toEqual([{ field: 'ok/t/movie.yaml:6', message: expect.stringMatching(message) }]);
  });

  it('video layers resolve media the same way', () => {
    const t = template(['canvas: { width: 640, height: 360 }', 'scenes:', '  - duration: 1', '    layers:', '      - { type: video, src: clips/a.mp4 }'], { files });
    const layer = resolveMovie(t, {}).scenes[0].layers[0];
    expect(layer.media).toEqual({ kind: 'file', path: path.join(DIR, 'clips/a.mp4') });
    expect(layer.spec).toMatchObject({ type: 'video', loop: false, mute: true, volume: 1, trim: { start: 0 } });
  });

  it('audio tracks: URL, start in frames, and a ../ escape → bad_input at the audio src line', () => {
    const t = template(
      [
        'canvas: { width: 640, height: 360, fps: 30 }', // 1
        'audio:', // 2
        '  - src: "{{music}}"', // 3
        '    start: 0.5', // 4
        '  - src: ../secret.m4a', // 5
        'scenes:', // 6
        '  - duration: 1', // 7
      ],
      { files },
    );
    const err = failure(() => resolveMovie(t, { music: 'https://example.com/m.mp3' }));
    expect(err.details).toEqual([{ field: 'ok/t/movie.yaml:5', message: expect.stringMatching(/points outside the template folder/) }]);

    const ok = template(['canvas: { width: 640, height: 360, fps: 30 }', 'audio:', '  - src: "{{music}}"', '    start: 0.5', 'scenes:', '  - duration: 1']);
    const m = resolveMovie(ok, { music: 'https://example.com/m.mp3' });
    expect(m.audio).toEqual([
      {
        id: 'a0',
        media: { kind: 'url', url: 'https://example.com/m.mp3' },
        startFrame: 15,
        spec: expect.objectContaining({ src: 'https://example.com/m.mp3', start: 0.5, volume: 1 }),
      },
    ]);
  });

  it('reports every error at once', () => {
    const t = template([
      'canvas: { width: 640, height: 360 }', // 1
      'scenes:', // 2
      '  - duration: 1', // 3
      '    layers:', // 4
      '      - { type: image, src: ../a.png }', // 5
      '      - { type: image, src: "file:///b" }', // 6
    ]);
    expect(failure(() => resolveMovie(t, {})).details.map((d) => d.field)).toEqual(['ok/t/movie.yaml:5', 'ok/t/movie.yaml:6']);
  });
});
