import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { FIXTURE_TEMPLATES } from '../helpers/render-context';
import { type ApiProc, exitWithin, killGroup, startApiProcess } from '../helpers/processes';

// Hostile requests against a real API process: each class that once got through (a 500, a
// process that died later, a render slot held for minutes, tool output in an error body, an
// address the URL policy called public) gets a clear 4xx naming what is wrong, and nothing is
// stored. The process must still be alive, and stop and start cleanly, afterwards.

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-hostile-'));
let api: ApiProc;
let media: ApiProc;
let server: http.Server;
let base: string;

/** Tool output that must never reach a client: heap addresses, codec log prefixes, paths, stacks. */
const TOOL_OUTPUT = /0x[0-9a-f]{6,}|\[(h264|png|mov,mp4|AVFilterGraph)[^\]]*\]|\/tmp\/|\/work\/|at \S+ \(|Error: /;

/** A PNG whose header is fine and whose pixel data is not. */
async function corruptPng(): Promise<Buffer> {
  const buf = Buffer.from(await sharp({ create: { width: 200, height: 100, channels: 3, background: '#ff0000' } }).png().toBuffer());
  let off = 8;
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    if (buf.toString('ascii', off + 4, off + 8) === 'IDAT') {
      for (let i = off + 18; i < off + 8 + len; i++) buf[i] = (buf[i] * 31 + 7) & 255;
      break;
    }
    off += 12 + len;
  }
  return buf;
}

/** An MP4 that ffprobe reads (the moov is intact) and no decoder can: every sample scrambled. */
function undecodableMp4(): Buffer {
  return scrambled(path.join(FIXTURE_TEMPLATES, 't', 'media', 'clip.mp4'));
}

function scrambled(file: string): Buffer {
  const buf = Buffer.from(fs.readFileSync(file));
  let off = 0;
  while (off < buf.length) {
    const size = buf.readUInt32BE(off);
    if (buf.toString('ascii', off + 4, off + 8) === 'mdat') for (let i = off + 8; i < off + size; i++) buf[i] = (i * 131 + 17) & 255;
    off += size;
  }
  return buf;
}

