import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { buildRenderArgs } from '../../src/compiler/ffmpeg-args';
import { RasterRepository, type TextRasterSpec } from '../../src/repositories/raster.repository';
import { frameAt, ssimPerFrame } from '../helpers/media';
import { renderContext } from '../helpers/render-context';

const HE = 'שלום עולם זוהי פסקה ארוכה בעברית שצריכה לעבור שורה.';
const AR = 'مرحبا بالعالم هذه فقرة طويلة باللغة العربية يجب أن تلتف.';
const EN = 'Hello world, this is a long English paragraph that wraps.';
const base: TextRasterSpec = { text: '', family: 'DejaVu Sans', size: 20, weight: 'normal', style: 'normal', color: '#ffffff', align: 'left', lineHeight: 1.2 };

interface Image {
  width: number;
  height: number;
  channels: number;
  data: Buffer;
}
async function read(file: string): Promise<Image> {
  const { data, info } = await sharp(file).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: info.channels, data };
}
const at = (img: Image, x: number, y: number) => [...img.data.subarray((y * img.width + x) * img.channels, (y * img.width + x + 1) * img.channels)];

/** Lines of ink (runs of rows where `isInk` holds somewhere) and each line's leftmost and rightmost ink column. */
function inkLines(img: Image, isInk: (px: number[]) => boolean) {
  const lines: Array<{ top: number; bottom: number; left: number; right: number }> = [];
  for (let y = 0; y < img.height; y++) {
    let [left, right] = [-1, -1];
    for (let x = 0; x < img.width; x++) {
      if (!isInk(at(img, x, y))) continue;
      if (left < 0) left = x;
      right = x;
    }
    if (left < 0) continue;
    const last = lines[lines.length - 1];
    if (last && y - last.bottom <= 3) Object.assign(last, { bottom: y, left: Math.min(last.left, left), right: Math.max(last.right, right) });
    else lines.push({ top: y, bottom: y, left, right });
  }
  return lines;
}
const opaque = (px: number[]) => px[3] > 128;

let dir: string;
const rasters = new RasterRepository();
const file = (name: string) => path.join(dir, name);
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-text-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('right-to-left text: aligned per line', () => {
  // A raster's top-left is at (dx, dy) of the box; a 200 px box spans raster columns [-dx, -dx + 200).
  const edges = async (text: string, align: TextRasterSpec['align']) => {
    const r = await rasters.text({ ...base, text, align, width: 200 }, file(`${align}-${text.length}.png`));
    const lines = inkLines(await read(r.path), opaque).map((l) => ({ left: l.left + r.dx, right: l.right + 1 + r.dx }));
    expect(lines.length).toBeGreaterThanOrEqual(3); // wrapped
    return lines;
  };

  it('a wrapped Hebrew paragraph aligned right ends every line at the box\'s right edge', async () => {
    const lines = await edges(HE, 'right');
    for (const line of lines) expect(Math.abs(line.right - 200)).toBeLessThanOrEqual(3);
    expect(Math.min(...lines.map((l) => l.left))).toBeGreaterThan(5); // ragged on the left
  });

  it('aligned left, it starts every line at the left edge', async () => {
    for (const line of await edges(HE, 'left')) expect(line.left).toBeLessThanOrEqual(3);
  });

  it('start is right in Hebrew and Arabic, left in English; end is the other side', async () => {
    for (const line of await edges(HE, 'start')) expect(Math.abs(line.right - 200)).toBeLessThanOrEqual(3);
    for (const line of await edges(AR, 'start')) expect(Math.abs(line.right - 200)).toBeLessThanOrEqual(3);
    for (const line of await edges(EN, 'start')) expect(line.left).toBeLessThanOrEqual(3);
    for (const line of await edges(HE, 'end')) expect(line.left).toBeLessThanOrEqual(3);
    for (const line of await edges(EN, 'end')) expect(Math.abs(line.right - 200)).toBeLessThanOrEqual(3);
  });

  it('each paragraph of a mixed text goes on its own start side', async () => {
    const lines = await edges(`Hello world\n${HE}`, 'start');
    expect(lines[0].left).toBeLessThanOrEqual(3);
    for (const line of lines.slice(1)) expect(Math.abs(line.right - 200)).toBeLessThanOrEqual(3);
  });
});

