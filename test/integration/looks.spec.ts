import { MontageError } from '../../src/common/errors';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { ease } from '../../src/compiler/easing';
import { renderContext } from '../helpers/render-context';

/**
 * The looks (keyframes, rotation, mask, blur, shadow, colour filters, blend modes, shapes,
 * slides) in decoded pixels of tiny renders: test/fixtures/looks/looks/<movie>/movie.yaml,
 * 160×120 at 10 fps, encoded losslessly (x264 crf 0) so a pixel is what the graph made.
 */
const W = 160;
const H = 120;
type RGB = [number, number, number];

type Ctx = Awaited<ReturnType<typeof renderContext>>;
let ctx: Ctx;
beforeAll(async () => {
  ctx = await renderContext({ templatesDir: path.join(__dirname, '..', 'fixtures', 'looks') });
});
afterAll(() => ctx.close());

/** Every frame of a render, as RGB read with BT.709 (the matrix the graph writes). */
class Frames {
  constructor(private readonly data: Buffer) {}
  get count(): number {
    return this.data.length / (W * H * 3);
  }
  at(n: number, x: number, y: number): RGB {
    const i = (n * W * H + y * W + x) * 3;
    return [this.data[i], this.data[i + 1], this.data[i + 2]];
  }
  frame(n: number): Buffer {
    return this.data.subarray(n * W * H * 3, (n + 1) * W * H * 3);
  }
  /** x of the first and last pixel on row y (of frame n) that `test` accepts, or undefined. */
  run(n: number, y: number, test: (c: RGB) => boolean): [number, number] | undefined {
    const xs = Array.from({ length: W }, (_, x) => x).filter((x) => test(this.at(n, x, y)));
    return xs.length ? [xs[0], xs[xs.length - 1]] : undefined;
  }
}

async function render(movie: string, extra: { range?: { from: number; to: number } } = {}): Promise<Frames> {
  const out = ctx.out(`${movie}-${extra.range ? `${extra.range.from}-${extra.range.to}` : 'all'}.mp4`);
  await ctx.renders.render({ project: 'looks', movie, params: {}, profile: { format: 'mp4', crf: 0, videoOnly: true }, ...extra }, out);
  const { stdout } = await promisify(execFile)(
    'ffmpeg',
    ['-v', 'error', '-i', out, '-vf', 'scale=in_color_matrix=bt709:in_range=tv,format=rgb24', '-f', 'rawvideo', '-'],
    { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
  );
  return new Frames(stdout);
}

const white = (c: RGB) => c.every((v) => v > 200);
/** Within `tolerance` on every channel. */
function expectNear(actual: RGB, expected: RGB, tolerance = 8): void {
  const ok = actual.every((v, i) => Math.abs(v - expected[i]) <= tolerance);
  if (!ok) throw new Error(`expected ${JSON.stringify(actual)} to be within ${tolerance} of ${JSON.stringify(expected)}`);
}

describe('keyframes', () => {
  let f: Frames;
  beforeAll(async () => {
    f = await render('keyframes');
  });

  it('x keyframes: the square is at the keyframe places at their times, holds after, and follows the CSS ease between', () => {
    expect(f.count).toBe(15);
    const left = (n: number) => f.run(n, 50, white)![0];
    // ±1 px: overlay puts a yuv420 picture on even columns
    expect(Math.abs(left(0) - 20)).toBeLessThanOrEqual(1);
    expect(Math.abs(left(10) - 120)).toBeLessThanOrEqual(1);
    expect(Math.abs(left(14) - 120)).toBeLessThanOrEqual(1);
    expect(f.run(10, 50, white)![1] - left(10)).toBe(19); // still 20 px wide
    // Halfway in time, CSS's ease is 80 % of the way (linear would be at 70).
    for (const n of [3, 5, 7]) expect(Math.abs(left(n) - (20 + 100 * ease('ease', n / 10)))).toBeLessThanOrEqual(1.5);
    expect(left(5)).toBeGreaterThanOrEqual(99);
  });

  it('opacity keyframes: blue over red by the keyframed alpha', () => {
    expectNear(f.at(0, 80, 15), [255, 0, 0]);
    expectNear(f.at(5, 80, 15), [128, 0, 128]);
    expectNear(f.at(10, 80, 15), [0, 0, 255]);
    expectNear(f.at(14, 80, 15), [0, 0, 255]);
  });

  it('an easeIn fade is a quarter in at half time, a linear one half', () => {
    const linear = f.at(5, 40, 100)[0];
    const eased = f.at(5, 120, 100)[0];
    expect(Math.abs(linear - 128)).toBeLessThanOrEqual(6);
    expect(Math.abs(eased - 64)).toBeLessThanOrEqual(6);
    expectNear(f.at(10, 120, 100), [255, 255, 255], 3);
  });
});

it('rotation 90 turns a 40×10 bar into a 10×40 one around the same centre', async () => {
  const f = await render('rotation');
  let [x0, x1, y0, y1] = [W, -1, H, -1];
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      if (f.at(0, x, y)[0] > 128) [x0, x1, y0, y1] = [Math.min(x0, x), Math.max(x1, x), Math.min(y0, y), Math.max(y1, y)];
    }
  }
  expect(x1 - x0 + 1).toBeGreaterThanOrEqual(9);
  expect(x1 - x0 + 1).toBeLessThanOrEqual(11);
  expect(y1 - y0 + 1).toBeGreaterThanOrEqual(39);
  expect(y1 - y0 + 1).toBeLessThanOrEqual(41);
  expect(Math.abs((x0 + x1 + 1) / 2 - 80)).toBeLessThanOrEqual(1);
  expect(Math.abs((y0 + y1 + 1) / 2 - 60)).toBeLessThanOrEqual(1);
});