beforeAll(async () => {
  const red = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#ff0000' } }).png().toBuffer();
  const bad = await corruptPng();
  const spin = undecodableMp4();
  const mute = scrambled(path.join(FIXTURE_TEMPLATES, 't', 'media', 'tone.m4a'));
  server = http.createServer((req, res) => {
    if (req.url === '/red.png') return res.writeHead(200, { 'content-type': 'image/png' }).end(red);
    if (req.url === '/corrupt.png') return res.writeHead(200, { 'content-type': 'image/png' }).end(bad);
    if (req.url?.startsWith('/spin.mp4')) return res.writeHead(200, { 'content-type': 'video/mp4' }).end(spin);
    if (req.url === '/mute.m4a') return res.writeHead(200, { 'content-type': 'audio/mp4' }).end(mute);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // The public-facing default (no private addresses), and one for an intranet whose media server is on loopback.
  [api, media] = await Promise.all([startApiProcess(), startApiProcess({ MEDIA_ALLOW_PRIVATE: '1' })]);
});

afterAll(async () => {
  killGroup(api?.pid);
  killGroup(media?.pid);
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(work, { recursive: true, force: true });
});

async function send(target: ApiProc, body: string | Buffer, headers: Record<string, string> = {}, route = '/v2/render/t') {
  const res = await fetch(`${target.url}${route}`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Api-Key': target.key(), ...headers }, body });
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) as { statusCode: number; message: string; details?: Array<{ field: string; message: string }>; token?: string } };
}

const postJson = (target: ApiProc, body: unknown) => send(target, typeof body === 'string' ? body : JSON.stringify(body));
const tokensStored = (target: ApiProc) => fs.readFileSync(path.join(target.dataDir, 'db', 'tokens.db'), 'utf8').split('\n').filter(Boolean).length;

/** `{"a":{"a":…"x"…}}`, written as text: JSON.stringify itself overflows the stack at these depths. */
function deep(levels: number): string {
  return `${'{"a":'.repeat(levels)}"x"${'}'.repeat(levels)}`;
}

describe('bodies that used to kill the process later, or answer 500', () => {
  it('upload options nested thousands of levels deep are refused before anything is stored, and the process survives its store being rewritten', async () => {
    await postJson(api, { movie: 'colors' }); // the tokens file exists
    const before = tokensStored(api);
    const res = await postJson(api, `{"movie":"colors","upload":[{"type":"s3","target":"bucket","options":${deep(3000)}}]}`);
    expect(res.status).toBe(400);
    expect(res.json.message).toMatch(/nested deeper than 32 levels/);
    expect(res.json.details?.[0].field).toMatch(/^upload\[0\]\.options\.a\.a/);
    expect(tokensStored(api)).toBe(before);

    // A clean stop rewrites (compacts) every datafile: the step that overflowed the stack before.
    process.kill(api.pid, 'SIGTERM');
    expect((await exitWithin(api, 10_000)).code).toBe(0);
    api = await startApiProcess({}, api.dataDir);
    expect((await postJson(api, { movie: 'colors' })).status).toBe(200);
  });

  it.each([
    ['params nested 5,000 deep', `{"movie":"colors","params":{"label":${deep(5000)}}}`, /nested deeper than 32 levels/, `params.label${'.a'.repeat(30)}`], // the value at depth 32
    ['a key starting with $', { movie: 'colors', params: { $where: 'sleep(1000)' } }, /keys may not start with "\$"/, 'params.$where'],
    ['a $ operator inside upload options', { movie: 'colors', upload: [{ type: 's3', target: 'b', options: { acl: { $ne: 1 } } }] }, /keys may not start with "\$"/, 'upload[0].options.acl.$ne'],
    ['a key with a dot', { movie: 'colors', upload: [{ type: 'http', target: 'x', options: { 'a.b': 1 } }] }, /keys may not contain "\."/, 'upload[0].options.a.b'],
    ['__proto__', JSON.parse('{"movie":"colors","params":{"__proto__":{"polluted":true}}}'), /"__proto__" is not allowed/, 'params.__proto__'],
    ['a NUL in a key', { movie: 'colors', params: { 'la\u0000bel': 'x' } }, /control characters/, 'params.la\u0000bel'],
  ])('%s: 400 naming it', async (_what, body, message, field) => {
    const before = tokensStored(api);
    const res = await postJson(api, body);
    expect(res.status).toBe(400);
    expect(res.json.message).toMatch(message);
    expect(res.json.details?.map((d) => d.field)).toContain(field);
    expect(tokensStored(api)).toBe(before);
  });

  it('JSON nested past what the parser itself can take is a 400 too', async () => {
    const res = await send(api, `{"movie":"colors","params":${'['.repeat(120_000)}${']'.repeat(120_000)}}`);
    expect(res.status).toBe(400);
    expect(res.json.message).toMatch(/not valid JSON|nested deeper/);
  });

  it.each([
    ['a NUL', 'a\u0000b', 'U+0000 (NUL)'],
    ['an escape sequence', '\u001b[31mred', 'U+001B (a control character)'],
    ['a form feed (XML forbids it)', 'a\u000cb', 'U+000C (a control character)'],
    ['an unpaired surrogate', 'x\ud800y', 'U+D800 (half of a surrogate pair)'],
  ])('a text param with %s is a 400 naming the param, in text and in SVG', async (_what, value, named) => {
    for (const [movie, param] of [['colors', 'label'], ['badge', 'title']] as const) {
      const res = await postJson(api, { movie, params: { [param]: value } });
      expect(res.status).toBe(400);
      expect(res.json.details).toEqual([{ field: param, message: `contains ${named}, which text cannot hold` }]);
    }
  });

  it('an SVG param with markup, quotes and emoji renders as text, without breaking the SVG', async () => {
    const ink = async (title: string) => {
      const created = await postJson(api, { movie: 'badge', params: { title } });
      expect(created.status).toBe(200);
      const res = await fetch(`${api.url}/v2/get/${created.json.token}.png`);
      expect(res.status).toBe(200);
      const { data, info } = await sharp(Buffer.from(await res.arrayBuffer())).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      let white = 0;
      for (let i = 0; i < data.length; i += 3) if (data[i] > 200 && data[i + 1] > 200 && data[i + 2] > 200) white++;
      return { white, width: info.width };
    };
    const hostile = await ink('<b>&"\'</b> <tspan fill="red">x</tspan>');
    const plain = await ink('b');
    expect(hostile.width).toBe(320);
    // Every character of the markup is drawn as text: far more ink than one letter.
    expect(hostile.white).toBeGreaterThan(plain.white * 5);
  });
});

describe('media that decodes badly', () => {
  it('a PNG whose pixel data is damaged is a 422 naming the URL, without tool output', async () => {
    const created = await postJson(media, { movie: 'media', params: { photo: `${base}/corrupt.png` } });
    expect(created.status).toBe(200);
    const res = await fetch(`${media.url}/v2/get/${created.json.token}.png`);
    expect(res.status).toBe(422);
    const body = (await res.json()) as { message: string };
    expect(body.message).toMatch(/corrupt\.png does not decode as an image/);
    expect(body.message).not.toMatch(TOOL_OUTPUT);
    const progress = (await (await fetch(`${media.url}/v2/progress/${created.json.token}`)).json()) as { status: string; error: string };
    expect(progress).toMatchObject({ status: 'failed' });
    expect(progress.error).not.toMatch(TOOL_OUTPUT);
  });

  it('two MP4s that probe fine and never decode are refused when fetched, in seconds; renders after them are not held up', async () => {
    // Two at once, as many as the process has render slots (MAX_CONCURRENT_RENDERS=2): before, each held one for minutes.
    const created = await Promise.all([1, 2].map((n) => postJson(media, { movie: 'media', params: { photo: `${base}/red.png`, clip: `${base}/spin.mp4?${n}` } })));
    const started = Date.now();
    const responses = await Promise.all(created.map((c) => fetch(`${media.url}/v2/get/${c.json.token}.mp4`)));
    expect(responses.map((r) => r.status)).toEqual([422, 422]);
    expect(Date.now() - started).toBeLessThan(20_000); // MEDIA_CHECK_TIMEOUT_MS is 15 s; it takes well under one here
    for (const res of responses) {
      const body = (await res.json()) as { message: string };
      expect(body.message).toMatch(/spin\.mp4\?\d does not decode as a video/);
      expect(body.message).not.toMatch(TOOL_OUTPUT);
    }
    const next = await postJson(media, { movie: 'colors', params: { label: 'after the bad clips' } });
    expect((await fetch(`${media.url}/v2/render/${next.json.token}.png`)).status).toBe(200);
  });

  it('a sound track with damaged data is refused when fetched', async () => {
    const created = await postJson(media, { movie: 'media', params: { photo: `${base}/red.png`, music: `${base}/mute.m4a` } });
    const res = await fetch(`${media.url}/v2/get/${created.json.token}.mp4`);
    expect(res.status).toBe(422);
    expect(((await res.json()) as { message: string }).message).toMatch(/mute\.m4a does not decode as an? audio/);
  });
});

describe('addresses the URL policy must refuse in every spelling', () => {
  it.each([
    '[::127.0.0.1]',
    '[::7f00:1]',
    '[::a9fe:a9fe]',
    '[::ffff:127.0.0.1]',
    '[::ffff:a9fe:a9fe]',
    '[fec0::1]',
    '[64:ff9b::a00:1]',
    '[64:ff9b::7f00:1]',
    '[64:ff9b:1::a00:1]',
    '[2002:7f00:1::1]',
    '[2001::1]',
    '[fd00::1]',
    '[::1]',
    '0177.0.0.1',
    '2130706433',
    '127.1',
    '0x7f000001',
  ])('http://%s/ is refused as private', async (host) => {
    const created = await postJson(api, { movie: 'media', params: { photo: `http://${host}:${(server.address() as AddressInfo).port}/red.png` } });
    expect(created.status).toBe(200);
    const res = await fetch(`${api.url}/v2/get/${created.json.token}.png`);
    expect(res.status).toBe(422);
    expect(((await res.json()) as { message: string }).message).toMatch(/resolves to a private\/loopback address/);
  });
});

describe('small things that said too much or too little', () => {
  it('/health shows paths only to a key holder', async () => {
    const anonymous = await (await fetch(`${api.url}/health`)).text();
    expect(anonymous).not.toContain(api.dataDir);
    expect(anonymous).not.toContain(FIXTURE_TEMPLATES);
    expect(anonymous).not.toMatch(/"location"|templatesDir/);
    const keyed = await (await fetch(`${api.url}/health`, { headers: { Authorization: `Bearer ${api.key()}` } })).json();
    expect(keyed).toMatchObject({ templatesDir: FIXTURE_TEMPLATES, dataDir: api.dataDir, storage: { location: `local ${api.dataDir}` } });
    const wrongKey = await (await fetch(`${api.url}/health`, { headers: { 'X-Api-Key': 'mk_guess' } })).text();
    expect(wrongKey).not.toContain(api.dataDir);
  });

  it('5,000 unknown params: a small 400 that names the first ones and counts the rest', async () => {
    const params = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`p${i}`, i]));
    const res = await postJson(api, { movie: 'colors', params });
    expect(res.status).toBe(400);
    expect(res.text.length).toBeLessThan(10_000);
    expect(res.json.details).toHaveLength(21);
    expect(res.json.details?.[20]).toEqual({ field: '…', message: 'and 4980 more' });
    expect(res.json.message).toMatch(/p0: unknown variable .*and 4995 more/);
  });

  it('?frame= takes decimal digits only', async () => {
    const created = await postJson(api, { movie: 'colors' });
    for (const frame of ['0x10', '1e1', '+16', '16.0', ' 16', '١٦']) {
      const res = await fetch(`${api.url}/v2/get/${created.json.token}.png?frame=${encodeURIComponent(frame)}`);
      expect([frame, res.status]).toEqual([frame, 400]);
    }
    expect((await fetch(`${api.url}/v2/get/${created.json.token}.png?frame=16`)).status).toBe(200);
    // Signed URLs too (the project is made public here so that no signature is needed).
    const projectFile = path.join(api.dataDir, 'projects', 't.json');
    const project = JSON.parse(fs.readFileSync(projectFile, 'utf8'));
    fs.writeFileSync(projectFile, JSON.stringify({ ...project, public: true }));
    try {
      for (const frame of ['0x10', '1e1', '']) expect((await fetch(`${api.url}/v1/render/t/colors.png?frame=${frame}`)).status).toBe(400);
      expect((await fetch(`${api.url}/v1/render/t/colors.png?frame=16`)).status).toBe(200);
    } finally {
      fs.writeFileSync(projectFile, JSON.stringify(project));
    }
  });

  it('a body in an unknown Content-Encoding or not JSON at all is 415 saying so; gzip is read', async () => {
    const body = JSON.stringify({ movie: 'colors' });
    const unknown = await send(api, body, { 'Content-Encoding': 'x-custom' });
    expect(unknown.status).toBe(415);
    expect(unknown.json.message).toMatch(/unsupported Content-Encoding "x-custom"/);
    const text = await send(api, body, { 'Content-Type': 'text/plain' });
    expect(text.status).toBe(415);
    expect(text.json.message).toMatch(/send the request body as JSON, with Content-Type: application\/json/);
    const gzip = await send(api, gzipSync(body), { 'Content-Encoding': 'gzip' });
    expect(gzip.status).toBe(200);
  });

  it('after all of it the processes still run', () => {
    expect(api.running()).toBe(true);
    expect(media.running()).toBe(true);
  });
});