describe('text in a box: height, fit: shrink, verticalAlign', () => {
  const long = 'A fairly long headline that needs to shrink to fit';

  it('shrink: the largest size at which the wrapped text fits both sides of the box', async () => {
    const fitted = await rasters.text({ ...base, text: long, size: 80, width: 200, height: 60, shrink: { minSize: 8 } }, file('fit.png'));
    expect(fitted.text.size).toBeLessThan(80);
    expect(fitted.text.size).toBeGreaterThanOrEqual(10);
    const ink = inkLines(await read(fitted.path), opaque);
    expect(ink[ink.length - 1].bottom + fitted.dy).toBeLessThan(60);
    // one pixel larger no longer fits: the text of that size, unboxed in height, is taller than 60
    const bigger = await rasters.text({ ...base, text: long, size: fitted.text.size + 1, width: 200 }, file('fit-bigger.png'));
    expect(bigger.height + 2 * bigger.dy).toBeGreaterThan(60);
  });

  it('text taller than its box is clipped to it; shorter text sits where verticalAlign says', async () => {
    const clipped = await rasters.text({ ...base, text: long, size: 30, width: 200, height: 40 }, file('clip.png'));
    expect(clipped.height + 2 * clipped.dy).toBe(40);
    const rows = async (verticalAlign: 'top' | 'middle' | 'bottom') => {
      const r = await rasters.text({ ...base, text: 'Hi', width: 200, height: 100, verticalAlign }, file(`v-${verticalAlign}.png`));
      const [line] = inkLines(await read(r.path), opaque);
      return { top: line.top + r.dy, bottom: line.bottom + 1 + r.dy };
    };
    expect((await rows('top')).top).toBeLessThanOrEqual(2);
    const middle = await rows('middle');
    expect(Math.abs((middle.top + middle.bottom) / 2 - 50)).toBeLessThanOrEqual(2);
    expect(Math.abs((await rows('bottom')).bottom - 100)).toBeLessThanOrEqual(2);
  });
});

describe('background boxes', () => {
  const red = (px: number[]) => px[3] > 200 && px[0] > 200 && px[1] < 60;

  it('one box around the text block, padded, under the text', async () => {
    const r = await rasters.text(
      { ...base, text: 'Hi there', align: 'center', width: 300, background: { color: '#ff0000', padding: { v: 6, h: 12 }, radius: 0, perLine: false } },
      file('bg.png'),
    );
    const img = await read(r.path);
    const [box] = inkLines(img, red);
    const [text] = inkLines(img, (px) => px[3] > 200 && px[1] > 200);
    // the box hugs the centred text (not the 300 px width), padding on every side
    expect(box.left + r.dx).toBeGreaterThan(50);
    expect(Math.abs(text.left - box.left - 12)).toBeLessThanOrEqual(3);
    expect(Math.abs(box.right - text.right - 12)).toBeLessThanOrEqual(3);
    expect(text.top - box.top).toBeGreaterThanOrEqual(5);
    expect(r.text.top).toBe(-6); // a layer stacked below follows the box, not the glyphs
  });

  it('perLine: a box per line, each as wide as its line', async () => {
    const r = await rasters.text(
      { ...base, text: 'A much longer first line\nshort', align: 'left', width: 300, background: { color: '#ff0000', padding: { v: 2, h: 6 }, radius: 3, perLine: true } },
      file('bg-lines.png'),
    );
    const img = await read(r.path);
    const boxes = inkLines(img, red);
    expect(boxes).toHaveLength(2);
    expect(boxes[1].right - boxes[1].left).toBeLessThan((boxes[0].right - boxes[0].left) / 2);
  });
});

