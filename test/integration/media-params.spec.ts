import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import sharp from 'sharp';
import { MontageError } from '../../src/common/errors';
import { meanVolume, near } from '../helpers/media';
import { FIXTURE_TEMPLATES, renderContext } from '../helpers/render-context';

// A real HTTP server on loopback stands in for the internet: images, clips, sound, and the
// things that go wrong with URLs people paste.
let server: http.Server;
let base: string;
const hits: Record<string, number> = {};
const media = path.join(FIXTURE_TEMPLATES, 't', 'media');

beforeAll(async () => {
  const red = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#ff0000' } }).png().toBuffer();
  server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    hits[url] = (hits[url] ?? 0) + 1;
    if (url === '/red.png') return res.writeHead(200, { 'content-type': 'image/png' }).end(red);
    if (url === '/clip.mp4') return res.writeHead(200, { 'content-type': 'video/mp4' }).end(fs.readFileSync(path.join(media, 'clip.mp4')));
    if (url === '/tone.m4a') return res.writeHead(200, { 'content-type': 'audio/mp4' }).end(fs.readFileSync(path.join(media, 'tone.m4a')));
    if (url === '/page.html') return res.writeHead(200, { 'content-type': 'text/html' }).end('<html>not an image</html>');
    if (url === '/big.png') return res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.alloc(300_000));
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

async function pixelOf(file: string, x: number, y: number): Promise<[number, number, number]> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const i = (y * info.width + x) * info.channels;
  return [data[i], data[i + 1], data[i + 2]];
}

describe('media params from URLs (private addresses allowed, as configured for an intranet)', () => {
  let ctx: Awaited<ReturnType<typeof renderContext>>;
  beforeAll(async () => {
    ctx = await renderContext({ allowPrivate: true, maxBytes: 200_000 });
  });
  afterAll(() => ctx.close());

  it('downloads an image, a clip and a track, once, and renders them', async () => {
    const params = { photo: `${base}/red.png`, clip: `${base}/clip.mp4`, music: `${base}/tone.m4a` };
    const out = ctx.out('media.mp4');
    await ctx.renders.render({ project: 't', movie: 'media', params, profile: { format: 'mp4' } }, out);
    const still = ctx.out('media.png');
    await ctx.renders.render({ project: 't', movie: 'media', params, profile: { format: 'png' }, frame: 45 }, still);

    expect(near(await pixelOf(still, 240, 90), [255, 0, 0])).toBe(true); // the photo fills the right half
    const left = await pixelOf(still, 80, 90);
    expect(left.some((c) => c > 40)).toBe(true); // the looping clip (1 s long) still plays at 1.5 s
    expect(await meanVolume(out, 0.5, 1)).toBeGreaterThan(-30);
    expect(hits['/red.png']).toBe(1);
    expect(hits['/clip.mp4']).toBe(1);
    expect(hits['/tone.m4a']).toBe(1);
  });

  it.each([
    ['a web page', '/page.html', 'unusable_media', /not a valid image/],
    ['a missing file', '/nothing.png', 'unusable_media', /404/],
    ['a file over the size limit', '/big.png', 'too_large', /limit|large|bytes/i],
  ])('%s → %s', async (_label, urlPath, kind, message) => {
    const out = ctx.out('bad.png');
    const err = await ctx.renders
      .render({ project: 't', movie: 'media', params: { photo: `${base}${urlPath}` }, profile: { format: 'png' } }, out)
      .catch((e: MontageError) => e);
    expect(err).toBeInstanceOf(MontageError);
    expect((err as MontageError).kind).toBe(kind);
    expect((err as MontageError).message).toMatch(message);
    expect((err as MontageError).message).toContain(urlPath);
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('media params with the default policy', () => {
  it('refuses URLs that resolve to loopback or private addresses, naming the URL', async () => {
    const ctx = await renderContext();
    try {
      for (const url of [`${base}/red.png`, 'http://localhost:9/x.png', 'http://169.254.169.254/latest/meta-data', 'http://[::1]/x.png']) {
        const err = await ctx.renders
          .render({ project: 't', movie: 'media', params: { photo: url }, profile: { format: 'png' } }, ctx.out('x.png'))
          .catch((e: MontageError) => e);
        expect(err).toBeInstanceOf(MontageError);
        expect((err as MontageError).kind).toBe('unusable_media');
        expect((err as MontageError).message).toMatch(/private|loopback|link-local|not allowed|refused/i);
      }
      expect(hits['/red.png']).toBe(1); // only the allowed download above ever reached the server
    } finally {
      await ctx.close();
    }
  });
});