it('an ellipse mask leaves the corners of a solid transparent and its middle as it was', async () => {
  const f = await render('mask');
  const BLUE: RGB = [0, 0, 255];
  const GREEN: RGB = [0, 255, 0];
  for (const [x, y] of [[41, 31], [118, 31], [41, 88], [118, 88]]) expectNear(f.at(0, x, y), BLUE);
  for (const [x, y] of [[80, 60], [42, 60], [117, 60], [80, 32], [80, 87]]) expectNear(f.at(0, x, y), GREEN, 12);
});

describe('a mask from an image', () => {
  it("the image's alpha, fitted to the mask box, decides what shows; a box past the layer's edges is clipped", async () => {
    const f = await render('mask-image');
    const BLUE: RGB = [0, 0, 255];
    const GREEN: RGB = [0, 255, 0];
    for (const y of [40, 90]) {
      // The left half (x 20..49) shows, the right half (50..79) is the background.
      expectNear(f.at(0, 22, y), GREEN, 12);
      expectNear(f.at(0, 46, y), GREEN, 12);
      expectNear(f.at(0, 54, y), BLUE, 12);
      expectNear(f.at(0, 77, y), BLUE, 12);
    }
  });

  it('a mask without a box covers the whole layer, its margins included (a text background padding on every side)', async () => {
    const f = await render('mask-padded');
    // The background box starts 16 px left of and above the text at (50, 40).
    expectNear(f.at(0, 38, 46), [255, 0, 0], 16);
    expectNear(f.at(0, 55, 28), [255, 0, 0], 16);
    expectNear(f.at(0, 20, 46), [0, 0, 255], 16); // beyond the padding: the canvas
  });

  it('a mask with no area inside its layer is bad input naming the layer, not a render failure', async () => {
    const err = await render('mask-outside').then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(MontageError);
    expect((err as MontageError).kind).toBe('bad_input');
    expect((err as MontageError).details[0]).toEqual({ field: 's0.l0', message: 'the mask has no area' });
  });

  it('a hostile mask box, a million pixels each way, is refused at load with its line', async () => {
    const err = await render('mask-huge').then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(MontageError);
    expect((err as MontageError).kind).toBe('bad_input');
    expect((err as MontageError).details[0]).toEqual({ field: 'looks/mask-huge/movie.yaml:7', message: expect.stringMatching(/mask\.width: must be ≤ 8192 pixels/) });
  });
});

