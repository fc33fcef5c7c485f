import * as fs from 'node:fs';
import * as path from 'node:path';
import { MontageError } from '../../src/common/errors';
import { LottieRepository } from '../../src/repositories/lottie.repository';
import sharp from 'sharp';
import { brightPixels, frameAt, near, pixel, probe, ssimPerFrame, type Frame } from '../helpers/media';
import { renderContext } from '../helpers/render-context';

type Ctx = Awaited<ReturnType<typeof renderContext>>;
let ctx: Ctx;
beforeAll(async () => {
  ctx = await renderContext();
});
afterAll(() => ctx.close());

const RED: [number, number, number] = [255, 0, 0];
const BLUE: [number, number, number] = [0, 0, 255];
const req = { project: 't', movie: 'lottie', params: {}, profile: { format: 'mp4' as const, crf: 12 } };

/** The centre of the red run on row y between x0 and x1, or undefined where there is none. */
function redCentre(frame: Frame, y: number, x0: number, x1: number): number | undefined {
  const xs: number[] = [];
  for (let x = x0; x < x1; x++) if (near(pixel(frame, x, y), RED, 60)) xs.push(x);
  return xs.length ? (xs[0] + xs[xs.length - 1] + 1) / 2 : undefined;
}

describe('lottie layers', () => {
  // square.json: a 20×20 red square whose centre goes from x 20 to 80 of its 100×100
  // composition over frames 0..30 (30 fps), at y 50. Layer 1 at (100, 40) plays once and
  // holds; layer 2 at (200, 40) loops at double speed (a pass every 15 movie frames).
  it('the square moves as the animation says, holds at the end, loops, and the layer below shows around it', async () => {
    const out = ctx.out('lottie.mp4');
    await ctx.renders.render(req, out);
    expect((await probe(out)).video).toMatchObject({ width: 320, height: 180, nb_read_frames: '60' });

    const at = async (n: number) => {
      const f = await frameAt(out, n, 320, 180);
      return { once: redCentre(f, 90, 100, 200), looped: redCentre(f, 90, 200, 300), frame: f };
    };
    const f0 = await at(0);
    const f15 = await at(15);
    const f29 = await at(29);
    const f50 = await at(50);
    // Once: x = 100 + 20 + 2 × frame, then frame 29 held.
    expect(f0.once).toBeCloseTo(120, -0.5);
    expect(f15.once).toBeCloseTo(150, -0.5);
    expect(f29.once).toBeCloseTo(178, -0.5);
    expect(f50.once).toBeCloseTo(178, -0.5);
    // Looped at speed 2: animation frame (2n mod 30), so x = 200 + 20 + 2 × that.
    expect(f0.looped).toBeCloseTo(220, -0.5);
    expect((await at(5)).looped).toBeCloseTo(240, -0.5);
    expect(f15.looped).toBeCloseTo(220, -0.5);
    expect((await at(22)).looped).toBeCloseTo(248, -0.5);
    expect(f50.looped).toBeCloseTo(240, -0.5);

    // Transparent around the square: the blue background shows inside both boxes.
    for (const f of [f0.frame, f29.frame]) {
      expect(near(pixel(f, 105, 45), BLUE)).toBe(true);
      expect(near(pixel(f, 150, 130), BLUE)).toBe(true);
      expect(near(pixel(f, 290, 50), BLUE)).toBe(true);
    }
  });

  it('takes the looks of any layer: a mask over the left half of its box hides the square once it has moved right', async () => {
    const out = ctx.out('lottie-look.mp4');
    await ctx.renders.render({ ...req, movie: 'lottie-look' }, out);
    expect(redCentre(await frameAt(out, 0, 320, 180), 90, 100, 200)).toBeCloseTo(120, -0.5);
    const late = await frameAt(out, 29, 320, 180);
    expect(redCentre(late, 90, 100, 200)).toBeUndefined();
    expect(near(pixel(late, 178, 90), BLUE)).toBe(true);
  });

  it('frames [20, 45) rendered alone are the same frames as in the whole movie', async () => {
    const whole = ctx.out('lottie-whole.mp4');
    const part = ctx.out('lottie-part.mp4');
    await ctx.renders.render(req, whole);
    await ctx.renders.render({ ...req, range: { from: 20, to: 45 } }, part);
    expect((await probe(part)).video?.nb_read_frames).toBe('25');
    const ssim = await ssimPerFrame(whole, part, 20, 25);
    expect(ssim).toHaveLength(25);
    expect(Math.min(...ssim)).toBeGreaterThanOrEqual(0.99);
  });

  it('the clip is rendered once: a second render reuses it', async () => {
    const own = await renderContext();
    try {
      const dir = path.join(own.dataDir, 'cache', 'rasters');
      const clips = () => fs.readdirSync(dir).filter((f) => f.endsWith('.mov')).map((f) => [f, fs.statSync(path.join(dir, f)).ino]); // a clip rendered again is a new file (renamed into place); a hit only touches it
      await own.renders.render(req, own.out('lottie-1.mp4'));
      const first = clips();
      expect(first).toHaveLength(2); // one per layer: played once, and one looped pass
      await own.renders.render(req, own.out('lottie-2.mp4'));
      expect(clips()).toEqual(first);
    } finally {
      await own.close();
    }
  });

  it.each([
    ['not-lottie.json', /not a Lottie animation/],
    ['deep.json', /nests deeper than 128 levels/],
    ['huge.json', /size must be between 1 and 16384/],
    ['endless.json', /may last at most 3600 s/],
  ])('a bad Lottie file (%s) is a 400 at its src line', async (file, message) => {
    const err = await ctx.renders
      .render({ project: 't', movie: 'lottie-bad', params: { file }, profile: { format: 'mp4' } }, ctx.out('bad.mp4'))
      .then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(MontageError);
    expect((err as MontageError).kind).toBe('bad_input');
    expect((err as MontageError).details[0]).toEqual({ field: 't/lottie-bad/movie.yaml:7', message: expect.stringMatching(message) });
  });

  it('an image kept beside the JSON and text in a font shipped with it are drawn; a missing font is a 400', async () => {
    // A template made here: the font is the system's DejaVu Sans, copied in (no font in the repository).
    const root = fs.mkdtempSync(path.join(ctx.dataDir, 'tpl-'));
    const dir = path.join(root, 'p', 'assets');
    fs.mkdirSync(path.join(dir, 'anim', 'images'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'anim', 'fonts'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'anim', 'images', 'img_0.png'), await sharp({ create: { width: 40, height: 40, channels: 4, background: '#00ff00' } }).png().toBuffer());
    fs.copyFileSync('/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', path.join(dir, 'anim', 'fonts', 'DejaVuSans.ttf'));
    const ks = (x: number, y: number, ax = 0, ay = 0) => ({ o: { a: 0, k: 100 }, r: { a: 0, k: 0 }, p: { a: 0, k: [x, y, 0] }, a: { a: 0, k: [ax, ay, 0] }, s: { a: 0, k: [100, 100, 100] } });
    const anim = (fName: string) => ({
      v: '5.7.4', fr: 30, ip: 0, op: 30, w: 200, h: 100,
      assets: [{ id: 'image_0', w: 40, h: 40, u: 'images/', p: 'img_0.png', e: 0 }],
      fonts: { list: [{ fName, fFamily: 'DejaVu Sans', fStyle: 'Book', ascent: 75 }] },
      layers: [
        { ty: 2, ind: 1, refId: 'image_0', ip: 0, op: 30, st: 0, ks: ks(50, 50, 20, 20) },
        { ty: 5, ind: 2, ip: 0, op: 30, st: 0, ks: ks(110, 65), t: { d: { k: [{ s: { s: 40, f: fName, t: 'Hi', j: 0, tr: 0, lh: 48, ls: 0, fc: [1, 1, 1] }, t: 0 }] }, p: {}, m: { g: 1, a: { a: 0, k: [0, 0] } }, a: [] } },
      ],
    });
    fs.writeFileSync(path.join(dir, 'anim', 'a.json'), JSON.stringify(anim('DejaVuSans')));
    fs.writeFileSync(path.join(dir, 'anim', 'b.json'), JSON.stringify(anim('Missing')));
    fs.writeFileSync(
      path.join(dir, 'movie.yaml'),
      ['canvas: { width: 320, height: 180, fps: 30, background: "#0000ff" }', 'duration: 0.5', 'variables:', '  file: { type: string, default: anim/a.json }', 'scenes:', '  - layers: [{ type: lottie, src: "{{file}}" }]', ''].join('\n'),
    );
    const own = await renderContext({ templatesDir: root });
    try {
      const out = own.out('assets.mp4');
      await own.renders.render({ project: 'p', movie: 'assets', params: {}, profile: { format: 'mp4', crf: 12 } }, out);
      const f = await frameAt(out, 5, 320, 180);
      expect(near(pixel(f, 50, 50), [0, 255, 0])).toBe(true); // the image: 40×40 around (50, 50)
      expect(near(pixel(f, 25, 50), BLUE)).toBe(true);
      expect(brightPixels(f, 105, 25, 95, 50)).toBeGreaterThan(100); // "Hi", white, from x 110
      expect(brightPixels(f, 0, 110, 320, 70)).toBe(0);

      const err = await own.renders.render({ project: 'p', movie: 'assets', params: { file: 'anim/b.json' }, profile: { format: 'mp4' } }, own.out('b.mp4')).then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ kind: 'bad_input', details: [{ field: 'p/assets/movie.yaml:6', message: expect.stringMatching(/uses the font "Missing": ship Missing.ttf or .otf/) }] });
    } finally {
      await own.close();
    }
  });

  describe('the renderer process', () => {
    const job = (src: string) => ({ src, assets: {}, width: 64, height: 64, fps: 30, frames: [0, 1, 2], field: 't/x/movie.yaml:3' });

    it('an animation Skottie cannot build (groups nested 5,000 deep) is a 400, not a crash', async () => {
      const square = JSON.parse(fs.readFileSync(path.join(ctx.config.templatesDir, 't', 'lottie', 'square.json'), 'utf8'));
      // Written as text: JSON.stringify itself would overflow the stack.
      const group = '{"ty":"gr","it":['.repeat(5000) + JSON.stringify(square.layers[0].shapes[0]) + ']}'.repeat(5000);
      square.layers[0].shapes = ['GROUP'];
      const src = path.join(ctx.dataDir, 'deep-groups.json');
      fs.writeFileSync(src, JSON.stringify(square).replace('"GROUP"', group));
      const err = await new LottieRepository(ctx.config).renderClip(job(src), path.join(ctx.dataDir, 'deep.mov')).then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ kind: 'bad_input', details: [{ field: 't/x/movie.yaml:3', message: expect.stringMatching(/^Skottie failed to build this animation/) }] });
    });

    it('an encoder that fails is reported as the encoder’s failure (a 500), not the animation’s', async () => {
      const src = path.join(ctx.config.templatesDir, 't', 'lottie', 'square.json');
      const failing = new LottieRepository({ ...ctx.config, ffmpegPath: '/bin/false' });
      const err = await failing.renderClip({ ...job(src), frames: Array(300).fill(0) }, path.join(ctx.dataDir, 'x.mov')).then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ kind: 'render_failed', message: 'the Lottie clip could not be encoded' });
    });

    it('a render past its time limit is killed and reported at the layer', async () => {
      const src = path.join(ctx.config.templatesDir, 't', 'lottie', 'square.json');
      const err = await new LottieRepository(ctx.config).renderClip(job(src), path.join(ctx.dataDir, 'slow.mov'), 1).then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ kind: 'bad_input', details: [{ field: 't/x/movie.yaml:3', message: 'the Lottie animation takes too long to render' }] });
    });
  });
});
