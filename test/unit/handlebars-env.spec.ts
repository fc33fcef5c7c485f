import Handlebars from 'handlebars';
import { createHandlebarsEnv, templateFunctions } from '../../src/compiler/handlebars-env';

const NBSP = '\u00a0';

/** Renders a movie-file string (no escaping) in a fresh environment. */
function text(source: string, context: unknown = {}, data?: Record<string, unknown>, partials: Record<string, string> = {}): string {
  return templateFunctions(createHandlebarsEnv(partials)).text(source)(context, data);
}

describe('helpers', () => {
  it('upper, lower, trim', () => {
    expect(text('{{upper v}}', { v: 'straße ǆ éa' })).toBe('STRASSE Ǆ ÉA');
    expect(text('{{lower v}}', { v: 'ÀÉÎ ABC' })).toBe('àéî abc');
    expect(text('[{{trim v}}]', { v: ' \t padded \n ' })).toBe('[padded]');
    expect(text('{{upper v}}|{{lower v}}|{{trim v}}', {})).toBe('||');
    expect(text('{{upper v}}', { v: 42 })).toBe('42');
  });

  it('truncate: counts code points and appends an ellipsis only when it cuts', () => {
    expect(text('{{truncate v 5}}', { v: 'Hello world' })).toBe('Hello…');
    expect(text('{{truncate v 11}}', { v: 'Hello world' })).toBe('Hello world');
    expect(text('{{truncate v 20}}', { v: 'short' })).toBe('short');
    expect(text('{{truncate v 2}}', { v: '😀😀😀' })).toBe('😀😀…');
    expect(text('{{truncate v 3 ellipsis="..."}}', { v: 'abcdef' })).toBe('abc...');
    expect(text('{{truncate v 3 ellipsis=""}}', { v: 'abcdef' })).toBe('abc');
    expect(text('{{truncate v 0}}', { v: 'abc' })).toBe('…');
    expect(text('{{truncate v -4}}', { v: 'abc' })).toBe('…');
    expect(text('{{truncate v "x"}}', { v: 'abc' })).toBe('abc'); // not a number: no truncation
  });

  it('default: the fallback only when the value is empty', () => {
    expect(text('{{default v "friend"}}', { v: 'Ada' })).toBe('Ada');
    expect(text('{{default v "friend"}}', { v: '' })).toBe('friend');
    expect(text('{{default v "friend"}}', {})).toBe('friend');
    expect(text('{{default v "friend"}}', { v: null })).toBe('friend');
    expect(text('{{default v "friend"}}', { v: 0 })).toBe('0');
    expect(text('{{default v "friend"}}', { v: false })).toBe('false');
  });

  it('add: numbers and numeric strings; @index + 1 for 1-based numbering', () => {
    expect(text('{{add a b}}', { a: 2, b: 3 })).toBe('5');
    expect(text('{{add a 1}}', { a: '41' })).toBe('42');
    expect(text('{{add a 0.5}}', { a: 1 })).toBe('1.5');
    expect(text('{{add @index 1}}', {}, { index: 2 })).toBe('3');
    expect(text('{{#each xs}}{{add @index 1}}.{{this}} {{/each}}', { xs: ['a', 'b'] })).toBe('1.a 2.b ');
  });

  it('number: grouping by default (en-US), decimals', () => {
    expect(text('{{number v}}', { v: 1234567.891 })).toBe('1,234,567.891');
    expect(text('{{number v decimals=2}}', { v: 1234.5 })).toBe('1,234.50');
    expect(text('{{number v decimals=0}}', { v: 1234.5 })).toBe('1,235');
    expect(text('{{number v decimals=1}}', { v: '3.14159' })).toBe('3.1');
    expect(text('{{number v decimals=-3}}', { v: 2.5 })).toBe('3'); // clamped to 0
    expect(text('{{number v decimals=99}}', { v: 1 })).toBe(`1.${'0'.repeat(20)}`); // clamped to 20
  });

  it('number: currency and percent', () => {
    expect(text('{{number v style="currency" currency="USD"}}', { v: 1234.5 })).toBe('$1,234.50');
    expect(text('{{number v style="currency" currency="EUR" locale="de-DE"}}', { v: 1234.5 })).toBe(`1.234,50${NBSP}€`);
    expect(text('{{number v style="currency" currency="JPY" locale="ja-JP"}}', { v: 1234.5 })).toMatch(/^[¥￥]1,235$/);
    expect(text('{{number v style="percent"}}', { v: 0.256 })).toBe('26%');
    expect(text('{{number v style="percent" decimals=1}}', { v: 0.256 })).toBe('25.6%');
  });

  it('number: locale', () => {
    expect(text('{{number v locale="de-DE" decimals=2}}', { v: 1234.5 })).toBe('1.234,50');
    expect(text('{{number v locale="fr-FR"}}', { v: 1234.5 })).toBe(`1${'\u202f'}234,5`);
    expect(text('{{number v locale="en-IN"}}', { v: 12345678 })).toBe('1,23,45,678');
  });

  it('number: not a number → the value as text; an unusable format → the plain number', () => {
    expect(text('{{number v}}', { v: 'abc' })).toBe('abc');
    expect(text('{{number v}}', {})).toBe('');
    expect(text('{{number v locale="!!"}}', { v: 1234.5 })).toBe('1234.5');
    expect(text('{{number v style="currency" currency="NOPE!"}}', { v: 2 })).toBe('2');
  });

  it('date: iso, year and the Intl styles, in UTC', () => {
    const d = '2024-03-05T10:00:00Z';
    expect(text('{{date d format="iso"}}', { d })).toBe('2024-03-05');
    expect(text('{{date d format="year"}}', { d })).toBe('2024');
    expect(text('{{date d format="long"}}', { d })).toBe('March 5, 2024');
    expect(text('{{date d format="short"}}', { d })).toBe('3/5/24');
    expect(text('{{date d}}', { d })).toBe('Mar 5, 2024'); // medium
    expect(text('{{date d format="full"}}', { d })).toBe('Tuesday, March 5, 2024');
    expect(text('{{date d format="long" locale="fr-FR"}}', { d })).toBe('5 mars 2024');
    expect(text('{{date d format="long" locale="de-DE"}}', { d })).toBe('5. März 2024');
    expect(text('{{date d format="bogus"}}', { d })).toBe('Mar 5, 2024'); // unknown format → medium
    expect(text('{{date d format="long" locale="!!not a locale"}}', { d })).toBe('2024-03-05'); // bad locale → iso
  });

  it('date: a number is milliseconds since the epoch', () => {
    expect(text('{{date d format="iso"}}', { d: Date.UTC(2000, 0, 31) })).toBe('2000-01-31');
  });

  it('date: a date with an offset is shown as its UTC date', () => {
    const d = '2024-12-31T23:30:00-05:00'; // 2025-01-01T04:30Z
    expect(text('{{date d format="iso"}}', { d })).toBe('2025-01-01');
    expect(text('{{date d format="year"}}', { d })).toBe('2025');
    expect(text('{{date d format="long"}}', { d })).toBe('January 1, 2025');
  });

  describe('does not depend on the process time zone', () => {
    const saved = process.env.TZ;
    afterEach(() => {
      if (saved === undefined) delete process.env.TZ;
      else process.env.TZ = saved;
    });
    it.each(['UTC', 'Pacific/Kiritimati', 'America/Los_Angeles', 'Asia/Kolkata'])('TZ=%s', (tz) => {
      process.env.TZ = tz;
      const source = '{{date a format="iso"}} {{date a format="year"}} {{date a format="long"}} | {{date b format="long"}} {{date c format="iso"}}';
      expect(text(source, { a: '2023-12-31T23:59:00Z', b: '2024-01-01', c: Date.UTC(2024, 5, 30, 23, 59) })).toBe(
        '2023-12-31 2023 December 31, 2023 | January 1, 2024 2024-06-30',
      );
    });
  });

  it('eq: strict equality, for use in sub-expressions', () => {
    expect(text('{{#if (eq kind "a")}}yes{{else}}no{{/if}}', { kind: 'a' })).toBe('yes');
    expect(text('{{#if (eq kind "a")}}yes{{else}}no{{/if}}', { kind: 'b' })).toBe('no');
    expect(text('{{#if (eq n 1)}}yes{{else}}no{{/if}}', { n: '1' })).toBe('no'); // strict
    expect(text('{{eq a b}}', { a: 2, b: 2 })).toBe('true');
  });
});

