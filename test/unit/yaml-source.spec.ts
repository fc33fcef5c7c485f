import { type ParseResult, parseSource, type SourceDocument } from '../../src/templates/yaml-source';

function doc(result: ParseResult): SourceDocument {
  if (!result.ok) throw new Error(`expected a document, got ${JSON.stringify(result.errors)}`);
  return result.doc;
}
function errs(result: ParseResult) {
  if (result.ok) throw new Error(`expected errors, got ${JSON.stringify(result.doc.data)}`);
  return result.errors;
}

const YAML = [
  '# A comment on line 1', // 1
  '', // 2
  'title: Hello', // 3
  'canvas:', // 4
  '  width: 640', // 5
  '  height: 360', // 6
  'variables:', // 7
  '  name: { type: string, maxLength: 40 }', // 8
  'scenes:', // 9
  '  - name: intro', // 10
  '    duration: 2', // 11
  '    layers:', // 12
  '      - type: solid', // 13
  '        color: "#112233"', // 14
  '      - type: text', // 15
  '        text: |', // 16
  '          Two', // 17
  '          lines', // 18
  '        x: 10', // 19
  '  - name: outro', // 20
  '    layers: []', // 21
  '',
].join('\n');

describe('parseSource', () => {
  it('parses YAML, keeping the file name', () => {
    const d = doc(parseSource('p/m/movie.yaml', YAML));
    expect(d.file).toBe('p/m/movie.yaml');
    expect(d.data).toEqual({
      title: 'Hello',
      canvas: { width: 640, height: 360 },
      variables: { name: { type: 'string', maxLength: 40 } },
      scenes: [
        {
          name: 'intro',
          duration: 2,
          layers: [
            { type: 'solid', color: '#112233' },
            { type: 'text', text: 'Two\nlines\n', x: 10 },
          ],
        },
        { name: 'outro', layers: [] },
      ],
    });
  });

  it('parses JSON (a subset of YAML 1.2)', () => {
    const json = JSON.stringify({ title: 'J', canvas: { width: 640, height: 360 }, scenes: [{ duration: 1.5, layers: [] }], n: null, b: true }, null, 2);
    expect(doc(parseSource('p/m/movie.json', json)).data).toEqual({
      title: 'J',
      canvas: { width: 640, height: 360 },
      scenes: [{ duration: 1.5, layers: [] }],
      n: null,
      b: true,
    });
  });

  it('YAML 1.2 core schema: yes/no/on/off stay strings, numbers are numbers', () => {
    expect(doc(parseSource('f', 'a: yes\nb: off\nc: 0x10\nd: 1e3\ne: "12"\nf: true\ng: ~\n')).data).toEqual({
      a: 'yes',
      b: 'off',
      c: 16,
      d: 1000,
      e: '12',
      f: true,
      g: null,
    });
  });

  it('an empty file is null data, not an error', () => {
    expect(doc(parseSource('f', '')).data).toBeNull();
  });

  it.each([
    ['a nested mapping in a compact mapping', 'a: 1\nb: 2\nc: d: e\nf: 3\n', 3],
    ['an unterminated quote on the last line', 'a: 1\nb: 2\nc: "open', 3],
    ['a bad indentation', 'a:\n  b: 1\n c: 2\n', 3],
    ['a tab indentation', 'a:\n\tb: 1\n', 2],
    ['JSON with a missing closing brace', '{\n  "a": 1,\n  "b": [1, 2\n}\n', 4],
  ])('a syntax error (%s) gives file:line of the error', (_what, source, line) => {
    const e = errs(parseSource('proj/movie/movie.yaml', source));
    expect(e.length).toBeGreaterThanOrEqual(1);
    expect(e[0].field).toBe(`proj/movie/movie.yaml:${line}`);
    expect(e[0].message).not.toContain('\n');
    expect(e[0].message.length).toBeGreaterThan(0);
  });

  it('every syntax error is reported', () => {
    const e = errs(parseSource('f.yaml', 'a: "x\n---\nb: c: d\n'));
    expect(e.length).toBeGreaterThanOrEqual(1);
    for (const x of e) expect(x.field).toMatch(/^f\.yaml:\d+$/);
  });

  it('more than one document is an error', () => {
    const e = errs(parseSource('f.yaml', 'a: 1\n---\nb: 2\n'));
    expect(e[0].field).toBe('f.yaml:2');
    expect(e[0].message).toMatch(/multiple documents/);
  });

  it('duplicate keys are errors, at the line of the duplicate', () => {
    const e = errs(parseSource('f.yaml', 'canvas:\n  width: 640\n  height: 360\n  width: 1280\n'));
    expect(e).toEqual([{ field: 'f.yaml:4', message: expect.stringMatching(/unique/) }]);
  });

  it('duplicate keys in JSON are errors too', () => {
    const e = errs(parseSource('f.json', '{\n  "a": 1,\n  "b": 2,\n  "a": 3\n}'));
    expect(e).toEqual([{ field: 'f.json:4', message: expect.stringMatching(/unique/) }]);
  });

  it('duplicate top-level keys (a second scenes:) are errors', () => {
    const e = errs(parseSource('f.yaml', 'scenes: []\ntitle: x\nscenes: []\n'));
    expect(e[0].field).toBe('f.yaml:3');
  });

  it('anchors and aliases within limits work', () => {
    expect(doc(parseSource('f', 'a: &c "#ffffff"\nb: *c\n')).data).toEqual({ a: '#ffffff', b: '#ffffff' });
  });

  it('an alias to an anchor that does not exist is an error with file:line, not a throw', () => {
    const e = errs(parseSource('f.yaml', 'a: 1\nb: *nope\n'));
    expect(e[0].field).toBe('f.yaml:2');
  });

  it('an alias bomb is refused with an error result, not a throw', () => {
    let bomb = 'a: &a [x, x, x, x, x, x, x, x, x, x]\n';
    for (let i = 0; i < 8; i++) {
      const prev = String.fromCharCode(97 + i);
      const next = String.fromCharCode(98 + i);
      bomb += `${next}: &${next} [${Array(10).fill(`*${prev}`).join(', ')}]\n`;
    }
    expect(errs(parseSource('f.yaml', bomb)).length).toBeGreaterThan(0);
  });
});

