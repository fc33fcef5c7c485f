import { jsonPolicyProblems, keyProblem, MAX_JSON_DEPTH, unsafeCharacter } from '../../src/common/json-policy';
import { cappedDetails, describeError } from '../../src/common/http-exception.filter';
import { badInput, MontageError, renderFailed, tooMany, unavailable } from '../../src/common/errors';

describe('jsonPolicyProblems', () => {
  it('accepts what render requests look like', () => {
    expect(jsonPolicyProblems({ movie: 'a', params: { name: 'Ada', slides: [{ image: 'https://x/y.png', caption: 'Hi' }] }, upload: [] })).toEqual([]);
    expect(jsonPolicyProblems(null)).toEqual([]);
    expect(jsonPolicyProblems('text')).toEqual([]);
  });

  it('refuses nesting deeper than the limit, at the first value too deep, without recursion', () => {
    let value: unknown = 'leaf';
    for (let i = 0; i < 100_000; i++) value = [value]; // recursion would overflow long before
    const problems = jsonPolicyProblems({ deep: value });
    expect(problems).toHaveLength(1);
    expect(problems[0].message).toBe(`nested deeper than ${MAX_JSON_DEPTH} levels`);
    expect(problems[0].field.startsWith('deep[0][0]')).toBe(true);
    expect(problems[0].field.length).toBeLessThanOrEqual(121);
  });

  it('allows exactly the limit', () => {
    let ok: unknown = 1;
    for (let i = 0; i < MAX_JSON_DEPTH; i++) ok = { a: ok };
    expect(jsonPolicyProblems(ok)).toEqual([]);
    expect(jsonPolicyProblems({ a: ok })).toHaveLength(1);
  });

  it('names each refused key with its path, and stops after a few', () => {
    const body = { params: { $gt: 1, 'a.b': 2, ok: { $where: 3 } }, list: [{ ['__proto__']: 1 }] };
    expect(jsonPolicyProblems(JSON.parse(JSON.stringify(body)))).toEqual([
      { field: 'params.$gt', message: 'keys may not start with "$"' },
      { field: 'params.a.b', message: 'keys may not contain "."' },
      { field: 'params.ok.$where', message: 'keys may not start with "$"' },
      { field: 'list[0].__proto__', message: '"__proto__" is not allowed as a key' },
    ]);
    expect(jsonPolicyProblems(JSON.parse('{"x":{"__proto__":{"y":1}}}'))).toEqual([{ field: 'x.__proto__', message: '"__proto__" is not allowed as a key' }]);
    const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`$k${i}`, i]));
    expect(jsonPolicyProblems(many)).toHaveLength(5);
  });

  it.each([
    ['$set', 'keys may not start with "$"'],
    ['a.b', 'keys may not contain "."'],
    ['a\u0000', 'keys may not contain control characters'],
    ['tab\there', 'keys may not contain control characters'],
    ['constructor', '"constructor" is not allowed as a key'],
    ['k'.repeat(201), 'keys are at most 200 characters'],
  ])('keyProblem(%j)', (key, message) => {
    expect(keyProblem(key)).toBe(message);
  });

  it.each(['name', 'x-amz-meta-author', 'Ünïcødé', '🎬', 'a$b', 'k'.repeat(200)])('keyProblem(%j) is fine', (key) => {
    expect(keyProblem(key)).toBeUndefined();
  });
});

describe('unsafeCharacter', () => {
  it('allows tabs, line breaks, every plane and the last valid characters', () => {
    expect(unsafeCharacter('a\tb\nc\r\nd 🎬 \uFFFD \u{10FFFF} שלום')).toBeUndefined();
  });
  it.each([
    ['\u0000', 'U+0000 (NUL)'],
    ['\u0008', 'U+0008 (a control character)'],
    ['\u001f', 'U+001F (a control character)'],
    ['\uFFFE', 'U+FFFE (a non-character)'],
    ['\uD83C', 'U+D83C (half of a surrogate pair)'],
    ['\uDFAC', 'U+DFAC (half of a surrogate pair)'],
  ])('names %j', (c, named) => {
    expect(unsafeCharacter(`ok${c}ok`)).toBe(named);
  });
});

describe('error bodies', () => {
  it('keep at most 20 details and count the rest', () => {
    const details = Array.from({ length: 5000 }, (_, i) => ({ field: `p${i}`, message: 'unknown variable' }));
    const capped = cappedDetails(details);
    expect(capped).toHaveLength(21);
    expect(capped[20]).toEqual({ field: '…', message: 'and 4980 more' });
  });

  it('clip long messages and fields', () => {
    const { body } = describeError(badInput('x'.repeat(5000), [{ field: 'f'.repeat(1000), message: 'm'.repeat(1000) }]));
    expect((body.message as string).length).toBeLessThanOrEqual(1001);
    expect((body.details as Array<{ field: string }>)[0].field.length).toBeLessThanOrEqual(301);
  });

  it('send what only the operator should see to the log, with a reference the client can quote', () => {
    const described = describeError(renderFailed('ffmpeg failed (exit 1)', [], { internal: '[h264 @ 0x55d8a662d980] Invalid NAL unit size /tmp/x' }));
    expect(described.status).toBe(500);
    expect(JSON.stringify(described.body)).not.toMatch(/0x55d8|\/tmp/);
    expect(described.body.ref).toMatch(/^[0-9a-f]{8}$/);
    expect(described.log).toMatch(new RegExp(`^\\[ref ${described.body.ref}\\] ffmpeg failed .*Invalid NAL unit size`));
  });

  it('never show an unexpected error or its stack', () => {
    const described = describeError(new Error("EACCES: permission denied, open '/var/lib/montage/outputs/x'"));
    expect(described.body).toMatchObject({ statusCode: 500, message: 'internal error' });
    expect(JSON.stringify(described.body)).not.toContain('/var/lib');
    expect(described.log).toContain('EACCES');
  });

  it('carry Retry-After for 429 and 503', () => {
    expect(describeError(tooMany('slow down', 12.2)).retryAfterSec).toBe(12.2);
    expect(describeError(unavailable('queue away')).status).toBe(503);
    expect(describeError(new MontageError('gone', 'expired')).status).toBe(410);
  });

  it.each([
    [{ type: 'encoding.unsupported', status: 415, encoding: 'x-custom' }, 415, /unsupported Content-Encoding "x-custom"/],
    [{ type: 'charset.unsupported', status: 415, charset: 'latin-9' }, 415, /unsupported charset "latin-9"/],
    [{ type: 'entity.too.large', status: 413, limit: 1024 }, 413, /larger than 1024 bytes/],
    [{ type: 'entity.parse.failed', status: 400 }, 400, /not valid JSON/],
    [{ type: 'request.aborted', status: 400 }, 400, /ended early/],
    [{ type: 'stream.encoding.set', status: 500 }, 400, /could not be read/],
  ])('body-parser %j is said plainly', (error, status, message) => {
    const described = describeError(error);
    expect(described.status).toBe(status);
    expect(described.body.message).toMatch(message);
  });
});
