import { formFields } from '../../src/studio/form-model';
import { embedSnippets, queryParams, shellQuote } from '../../src/studio/snippet';
import { timelineOf } from '../../src/studio/timeline';
import { verify } from '../../src/projects/url-signing';
import { resolveMovie } from '../../src/compiler/resolve';
import { movieSchema } from '../../src/templates/movie.schema';
import { execFileSync } from 'node:child_process';

describe('studio form model', () => {
  const variables = movieSchema.parse({
    canvas: { width: 64, height: 64 },
    scenes: [{ duration: 1, layers: [] }],
    variables: {
      name: { type: 'string', required: true, maxLength: 40, label: 'Name', description: 'Who' },
      captions: { type: 'string', default: '1\n00:00:00,000 --> 00:00:01,000\nHi\n' },
      price: { type: 'number', min: 0, max: 10, integer: true, default: 3 },
      show: { type: 'boolean', default: true },
      brand: { type: 'color', default: '#e94e1b' },
      photo: { type: 'image', default: 'assets/photo.jpg' },
      currency: { type: 'enum', values: ['USD', 'EUR'], default: 'USD' },
      slides: { type: 'list', minItems: 1, maxItems: 3, fields: { image: { type: 'image', required: true }, caption: { type: 'string', maxLength: 80 } } },
      tags: { type: 'list', of: { type: 'string', maxLength: 10 } },
    },
  }).variables;
  const fields = formFields(variables);
  const byName = Object.fromEntries(fields.map((f) => [f.name, f]));

  it('keeps the template order and maps each type to its input', () => {
    expect(fields.map((f) => [f.name, f.kind])).toEqual([
      ['name', 'text'],
      ['captions', 'textarea'],
      ['price', 'number'],
      ['show', 'checkbox'],
      ['brand', 'color'],
      ['photo', 'url'],
      ['currency', 'select'],
      ['slides', 'list'],
      ['tags', 'list'],
    ]);
  });

  it('carries labels, defaults and constraints as attributes and words', () => {
    expect(byName.name).toMatchObject({ label: 'Name', description: 'Who', required: true, hint: 'required; up to 40 characters' });
    expect(byName.price).toMatchObject({ default: 3, hint: 'whole number; 0 to 10' });
    expect(byName.photo).toMatchObject({ media: 'image', default: 'assets/photo.jpg', hint: 'http(s) URL of an image' });
    expect(byName.currency.options).toEqual(['USD', 'EUR']);
    expect(byName.brand.label).toBe('brand'); // no label: the name
  });

  it('describes list items: object fields, or one scalar field for `of`', () => {
    expect(byName.slides).toMatchObject({ minItems: 1, maxItems: 3, scalarItems: false, hint: 'at least 1, at most 3 items' });
    expect(byName.slides.item!.map((f) => [f.name, f.kind, f.required])).toEqual([
      ['image', 'url', true],
      ['caption', 'text', false],
    ]);
    expect(byName.tags).toMatchObject({ scalarItems: true });
    expect(byName.tags.item).toEqual([expect.objectContaining({ name: 'value', kind: 'text', hint: 'up to 10 characters' })]);
  });
});

describe('studio timeline', () => {
  it('gives scenes and layers with frame ranges and short labels from the resolved movie', () => {
    const spec = movieSchema.parse({
      canvas: { width: 64, height: 64, fps: 10 },
      variables: { who: { type: 'string', default: 'Ada' } },
      scenes: [
        { name: 'intro', duration: 2, layers: [{ type: 'solid', color: '#000000' }, { type: 'text', text: 'Hello {{who}}, this is a rather long line of words to cut', start: 0.5 }] },
        { name: 'end', duration: 1, layers: [{ type: 'solid', color: '#ffffff' }] },
      ],
    });
    const template = { project: 'p', movie: 'm', dir: '/nonexistent', file: 'p/m/movie.yaml', version: 'v', spec, svgSources: {}, partials: {}, files: [], fonts: {}, lineOf: () => 1 };
    const t = timelineOf(resolveMovie(template, { who: 'Grace' }));
    expect(t).toMatchObject({ fps: 10, totalFrames: 30, width: 64, height: 64 });
    expect(t.scenes.map((s) => [s.name, s.startFrame, s.endFrame])).toEqual([
      ['intro', 0, 20],
      ['end', 20, 30],
    ]);
    expect(t.scenes[0].layers[0]).toEqual({ id: 's0.l0', type: 'solid', label: 'solid', startFrame: 0, endFrame: 20 });
    const text = t.scenes[0].layers[1];
    expect(text).toMatchObject({ type: 'text', startFrame: 5, endFrame: 20 });
    expect(text.label.startsWith('Hello Grace, this is')).toBe(true);
    expect([...text.label]).toHaveLength(40);
    expect(text.label.endsWith('…')).toBe(true);
  });
});

describe('studio embed snippets', () => {
  const secret = 'f'.repeat(64);
  const snippets = embedSnippets({ base: 'https://v.example/', project: 'demo', movie: 'welcome', params: { name: "Zoë O'Neil", n: 3, on: true, list: ['a', 'b'] }, token: 'tok_123', signingSecret: secret });

  it('signs a /v1 URL that the service verifies, with every param as a string', () => {
    const url = new URL(snippets.signedUrl);
    expect(url.origin + url.pathname).toBe('https://v.example/v1/render/demo/welcome.mp4');
    const query = Object.fromEntries(url.searchParams);
    expect(query).toMatchObject({ name: "Zoë O'Neil", n: '3', on: 'true', list: '["a","b"]' });
    expect(verify(secret, url.pathname, query, query.sig)).toBe(true);
    expect(verify('0'.repeat(64), url.pathname, query, query.sig)).toBe(false);
    expect(snippets.signedUrl).not.toContain(secret);
  });

  it('writes a curl a shell runs with the same JSON body, the key left to the environment', () => {
    expect(snippets.curl).toContain('$MONTAGE_API_KEY');
    expect(snippets.curl).toContain("'https://v.example/v2/token/demo'");
    // What the shell passes to -d is exactly the JSON: the quote in the name survives.
    const body = execFileSync('sh', ['-c', `printf %s ${snippets.curl.split('-d ')[1]}`], { encoding: 'utf8' });
    expect(JSON.parse(body)).toEqual({ movie: 'welcome', params: { name: "Zoë O'Neil", n: 3, on: true, list: ['a', 'b'] } });
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });

  it('escapes the video tags and points the token one at the token', () => {
    expect(snippets.video).toBe('<video controls playsinline preload="metadata" poster="https://v.example/v2/get/tok_123.jpg" src="https://v.example/v2/get/tok_123.mp4"></video>');
    expect(snippets.signedVideo).toContain('&amp;sig=');
    expect(queryParams({ a: 1.5, b: false })).toEqual({ a: '1.5', b: 'false' });
  });
});