describe('environments are isolated', () => {
  it('partials registered in one env do not leak into another env (nor into the global Handlebars)', () => {
    const a = templateFunctions(createHandlebarsEnv({ footer: 'A-footer {{name}}' }));
    const b = templateFunctions(createHandlebarsEnv({}));
    expect(a.text('[{{> footer}}]')({ name: 'x' })).toBe('[A-footer x]');
    expect(() => b.text('[{{> footer}}]')({ name: 'x' })).toThrow(/footer/);
    expect(Handlebars.partials.footer).toBeUndefined();
    expect(Handlebars.helpers.upper).toBeUndefined();
  });

  it('two envs may each have their own partial of the same name', () => {
    const a = templateFunctions(createHandlebarsEnv({ p: 'one' }));
    const b = templateFunctions(createHandlebarsEnv({ p: 'two' }));
    expect(a.text('{{> p}}')({})).toBe('one');
    expect(b.text('{{> p}}')({})).toBe('two');
    expect(a.text('{{> p}}')({})).toBe('one');
  });

  it('partials see the caller context; dotted names from sub-folders work', () => {
    const fns = templateFunctions(createHandlebarsEnv({ 'brand.logo': '<{{upper name}}>' }));
    expect(fns.text('{{> brand.logo}}')({ name: 'acme' })).toBe('<ACME>');
  });
});

