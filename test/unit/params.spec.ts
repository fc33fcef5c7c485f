import { MAX_DECLARED_STRING_LENGTH, MAX_STRING_LENGTH, type ParamsResult, validateParams } from '../../src/compiler/params';
import type { Variable } from '../../src/templates/movie.schema';

/** Variables as the schema would produce them (required defaults to false). */
const vars = (v: Record<string, Partial<Variable> & { type: Variable['type'] }>): Record<string, Variable> =>
  Object.fromEntries(Object.entries(v).map(([k, x]) => [k, { required: false, ...x } as Variable]));

function ok(result: ParamsResult) {
  if (!result.ok) throw new Error(`expected ok, got ${JSON.stringify(result.errors)}`);
  return result.params;
}
function errors(result: ParamsResult) {
  if (result.ok) throw new Error(`expected errors, got ${JSON.stringify(result.params)}`);
  return result.errors;
}
/** The single error of a result. */
function only(result: ParamsResult) {
  const e = errors(result);
  expect(e).toHaveLength(1);
  return e[0];
}

describe('validateParams: types', () => {
  it('string: keeps the value; a number given for a string becomes its string form', () => {
    const v = vars({ s: { type: 'string' } });
    expect(ok(validateParams(v, { s: 'hello' }))).toEqual({ s: 'hello' });
    expect(ok(validateParams(v, { s: 42 }))).toEqual({ s: '42' });
    expect(ok(validateParams(v, { s: '' }))).toEqual({ s: '' });
  });

  it.each([[true], [{ a: 1 }], [['a']]])('string: refuses %j', (given) => {
    const e = only(validateParams(vars({ s: { type: 'string' } }), { s: given }));
    expect(e.field).toBe('s');
    expect(e.message).toMatch(/expected a string string/);
  });

  it('number: accepts numbers and numeric strings (CLI), returns a number', () => {
    const v = vars({ n: { type: 'number' } });
    expect(ok(validateParams(v, { n: 12.5 }))).toEqual({ n: 12.5 });
    expect(ok(validateParams(v, { n: '12.5' }))).toEqual({ n: 12.5 });
    expect(ok(validateParams(v, { n: '-3' }))).toEqual({ n: -3 });
    expect(ok(validateParams(v, { n: 0 }))).toEqual({ n: 0 });
  });

  it.each([['abc'], [''], ['   '], [true], ['Infinity'], [Number.NaN], [Number.POSITIVE_INFINITY], [{}], [[1]], ['1e400']])(
    'number: refuses %j',
    (given) => {
      const e = only(validateParams(vars({ n: { type: 'number' } }), { n: given }));
      expect(e.field).toBe('n');
      expect(e.message).toMatch(/^expected a number, got /);
    },
  );

  it('number: min, max and integer', () => {
    const v = vars({ n: { type: 'number', min: 1, max: 10, integer: true } });
    expect(ok(validateParams(v, { n: 1 }))).toEqual({ n: 1 });
    expect(ok(validateParams(v, { n: '10' }))).toEqual({ n: 10 });
    expect(only(validateParams(v, { n: 0 }))).toEqual({ field: 'n', message: 'must be ≥ 1, got 0' });
    expect(only(validateParams(v, { n: 11 }))).toEqual({ field: 'n', message: 'must be ≤ 10, got 11' });
    expect(only(validateParams(v, { n: 2.5 }))).toEqual({ field: 'n', message: 'expected a whole number, got 2.5' });
    expect(only(validateParams(v, { n: '2.5' })).message).toMatch(/whole number/);
  });

  it('number: a non-integer is fine when integer is not set', () => {
    expect(ok(validateParams(vars({ n: { type: 'number', max: 3 } }), { n: 2.75 }))).toEqual({ n: 2.75 });
  });

  it.each([
    [true, true],
    [false, false],
    ['true', true],
    ['false', false],
    ['1', true],
    ['0', false],
  ])('boolean: %j → %j', (given, expected) => {
    expect(ok(validateParams(vars({ b: { type: 'boolean' } }), { b: given }))).toEqual({ b: expected });
  });

  it.each([['yes'], ['TRUE'], [1], [0], ['']])('boolean: refuses %j', (given) => {
    const e = only(validateParams(vars({ b: { type: 'boolean' } }), { b: given }));
    expect(e.field).toBe('b');
    expect(e.message).toMatch(/expected true or false/);
  });

  it.each([['#fff'], ['#ffff'], ['#ff8800'], ['#FF880080']])('color: accepts %s', (c) => {
    expect(ok(validateParams(vars({ c: { type: 'color' } }), { c }))).toEqual({ c });
  });

  it.each([['red'], ['ff8800'], ['#ff'], ['#12345'], ['#gggggg'], ['#ff8800 '], ['url(#x)']])(
    'color: refuses %j',
    (c) => {
      const e = only(validateParams(vars({ c: { type: 'color' } }), { c }));
      expect(e.field).toBe('c');
      expect(e.message).toMatch(/expected a colour like #ff8800/);
    },
  );

  it.each(['image', 'video', 'audio'] as const)('%s: accepts http and https URLs unchanged', (type) => {
    const v = vars({ m: { type } });
    expect(ok(validateParams(v, { m: 'https://example.com/a.png?x=1' }))).toEqual({ m: 'https://example.com/a.png?x=1' });
    expect(ok(validateParams(v, { m: 'http://example.com/a' }))).toEqual({ m: 'http://example.com/a' });
    expect(ok(validateParams(v, { m: 'HTTPS://EXAMPLE.COM/A' }))).toEqual({ m: 'HTTPS://EXAMPLE.COM/A' });
  });

  const localPaths = [
    '/etc/passwd',
    'file:///etc/passwd',
    '../x.png',
    'assets/photo.jpg',
    'x.png',
    'C:\\Windows\\win.ini',
    'ftp://example.com/a.png',
    'data:image/png;base64,AAAA',
    'javascript:alert(1)',
    '//example.com/a.png',
    ' https://example.com/a.png',
    '',
  ];
  it.each((['image', 'video', 'audio'] as const).flatMap((type) => localPaths.map((p): [typeof type, string] => [type, p])))(
    '%s: refuses the non-http(s) value %j',
    (type, m) => {
      const e = only(validateParams(vars({ m: { type } }), { m }));
      expect(e.field).toBe('m');
      expect(e.message).toMatch(new RegExp(`expected an http\\(s\\) URL of an? ${type}`));
    },
  );

  it('media: a non-string is refused', () => {
    expect(only(validateParams(vars({ m: { type: 'image' } }), { m: { url: 'https://x' } })).message).toMatch(
      /expected an? image string, got an object/,
    );
  });

  it('media: with allowTemplateFiles (designer defaults), template paths pass but other schemes do not', () => {
    const v = vars({ m: { type: 'image' } });
    expect(ok(validateParams(v, { m: 'assets/photo.jpg' }, { allowTemplateFiles: true }))).toEqual({ m: 'assets/photo.jpg' });
    expect(ok(validateParams(v, { m: 'https://x.test/a.png' }, { allowTemplateFiles: true }))).toEqual({ m: 'https://x.test/a.png' });
    for (const m of ['file:///etc/passwd', 'data:image/png;base64,AAAA', 'ftp://x/a.png']) {
      expect(only(validateParams(v, { m }, { allowTemplateFiles: true })).field).toBe('m');
    }
  });

  it('enum: accepts a listed value, returning the declared value (number values match their string form)', () => {
    const v = vars({ e: { type: 'enum', values: ['small', 'large', 2] } });
    expect(ok(validateParams(v, { e: 'large' }))).toEqual({ e: 'large' });
    expect(ok(validateParams(v, { e: 2 }))).toEqual({ e: 2 });
    expect(ok(validateParams(v, { e: '2' }))).toEqual({ e: 2 });
  });

  it.each([['medium'], ['Large'], [true], [['small']], [{}]])('enum: refuses %j naming the allowed values', (given) => {
    const e = only(validateParams(vars({ e: { type: 'enum', values: ['small', 'large'] } }), { e: given }));
    expect(e.field).toBe('e');
    expect(e.message).toMatch(/^must be one of "small", "large", got /);
  });

  it('list with fields: each item is validated like a params object', () => {
    const v = vars({
      slides: { type: 'list', fields: { caption: { type: 'string', required: true }, hold: { type: 'number', required: false, default: 2 } } },
    });
    expect(ok(validateParams(v, { slides: [{ caption: 'a' }, { caption: 'b', hold: '3' }] }))).toEqual({
      slides: [
        { caption: 'a', hold: 2 },
        { caption: 'b', hold: 3 },
      ],
    });
  });

  it('list with of: each item is validated as that scalar', () => {
    const v = vars({ tags: { type: 'list', of: { type: 'number', required: false, integer: true } } });
    expect(ok(validateParams(v, { tags: [1, '2', 3] }))).toEqual({ tags: [1, 2, 3] });
    expect(only(validateParams(v, { tags: [1, 2.5] }))).toEqual({ field: 'tags[1]', message: 'expected a whole number, got 2.5' });
  });

  it('list without fields or of: scalars only', () => {
    const v = vars({ l: { type: 'list' } });
    expect(ok(validateParams(v, { l: ['a', 1, true] }))).toEqual({ l: ['a', 1, true] });
    expect(only(validateParams(v, { l: ['a', { b: 1 }] }))).toEqual({ field: 'l[1]', message: 'expected a string, number or boolean' });
  });

  it.each([['a string that is not JSON'], [{ a: 1 }], [42], ['{"a":1}']])('list: refuses %j', (given) => {
    expect(only(validateParams(vars({ l: { type: 'list' } }), { l: given }))).toEqual({ field: 'l', message: 'expected a list (a JSON array)' });
  });

  it('list given as a JSON string (from the CLI) is parsed', () => {
    const v = vars({ slides: { type: 'list', fields: { caption: { type: 'string', required: true } } } });
    expect(ok(validateParams(v, { slides: '[{"caption":"one"},{"caption":"two"}]' }))).toEqual({
      slides: [{ caption: 'one' }, { caption: 'two' }],
    });
    const of = vars({ n: { type: 'list', of: { type: 'number', required: false } } });
    expect(ok(validateParams(of, { n: '[1, "2"]' }))).toEqual({ n: [1, 2] });
  });

  it('list: an item that is not an object, when fields are declared, names the item', () => {
    const v = vars({ slides: { type: 'list', fields: { caption: { type: 'string', required: false } } } });
    expect(only(validateParams(v, { slides: [{ caption: 'a' }, 'b'] }))).toEqual({
      field: 'slides[1]',
      message: 'expected an object with fields caption',
    });
    expect(only(validateParams(v, { slides: [null] })).field).toBe('slides[0]');
    expect(only(validateParams(v, { slides: [['x']] })).field).toBe('slides[0]');
  });
});

describe('validateParams: required, defaults, unknown', () => {
  it('applies defaults for values left out, and for null', () => {
    const v = vars({
      company: { type: 'string', default: 'Acme' },
      n: { type: 'number', default: 3 },
      photo: { type: 'image', default: 'assets/photo.jpg' }, // designer default: may be a template file
      list: { type: 'list', default: ['a'] },
      free: { type: 'string' },
    });
    expect(ok(validateParams(v, {}))).toEqual({ company: 'Acme', n: 3, photo: 'assets/photo.jpg', list: ['a'] });
    expect(ok(validateParams(v, { company: null }))).toEqual({ company: 'Acme', n: 3, photo: 'assets/photo.jpg', list: ['a'] });
  });

  it('a given value wins over the default (and is validated, unlike the default)', () => {
    const v = vars({ photo: { type: 'image', default: 'assets/photo.jpg' } });
    expect(ok(validateParams(v, { photo: 'https://x.test/p.jpg' }))).toEqual({ photo: 'https://x.test/p.jpg' });
    expect(only(validateParams(v, { photo: 'assets/photo.jpg' })).field).toBe('photo');
  });

  it('a missing optional variable without default is simply absent', () => {
    expect(ok(validateParams(vars({ s: { type: 'string' } }), {}))).toEqual({});
  });

  it.each([[{}], [{ name: null }], [{ name: undefined }]])('missing required variable: %j', (raw) => {
    expect(only(validateParams(vars({ name: { type: 'string', required: true } }), raw))).toEqual({
      field: 'name',
      message: 'missing required string variable "name"',
    });
  });

  it('a required variable with a default still needs a value', () => {
    expect(only(validateParams(vars({ n: { type: 'number', required: true, default: 1 } }), {})).message).toMatch(
      /missing required number variable "n"/,
    );
  });

  it('unknown variable: the message lists the known ones', () => {
    const e = only(validateParams(vars({ name: { type: 'string' }, company: { type: 'string' } }), { nmae: 'x' }));
    expect(e.field).toBe('nmae');
    expect(e.message).toBe('unknown variable "nmae"; this movie declares name, company');
  });

  it('unknown variable when the movie declares none', () => {
    expect(only(validateParams({}, { x: 1 })).message).toBe('unknown variable "x"; this movie declares no variables');
  });

  it('unknown variable: a huge name is truncated in the message', () => {
    const name = 'a'.repeat(500);
    const e = only(validateParams({}, { [name]: 1 }));
    expect(e.message.length).toBeLessThan(200);
    expect(e.message).toContain(`"${'a'.repeat(60)}…"`);
  });

  it('does not treat inherited properties (__proto__, constructor, toString) as variables', () => {
    const raw = JSON.parse('{"__proto__": "x", "constructor": "y", "toString": "z"}');
    const e = errors(validateParams(vars({ name: { type: 'string' } }), raw));
    expect(e.map((x) => x.field).sort()).toEqual(['__proto__', 'constructor', 'toString']);
    expect(ok(validateParams(vars({ name: { type: 'string', default: 'd' } }), {}))).toEqual({ name: 'd' });
  });

  it('reports every error at once', () => {
    const v = vars({
      name: { type: 'string', required: true },
      n: { type: 'number', max: 5 },
      c: { type: 'color' },
    });
    const e = errors(validateParams(v, { n: 6, c: 'red', extra: 1 }));
    expect(e).toHaveLength(4);
    expect(e.map((x) => x.field).sort()).toEqual(['c', 'extra', 'n', 'name']);
  });

  it('two bad fields → two details', () => {
    const v = vars({ a: { type: 'number' }, b: { type: 'boolean' } });
    expect(errors(validateParams(v, { a: 'x', b: 'y' }))).toEqual([
      { field: 'a', message: 'expected a number, got "x"' },
      { field: 'b', message: 'expected true or false, got "y"' },
    ]);
  });
});

describe('validateParams: string constraints', () => {
  it('minLength and maxLength', () => {
    const v = vars({ s: { type: 'string', minLength: 2, maxLength: 4 } });
    expect(ok(validateParams(v, { s: 'ab' }))).toEqual({ s: 'ab' });
    expect(ok(validateParams(v, { s: 'abcd' }))).toEqual({ s: 'abcd' });
    expect(only(validateParams(v, { s: 'a' }))).toEqual({ field: 's', message: 'must be at least 2 characters, got 1' });
    expect(only(validateParams(v, { s: 'abcde' }))).toEqual({ field: 's', message: 'must be at most 4 characters, got 5' });
  });

  it('lengths are counted in code points: an emoji counts 1', () => {
    const v = vars({ s: { type: 'string', maxLength: 3 } });
    expect('😀😀😀'.length).toBe(6); // UTF-16 units
    expect(ok(validateParams(v, { s: '😀😀😀' }))).toEqual({ s: '😀😀😀' });
    expect(only(validateParams(v, { s: '😀😀😀😀' })).message).toBe('must be at most 3 characters, got 4');
    expect(only(validateParams(vars({ s: { type: 'string', minLength: 2 } }), { s: '😀' })).message).toBe(
      'must be at least 2 characters, got 1',
    );
  });

  it('pattern must match the whole value', () => {
    const v = vars({ code: { type: 'string', pattern: '[A-Z]{3}' } });
    expect(ok(validateParams(v, { code: 'ABC' }))).toEqual({ code: 'ABC' });
    for (const bad of ['AB', 'ABCD', 'xABC', 'ABC\n', 'abc']) {
      expect(only(validateParams(v, { code: bad }))).toEqual({ field: 'code', message: 'does not match the pattern [A-Z]{3}' });
    }
  });

  it('pattern with alternation is anchored as a whole', () => {
    const v = vars({ s: { type: 'string', pattern: 'a|b' } });
    expect(ok(validateParams(v, { s: 'a' })).s).toBe('a');
    expect(errors(validateParams(v, { s: 'ab' }))[0].field).toBe('s');
    expect(errors(validateParams(v, { s: 'xb' }))[0].field).toBe('s');
  });

  it('an invalid pattern gives an error naming the variable, not a throw', () => {
    const result = validateParams(vars({ code: { type: 'string', pattern: '[A-Z' } }), { code: 'ABC' });
    expect(errors(result)[0].field).toBe('code');
  });

  it('pattern is a unicode regular expression', () => {
    expect(ok(validateParams(vars({ s: { type: 'string', pattern: '\\p{L}+' } }), { s: 'Ærøskøbing' })).s).toBe('Ærøskøbing');
  });

  it(`caps every string at MAX_STRING_LENGTH (${MAX_STRING_LENGTH}) even without maxLength`, () => {
    const v = vars({ s: { type: 'string' } });
    expect(ok(validateParams(v, { s: 'x'.repeat(MAX_STRING_LENGTH) })).s).toHaveLength(MAX_STRING_LENGTH);
    expect(only(validateParams(v, { s: 'x'.repeat(MAX_STRING_LENGTH + 1) }))).toEqual({
      field: 's',
      message: `is ${MAX_STRING_LENGTH + 1} characters long; the limit is ${MAX_STRING_LENGTH}`,
    });
    // a string variable that declares a larger maxLength (subtitles) raises it, up to MAX_DECLARED_STRING_LENGTH
    expect(ok(validateParams(vars({ s: { type: 'string', maxLength: 50_000 } }), { s: 'x'.repeat(20_000) })).s).toHaveLength(20_000);
    expect(only(validateParams(vars({ s: { type: 'string', maxLength: 50_000 } }), { s: 'x'.repeat(60_000) })).message).toMatch(/the limit is 50000/);
    expect(only(validateParams(vars({ s: { type: 'string', maxLength: 5_000_000 } }), { s: 'x'.repeat(MAX_DECLARED_STRING_LENGTH + 1) })).message).toMatch(
      /the limit is 1000000/,
    );
    // and to media URLs too
    expect(only(validateParams(vars({ m: { type: 'image' } }), { m: `https://x.test/${'a'.repeat(MAX_STRING_LENGTH)}` })).message).toMatch(
      /the limit is 10000/,
    );
  });

  it('caps strings inside list items of `of` and `fields` lists', () => {
    const big = 'x'.repeat(MAX_STRING_LENGTH + 1);
    expect(only(validateParams(vars({ l: { type: 'list', of: { type: 'string', required: false } } }), { l: ['a', big] })).field).toBe('l[1]');
    expect(
      only(validateParams(vars({ l: { type: 'list', fields: { t: { type: 'string', required: false } } } }), { l: [{ t: big }] })).field,
    ).toBe('l[0].t');
  });

  it('caps strings inside list items of a plain list (no fields, no of)', () => {
    const big = 'x'.repeat(MAX_STRING_LENGTH + 1);
    expect(only(validateParams(vars({ l: { type: 'list' } }), { l: [big] })).field).toBe('l[0]');
  });

  it.each([
    ['quotes', `He said "hi" and 'bye'`],
    ['colons and semicolons', 'a:b;c=d,e'],
    ['backslashes', 'C:\\path\\to\\file \\n \\\\'],
    ['ffmpeg expansion', '%{pts} %{localtime} %%'],
    ['newlines', 'line one\nline two\r\nline three'],
    ['emoji', '🎬 Montage 👩‍💻 🇫🇷'],
    ['RTL text', 'مرحبا بالعالم ‏שלום‎'],
    ['Handlebars', '{{evil}} {{> partial}} {{{raw}}}'],
    ['markup', '<script>alert(1)</script> &amp;'],
    ['tabs', 'a\tb'],
    ['characters beyond the BMP and the last valid ones', '𝔘𝔫𝔦 \uFFFD \u{10FFFF}'],
    ['brackets', '[in] [out] ;drawtext=text=x'],
  ])('a plain string variable accepts %s unchanged', (_what, s) => {
    expect(ok(validateParams(vars({ s: { type: 'string' } }), { s }))).toEqual({ s });
  });

  it.each([
    ['a NUL', 'a\u0000b', 'U+0000 (NUL)'],
    ['a bell', 'a\u0007', 'U+0007 (a control character)'],
    ['an escape sequence', '\u001b[31mred', 'U+001B (a control character)'],
    ['a vertical tab (XML forbids it)', 'a\u000bb', 'U+000B (a control character)'],
    ['an unpaired surrogate', 'a\ud800b', 'U+D800 (half of a surrogate pair)'],
    ['a lone low surrogate', '\udc00', 'U+DC00 (half of a surrogate pair)'],
    ['U+FFFE', 'a\ufffe', 'U+FFFE (a non-character)'],
  ])('a string with %s is refused, naming the character', (_what, s, named) => {
    expect(only(validateParams(vars({ s: { type: 'string' } }), { s }))).toEqual({ field: 's', message: `contains ${named}, which text cannot hold` });
  });

  it('the same holds inside lists of scalars and of objects', () => {
    const list = vars({ tags: { type: 'list' }, rows: { type: 'list', fields: { label: { type: 'string', required: false } } } });
    const result = validateParams(list, { tags: ['ok', 'x\u0000'], rows: [{ label: 'y\u0001' }] });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.map((e) => e.field).sort()).toEqual(['rows[0].label', 'tags[1]']);
  });
});