describe('blur and shadow', () => {
  let f: Frames;
  beforeAll(async () => {
    f = await render('blur-shadow');
  });

  it('a blur softens the edge: grey on both sides of where it was, the middle still white', () => {
    // The square spans x 16..55 over black; its left edge at x 16.
    const outside = f.at(0, 14, 60)[0];
    const inside = f.at(0, 17, 60)[0];
    expect(outside).toBeGreaterThan(20);
    expect(inside).toBeLessThan(235);
    expect(inside).toBeGreaterThan(outside);
    expect(f.at(0, 8, 60)[0]).toBeLessThan(8); // two sigmas away: black
    expectNear(f.at(0, 36, 60), [255, 255, 255], 4);
  });

  it('keyframed blur blurs down as much as across (gblur takes both sigmas by command)', () => {
    // A white 20×20 at (20, 90), blurred from 0.1 s on; the range test checks the frames are a whole render's.
    for (const d of [1, 2, 3]) {
      const across = f.at(2, 20 - d, 100)[0];
      const down = f.at(2, 30, 90 - d)[0];
      expect(across).toBeGreaterThan(4);
      expect(Math.abs(across - down)).toBeLessThanOrEqual(4);
    }
    expect(f.at(0, 18, 100)[0]).toBeLessThan(8); // not yet blurred
  });

  it('a drop shadow darkens the pixels offset by (x, y) beyond the layer, not those before it', () => {
    // The square spans (90..129, 30..69); its shadow (100..139, 40..79).
    expectNear(f.at(0, 135, 75), [0, 0, 0], 4); // beyond the square, inside the shadow
    expectNear(f.at(0, 135, 35), [128, 128, 128], 4); // right of the square, above the shadow
    expectNear(f.at(0, 95, 75), [128, 128, 128], 4); // below the square, left of the shadow
    expectNear(f.at(0, 110, 50), [255, 255, 255], 4); // the square on top of its shadow
  });
});

describe('colour filters and blend modes', () => {
  let f: Frames;
  beforeAll(async () => {
    f = await render('filters');
  });

  it('grayscale makes red grey (its luma); a tint gives grey its colour, by the tint alpha', () => {
    const grey = f.at(0, 20, 30);
    expect(Math.max(...grey) - Math.min(...grey)).toBeLessThanOrEqual(4);
    expect(Math.abs(grey[0] - 54)).toBeLessThanOrEqual(6); // BT.709 luma of red: 0.2126 × 255
    const blue = f.at(0, 60, 30);
    expect(blue[2] - blue[0]).toBeGreaterThan(120);
    expect(blue[2] - blue[1]).toBeGreaterThan(120);
    const red = f.at(0, 100, 30);
    expect(red[0] - red[1]).toBeGreaterThan(150);
    expect(red[0] - red[2]).toBeGreaterThan(150);
    // Half the tint: half the way from grey to the full tint (green and blue: red clips at 255).
    const half = f.at(0, 140, 30);
    expect(Math.abs(half[1] - (128 + red[1]) / 2)).toBeLessThanOrEqual(4);
    expect(Math.abs(half[2] - (128 + red[2]) / 2)).toBeLessThanOrEqual(4);
    expect(half[0]).toBeGreaterThan(200);
  });

  it('multiply of #808080 halves the colour below while the layer shows, and nothing before or after', () => {
    const BG: RGB = [200, 100, 50];
    expectNear(f.at(0, 40, 90), BG, 4);
    expectNear(f.at(4, 40, 90), [100, 50, 25], 6);
    expectNear(f.at(4, 120, 90), BG, 4); // beside the layer
    expectNear(f.at(7, 40, 90), BG, 4);
  });

  it('the frames before a blended layer are untouched: a range that ends before it is the same frames', async () => {
    // The layer starts at frame 3; the base under it must not go through RGB before then.
    const part = await render('filters', { range: { from: 0, to: 3 } });
    for (let n = 0; n < 3; n++) expect(part.frame(n).equals(f.frame(n))).toBe(true);
  });
});