describe('lineOf', () => {
  const d = doc(parseSource('f.yaml', YAML));

  it.each<[Array<string | number>, number]>([
    [['title'], 3],
    [['canvas', 'width'], 5],
    [['canvas', 'height'], 6],
    [['variables', 'name', 'maxLength'], 8],
    [['scenes', 0, 'name'], 10],
    [['scenes', 0, 'duration'], 11],
    [['scenes', 0, 'layers', 0, 'type'], 13],
    [['scenes', 0, 'layers', 0, 'color'], 14],
    [['scenes', 0, 'layers', 1, 'type'], 15],
    [['scenes', 0, 'layers', 1, 'text'], 16],
    [['scenes', 0, 'layers', 1, 'x'], 19],
    [['scenes', 1, 'name'], 20],
    [['scenes', 1, 'layers'], 21],
  ])('the line of the value at %j is %i', (path, line) => {
    expect(d.lineOf(path)).toBe(line);
  });

  it.each<[Array<string | number>, number]>([
    [['scenes', 0], 10], // a sequence item starts on its dash line
    [['scenes', 0, 'layers', 1], 15],
    [['variables', 'name'], 8], // a flow mapping on the key's line
    [['canvas'], 5], // a block mapping starts on the line of its first key, below `canvas:`
    [['scenes'], 10],
  ])('the line of the collection at %j is the first line of its content: %i', (path, line) => {
    expect(d.lineOf(path)).toBe(line);
  });

  it.each<[Array<string | number>, number]>([
    [['canvas', 'fps'], 5], // missing key → its parent, canvas
    [['scenes', 0, 'transition', 'duration'], 10], // missing nested → the scene
    [['scenes', 0, 'layers', 0, 'font', 'family'], 13], // → the layer
    [['scenes', 0, 'layers', 7, 'type'], 13], // missing index → the layers list, which starts at its first dash
    [['scenes', 9], 10], // missing scene → the scenes list
    [['duration'], 3], // missing top-level key → the document's first content line (after comments)
    [[], 3],
  ])('a missing path %j falls back to the nearest existing parent (line %i)', (path, line) => {
    expect(d.lineOf(path)).toBe(line);
  });

  it('a path through a scalar falls back to that scalar', () => {
    expect(d.lineOf(['title', 'deeper', 0])).toBe(3);
  });

  it('works for JSON, line by line', () => {
    const j = doc(parseSource('f.json', '{\n  "canvas": {\n    "width": 640\n  },\n  "scenes": [\n    { "duration": 1 }\n  ]\n}\n'));
    expect(j.lineOf(['canvas', 'width'])).toBe(3);
    expect(j.lineOf(['scenes', 0, 'duration'])).toBe(6);
    expect(j.lineOf(['scenes', 0, 'layers'])).toBe(6);
    expect(j.lineOf(['canvas'])).toBe(2);
  });

  it('returns 1 for an empty document', () => {
    expect(doc(parseSource('f', '')).lineOf(['anything'])).toBe(1);
  });
});