describe('templateFunctions: escaping', () => {
  const fns = templateFunctions(createHandlebarsEnv());
  const hostile = `<b class="x">Tom & 'Jerry'</b> \`=`;

  it('.text does not HTML-escape (the value goes to a rasteriser, not a browser)', () => {
    expect(fns.text('{{v}}')({ v: hostile })).toBe(hostile);
    expect(fns.text('{{{v}}}')({ v: hostile })).toBe(hostile);
  });

  it('.markup escapes <, &, " (and the other HTML specials)', () => {
    const out = fns.markup('<text title="{{v}}">{{v}}</text>')({ v: hostile });
    expect(out).toBe(
      '<text title="&lt;b class&#x3D;&quot;x&quot;&gt;Tom &amp; &#x27;Jerry&#x27;&lt;/b&gt; &#x60;&#x3D;">' +
        '&lt;b class&#x3D;&quot;x&quot;&gt;Tom &amp; &#x27;Jerry&#x27;&lt;/b&gt; &#x60;&#x3D;</text>',
    );
    expect(out).not.toContain('<b');
  });

  it('.markup escapes helper output too', () => {
    expect(fns.markup('{{upper v}}')({ v: '<a&b>' })).toBe('&lt;A&amp;B&gt;');
  });

  it('a param value containing {{evil}} is output literally and never re-evaluated', () => {
    const ctx = { name: '{{evil}} {{> p}} {{#each x}}{{/each}}', evil: 'EVALUATED' };
    expect(fns.text('Hi {{name}}!')(ctx)).toBe('Hi {{evil}} {{> p}} {{#each x}}{{/each}}!');
    expect(fns.markup('<t>{{name}}</t>')(ctx)).toBe('<t>{{evil}} {{&gt; p}} {{#each x}}{{/each}}</t>');
    expect(fns.text('{{upper name}}')(ctx)).toBe('{{EVIL}} {{> P}} {{#EACH X}}{{/EACH}}');
  });

  it('prototype properties are not reachable from a template', () => {
    expect(fns.text('[{{constructor}}][{{__proto__}}][{{name.constructor}}]')({ name: 'x' })).toBe('[][][]');
  });

  it('text and markup compilations of the same source are cached separately', () => {
    expect(fns.text('{{v}}')({ v: '&' })).toBe('&');
    expect(fns.markup('{{v}}')({ v: '&' })).toBe('&amp;');
    expect(fns.text('{{v}}')({ v: '&' })).toBe('&');
  });
});