describe('parts of a text (split)', () => {
  it('each unit is cropped to its ink at its place in the whole paragraph: together they are the whole', async () => {
    const spec = { ...base, text: HE, align: 'right' as const, width: 200 };
    const whole = await rasters.text(spec, file('whole.png'));
    const ranges: Array<[number, number]> = [...HE.matchAll(/\S+/g)].map((m) => [m.index!, m.index! + m[0].length]);
    const parts = await Promise.all(ranges.map((unit, i) => rasters.text(spec, file(`unit${i}.png`), { unit })));
    for (const p of parts) expect(p.width * p.height).toBeLessThan((whole.width * whole.height) / 4);
    const composed = await sharp({ create: { width: whole.width, height: whole.height, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
      .composite(parts.map((p) => ({ input: p.path, left: p.dx - whole.dx, top: p.dy - whole.dy })))
      .png()
      .toFile(file('composed.png'));
    expect(composed.width).toBe(whole.width);
    const [a, b] = [await read(whole.path), await read(file('composed.png'))];
    let differ = 0;
    for (let i = 3; i < a.data.length; i += 4) if (Math.abs(a.data[i] - b.data[i]) > 40) differ++;
    expect(differ).toBeLessThan(20); // antialiased edges where two units touch
  });
});

describe('rendered movies', () => {
  const templates = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-text-templates-'));
  const movie = (name: string, yaml: string) => {
    fs.mkdirSync(path.join(templates, 'tx', name), { recursive: true });
    fs.writeFileSync(path.join(templates, 'tx', name, 'movie.yaml'), yaml);
  };
  movie(
    'stack',
    `canvas: { width: 320, height: 240, fps: 10, background: "#000000" }
duration: 0.5
variables:
  title: { type: string, default: "Short" }
scenes:
  - layers:
      - { type: text, text: "{{title}}", x: 10, y: 10, width: 300, font: { size: 24 }, color: "#ffffff" }
      - { type: text, text: "Subtitle", x: 10, y: 0, stack: { gap: 10 }, font: { size: 16 }, color: "#00ff00" }
`,
  );
  movie(
    'split',
    `canvas: { width: 320, height: 120, fps: 10, background: "#000000" }
duration: 2
scenes:
  - layers:
      - { type: text, text: "AAA BBB CCC", x: 10, y: 40, width: 300, font: { size: 30 }, split: { by: word, stagger: 0.5 } }
`,
  );
  movie(
    'rtl',
    `canvas: { width: 320, height: 200, fps: 10, background: "#000000" }
duration: 0.5
scenes:
  - layers:
      - type: text
        text: "${HE}"
        x: 10
        y: 10
        width: 300
        height: 150
        fit: shrink
        maxSize: 60
        align: start
        background: { color: "#ff0000", padding: 4 }
`,
  );

  movie(
    'combined',
    `canvas: { width: 320, height: 240, fps: 10, background: "#000000" }
duration: 1
scenes:
  - layers:
      - { type: text, text: "Title that wraps in its box", x: 20, y: 10, width: 200, height: 80, fit: shrink, maxSize: 40, verticalAlign: bottom, align: start, background: { color: "#ff0000", padding: [4, 8], radius: 4 }, split: { by: word, stagger: 0.1 }, in: { type: fade, duration: 0.2 } }
      - { type: text, text: "Sub", x: 20, stack: { gap: 8 }, font: { size: 20 }, color: "#00ff00", split: typewriter }
`,
  );

  movie(
    'ranges',
    `canvas: { width: 320, height: 240, fps: 10, background: "#000000" }
duration: 2
scenes:
  - layers:
      - { type: text, text: "A title on two lines, gone at half a second", x: 10, y: 10, width: 220, end: 0.5, font: { size: 24 }, split: { by: word, stagger: 0.05 }, in: { type: fade, duration: 0.2 } }
      - { type: text, text: "Below it", x: 10, start: 0.3, stack: { gap: 8 }, font: { size: 20 }, color: "#00ff00", split: typewriter }
`,
  );

  let ctx: Awaited<ReturnType<typeof renderContext>>;
  beforeAll(async () => {
    ctx = await renderContext({ templatesDir: templates });
  });
  afterAll(async () => {
    await ctx.close();
    fs.rmSync(templates, { recursive: true, force: true });
  });
  const still = async (name: string, params: Record<string, string>, frame: number) => {
    const out = ctx.out(`${name}-${frame}-${Object.values(params).join('').length}.png`);
    await ctx.renders.render({ project: 'tx', movie: name, params, profile: { format: 'png' }, frame }, out);
    return read(out);
  };
  const green = (px: number[]) => px[1] > 150 && px[0] < 100;
  const white = (px: number[]) => px[0] > 150 && px[1] > 150 && px[2] > 150;

  it('a long (wrapped) title pushes the stacked subtitle down', async () => {
    const short = inkLines(await still('stack', {}, 2), green)[0];
    const long = inkLines(await still('stack', { title: 'A much longer title that wraps onto a second and a third line' }, 2), green)[0];
    expect(short.top).toBeGreaterThan(10 + 17 + 10 - 3); // below a line of 24 px text and the gap
    expect(long.top - short.top).toBeGreaterThan(2 * 24); // two more lines of title above it
  });

  it('split words appear one after another', async () => {
    const count = async (frame: number) => inkLines(await still('split', {}, frame), white).map((l) => l.right - l.left)[0] ?? 0;
    const [one, two, three] = [await count(1), await count(6), await count(12)];
    expect(one).toBeGreaterThan(20);
    expect(two).toBeGreaterThan(one * 1.8);
    expect(three).toBeGreaterThan(two * 1.3);
  });

  it('split, shrunk, boxed and stacked together: the stacked line sits below the split title\'s background box', async () => {
    const img = await still('combined', {}, 9);
    const [box] = inkLines(img, (px) => px[0] > 150 && px[1] < 80 && px[2] < 80);
    const [sub] = inkLines(img, green);
    expect(box.bottom).toBeLessThanOrEqual(10 + 80 + 4 + 1);
    expect(sub.top).toBeGreaterThanOrEqual(box.bottom + 8);
    expect(sub.top).toBeLessThanOrEqual(box.bottom + 8 + 8);
    expect(inkLines(img, white).length).toBeGreaterThanOrEqual(1);
  });

  it('a frame range rendered alone has the frames of the whole render, the stacked text placed below a title that range never shows', async () => {
    const req = { project: 'tx', movie: 'ranges', params: {}, profile: { format: 'mp4' as const, crf: 12 } };
    const [whole, part] = [ctx.out('ranges-whole.mp4'), ctx.out('ranges-part.mp4')];
    await ctx.renders.render(req, whole);
    // As a render node does: only the layers seen in the range are prepared.
    const plan = await ctx.renders.planPicture(req, { from: 10, to: 20 });
    await promisify(execFile)('ffmpeg', buildRenderArgs(plan, { from: 10, to: 20 }, { format: 'mp4', crf: 12, videoOnly: true }, part));
    const ssim = await ssimPerFrame(whole, part, 10, 10);
    expect(ssim).toHaveLength(10);
    expect(Math.min(...ssim)).toBeGreaterThanOrEqual(0.99);
    const frame = await frameAt(part, 5, 320, 240);
    const sub = inkLines({ width: 320, height: 240, channels: 3, data: frame.data }, green)[0];
    expect(sub.top).toBeGreaterThan(10 + 2 * 24);
  });

  it('a Hebrew paragraph that starts right, shrunk into its box, over its background', async () => {
    const img = await still('rtl', {}, 2);
    const text = inkLines(img, white);
    expect(text.length).toBeGreaterThanOrEqual(2);
    for (const line of text) expect(Math.abs(line.right + 1 - 310)).toBeLessThanOrEqual(4);
    expect(text[text.length - 1].bottom).toBeLessThan(10 + 150);
    // the red box behind it, around the text, within the layer box and its padding
    expect(at(img, 305, text[0].top + 2).slice(0, 3)).not.toEqual([0, 0, 0]);
    const [box] = inkLines(img, (px) => px[0] > 150 && px[1] < 80);
    expect(box.right).toBeLessThanOrEqual(310 + 5);
  });
});