describe('shape layers', () => {
  let f: Frames;
  beforeAll(async () => {
    f = await render('shapes');
  });

  it('a rounded rectangle: its corner transparent, the stroke on the edge, the fill inside', () => {
    // 60×40 at (20, 10), stroke 4 centred on the outline: drawn from (18, 8) to (81, 51).
    expectNear(f.at(0, 19, 9), [0, 0, 0]);
    expectNear(f.at(0, 50, 9), [255, 0, 0], 12); // (row 10 takes some of the fill's chroma: 4:2:0)
    expectNear(f.at(0, 20, 30), [255, 0, 0], 12);
    expectNear(f.at(0, 50, 30), [0, 255, 0], 12);
  });

  it("a line's pixels lie on its segment, and it reaches both ends", () => {
    // From (90, 10) to (150, 70): the diagonal x − y = 80.
    let lit = 0;
    for (let y = 0; y < 85; y++) {
      for (let x = 85; x < W; x++) {
        if (f.at(0, x, y)[0] < 128) continue;
        lit++;
        expect(Math.abs(x - y - 80) / Math.SQRT2).toBeLessThanOrEqual(3.5);
      }
    }
    expect(lit).toBeGreaterThan(60 * Math.SQRT2 * 3);
    expect(f.at(0, 91, 11)[0]).toBeGreaterThan(200);
    expect(f.at(0, 149, 69)[0]).toBeGreaterThan(200);
    expect(f.at(0, 120, 40)[0]).toBeGreaterThan(200);
  });

  it('a linear gradient fill goes from its first colour to its last, left to right', () => {
    expectNear(f.at(0, 11, 100), [255, 0, 0], 12);
    expectNear(f.at(0, 148, 100), [0, 0, 255], 12);
    const mid = f.at(0, 80, 100);
    expect(Math.abs(mid[0] - mid[2])).toBeLessThanOrEqual(20);
    expect(mid[0]).toBeGreaterThan(60);
  });
});

it('sliding in `left`, a layer starts right of its place and travels left to it', async () => {
  const f = await render('slide');
  const left = (n: number) => f.run(n, 60, white)![0];
  expect(Math.abs(left(0) - 110)).toBeLessThanOrEqual(1);
  expect(Math.abs(left(5) - 85)).toBeLessThanOrEqual(1);
  expect(Math.abs(left(10) - 60)).toBeLessThanOrEqual(1);
  expect(Math.abs(left(11) - 60)).toBeLessThanOrEqual(1);
});

it('a frame range rendered alone is the same frames as the whole render (keyframes, blur, rotation, scale, blend, slide)', async () => {
  const whole = await render('range');
  expect(whole.count).toBe(16);
  // The moving layer changes on every frame of these ranges.
  for (const range of [{ from: 0, to: 5 }, { from: 5, to: 12 }, { from: 12, to: 16 }]) {
    const part = await render('range', { range });
    expect(part.count).toBe(range.to - range.from);
    for (let n = range.from; n < range.to; n++) {
      const same = part.frame(n - range.from).equals(whole.frame(n));
      if (!same) throw new Error(`frame ${n} of the range [${range.from}, ${range.to}) differs from the whole render's`);
    }
  }
  // and it moved: the first and last frames differ
  expect(whole.frame(3).equals(whole.frame(12))).toBe(false);
});