describe('helpers never throw on hostile values', () => {
  const calls = [
    '{{upper v}}',
    '{{lower v}}',
    '{{trim v}}',
    '{{truncate v 5}}',
    '{{truncate v 5 ellipsis=v}}',
    '{{default v "x"}}',
    '{{default v v}}',
    '{{add v 1}}',
    '{{add v v}}',
    '{{number v}}',
    '{{number v decimals=2}}',
    '{{number v decimals=v}}',
    '{{number v style="currency" currency="EUR"}}',
    '{{number v style="currency"}}',
    '{{number v style="currency" currency="NOT-A-CURRENCY"}}',
    '{{number v locale="!!"}}',
    '{{number v locale=v style=v currency=v}}',
    '{{date v}}',
    '{{date v format="iso"}}',
    '{{date v format="year"}}',
    '{{date v format="long"}}',
    '{{date v format="long" locale="!!"}}',
    '{{date v format=v locale=v}}',
    '{{eq v v}}',
    '{{#if (eq v 1)}}a{{/if}}',
    '{{truncate (upper v) (add v 1)}}',
    '{{sub v 1}}{{mul v v}}{{div v 0}}{{div 1 v}}{{mod v v}}{{min v 1 v}}{{max v}}',
    '{{round v}}{{round v v}}{{floor v}}{{ceil v}}{{abs v}}{{round}}{{min}}',
    '{{ne v 1}}{{gt v 1}}{{gte v v}}{{lt 1 v}}{{lte v "a"}}',
    '{{and v v}}{{or v}}{{not v}}{{#if (and (or v 1) (not v))}}y{{/if}}',
    '{{#each (range v 3)}}{{this}}{{/each}}{{#each (range 1 v v)}}{{this}},{{/each}}',
    '{{length v}}{{#each (range 1 (length v))}}.{{/each}}',
  ];
  const values: Array<[string, unknown]> = [
    ['undefined', undefined],
    ['null', null],
    ['an empty object', {}],
    ['a nested object', { a: { b: [1, 2] } }],
    ['a list', [1, 'two', { three: 3 }]],
    ['an empty string', ''],
    ['a huge number', 1e308],
    ['a huge negative number', -1e308],
    ['MAX_VALUE', Number.MAX_VALUE],
    ['a tiny number', Number.MIN_VALUE],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['an invalid date string', '2024-13-45'],
    ['a non-date string', 'not a date'],
    ['a date beyond the Date range (ms)', 8.64e15 + 1],
    ['the last valid Date (ms)', 8.64e15],
    ['the first valid Date (ms)', -8.64e15],
    ['true', true],
    ['false', false],
    ['markup', '<script>alert(1)</script>'],
    ['a long string', 'x'.repeat(10_000)],
    ['emoji and RTL', '👩‍💻 مرحبا'],
    ['Handlebars', '{{evil}}'],
  ];
  it.each(values)('%s', (_what, v) => {
    const fns = templateFunctions(createHandlebarsEnv());
    for (const source of calls) {
      let out: unknown;
      expect(() => {
        out = fns.text(source)({ v });
      }).not.toThrow();
      expect(typeof out).toBe('string');
      expect(() => fns.markup(source)({ v })).not.toThrow();
    }
  });

  it('specific hostile outcomes', () => {
    expect(text('{{date v format="iso"}}', { v: 'not a date' })).toBe('not a date');
    expect(text('{{date v format="long"}}', { v: 8.64e15 + 1 })).toBe(String(8.64e15 + 1));
    expect(text('{{add v 1}}', { v: 'abc' })).toBe('NaN');
    expect(text('{{number v}}', { v: { a: 1 } })).toBe('[object Object]');
    expect(text('{{number v style="currency"}}', { v: 1234.5 })).toBe('1234.5'); // no currency: plain number
    expect(text('{{upper v}}', { v: ['a', 'b'] })).toBe('A,B');
    expect(text('{{number v}}', { v: 1e21 })).toBe('1,000,000,000,000,000,000,000');
  });

  it('{{truncate v}} without a length does not throw', () => {
    expect(text('{{truncate v}}', { v: 'abcdef' })).toBe('abcdef');
  });
  it('{{date}} without a value does not throw', () => {
    expect(() => text('{{date}}', {})).not.toThrow();
  });
});