describe('validateParams: lists', () => {
  const slides = vars({
    slides: {
      type: 'list',
      minItems: 2,
      maxItems: 3,
      fields: { caption: { type: 'string', required: true, maxLength: 10 }, photo: { type: 'image', required: false } },
    },
  });

  it('minItems', () => {
    expect(only(validateParams(slides, { slides: [{ caption: 'a' }] }))).toEqual({ field: 'slides', message: 'needs at least 2 items, got 1' });
    expect(only(validateParams(slides, { slides: [] })).message).toBe('needs at least 2 items, got 0');
  });

  it('maxItems', () => {
    const four = Array.from({ length: 4 }, () => ({ caption: 'x' }));
    expect(only(validateParams(slides, { slides: four }))).toEqual({ field: 'slides', message: 'allows at most 3 items, got 4' });
  });

  it('per-item errors are named like slides[2].caption', () => {
    const e = errors(
      validateParams(slides, {
        slides: [{ caption: 'ok' }, { caption: 'fine', photo: '/etc/passwd' }, { caption: 'much too long a caption' }],
      }),
    );
    expect(e.map((x) => x.field)).toEqual(['slides[1].photo', 'slides[2].caption']);
    expect(e[0].message).toMatch(/http\(s\) URL/);
    expect(e[1].message).toBe('must be at most 10 characters, got 23');
  });

  it('a missing required field of an item', () => {
    expect(only(validateParams(slides, { slides: [{ caption: 'a' }, { caption: 'b' }, {}] }))).toEqual({
      field: 'slides[2].caption',
      message: 'missing required string variable "caption"',
    });
  });

  it('an unknown field of an item', () => {
    const e = only(validateParams(slides, { slides: [{ caption: 'a' }, { caption: 'b', captoin: 'c' }] }));
    expect(e.field).toBe('slides[1].captoin');
    expect(e.message).toMatch(/unknown variable "captoin"; this movie declares caption, photo/);
  });

  it('item errors and a minItems error are all reported', () => {
    const e = errors(validateParams(slides, { slides: [{}] }));
    expect(e.map((x) => x.field)).toEqual(['slides', 'slides[0].caption']);
  });
});