describe('logic helpers', () => {
  it('arithmetic: sub mul div mod min max', () => {
    expect(text('{{sub 10 @index}}', {}, { index: 3 })).toBe('7');
    expect(text('{{mul n 1.5}}', { n: '4' })).toBe('6');
    expect(text('{{div 7 2}}|{{mod 7 3}}|{{mod -7 3}}', {})).toBe('3.5|1|-1');
    expect(text('{{min 4 a 9}}|{{max 4 a 9}}', { a: -2 })).toBe('-2|9');
  });

  it('div and mod by zero, and arithmetic on non-numbers, give an empty string (never NaN or Infinity)', () => {
    expect(text('[{{div 1 0}}][{{mod 5 0}}][{{div 0 0}}]', {})).toBe('[][][]');
    expect(text('[{{sub v 1}}][{{mul v 2}}][{{min v 1}}][{{max}}][{{abs v}}][{{round v}}]', { v: 'abc' })).toBe('[][][][][][]');
    expect(text('[{{mul v v}}]', { v: 1e308 })).toBe('[]'); // overflow
    expect(text('[{{sub v 1}}]', { v: { valueOf: () => 5 } })).toBe('[]'); // objects are not numbers
  });

  it('round (with decimals), floor, ceil, abs', () => {
    expect(text('{{round 2.5}}|{{round 2.345 2}}|{{round 1234.5 -3}}', {})).toBe('3|2.35|1235');
    expect(text('{{floor -1.5}}|{{ceil 1.2}}|{{abs -3}}', {})).toBe('-2|2|3');
  });

  it('comparisons: numbers numerically (numeric strings too), other strings as text, anything else false', () => {
    expect(text('{{gt 10 9}} {{gt "10" "9"}} {{lt 2 10}} {{gte 3 3}} {{lte 4 3}}', {})).toBe('true true true true false');
    expect(text('{{lt "apple" "banana"}} {{gt "b" "a"}}', {})).toBe('true true');
    expect(text('{{gt v 1}} {{lt v 1}} {{gte v v}}', { v: { a: 1 } })).toBe('false false false');
    expect(text('{{ne 1 2}} {{ne "a" "a"}}', {})).toBe('true false');
  });

  it('and / or are variadic, not negates; empty lists are false as in {{#if}}', () => {
    expect(text('{{and 1 "x" true}} {{and 1 0 true}} {{and}}', {})).toBe('true false false');
    expect(text('{{or 0 "" false}} {{or 0 "" 1}} {{or}}', {})).toBe('false true false');
    expect(text('{{not v}} {{not ""}} {{not "x"}}', { v: [] })).toBe('true true false');
    expect(text('{{#if (and (gt n 5) (not off))}}big{{else}}small{{/if}}', { n: 9, off: false })).toBe('big');
  });

  it('range: inclusive, counts up or down, optional step', () => {
    expect(text('{{#each (range 10 1)}}{{this}} {{/each}}', {})).toBe('10 9 8 7 6 5 4 3 2 1 ');
    expect(text('{{#each (range 1 3)}}{{this}}{{#unless @last}},{{/unless}}{{/each}}', {})).toBe('1,2,3');
    expect(text('{{#each (range 0 10 5)}}{{this}};{{/each}}', {})).toBe('0;5;10;');
    expect(text('{{#each (range 10 0 -4)}}{{this}};{{/each}}', {})).toBe('10;6;2;'); // the step's sign follows the direction
    expect(text('{{#each (range 0 0.3 0.1)}}{{this}};{{/each}}', {})).toBe('0;0.1;0.2;0.3;'); // no float drift
    expect(text('{{#each (range 5 5)}}{{this}}{{/each}}', {})).toBe('5');
  });

  it('range: a bad bound or step gives nothing; at most 1000 numbers', () => {
    expect(text('[{{#each (range "a" 3)}}{{this}}{{/each}}]', {})).toBe('[]');
    expect(text('[{{#each (range 1 3 0)}}{{this}}{{/each}}]', {})).toBe('[]');
    expect(text('{{length (range 1 1000000)}}', {})).toBe('1000');
    expect(text('{{length (range 0 1 s)}}', { s: 1e-300 })).toBe('1000');
    expect(text('{{length (range a b)}}', { a: -1e308, b: 1e308 })).toBe('1000');
  });

  it('length: list items, string graphemes, object keys, 0 otherwise', () => {
    expect(text('{{length v}}', { v: [1, 2, 3] })).toBe('3');
    expect(text('{{length v}}', { v: 'e\u0301👩‍💻🇫🇷ab' })).toBe('5');
    expect(text('{{length v}}', { v: { a: 1, b: 2 } })).toBe('2');
    expect(text('{{length v}}|{{length}}', { v: 42 })).toBe('0|0');
  });
});
