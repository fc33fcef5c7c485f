import * as path from 'node:path';
import sharp from 'sharp';
import { renderContext } from '../helpers/render-context';

type Ctx = Awaited<ReturnType<typeof renderContext>>;
let ctx: Ctx;
beforeAll(async () => {
  ctx = await renderContext({ templatesDir: path.join(__dirname, '..', 'fixtures', 'templates-bad') });
});
afterAll(() => ctx.close());

/** Mean absolute difference (0–255) between two bands of the same width and height. */
function difference(data: Buffer, width: number, bandA: number, bandB: number, bandHeight: number): number {
  let sum = 0;
  for (let y = 0; y < bandHeight; y++) {
    for (let x = 0; x < width; x++) sum += Math.abs(data[(bandA + y) * width + x] - data[(bandB + y) * width + x]);
  }
  return sum / (width * bandHeight);
}

describe('font.file alone', () => {
  it('sets the text in the file\'s own font: like the font it was made from, unlike the default', async () => {
    const out = ctx.out('font-file.png');
    await ctx.renders.render({ project: 'ok', movie: 'font-file', params: {}, profile: { format: 'png' }, frame: 5 }, out);
    const { data, info } = await sharp(out).greyscale().raw().toBuffer({ resolveWithObject: true });
    expect(info).toMatchObject({ width: 480, height: 180, channels: 1 });
    const band = 60;
    const ink = (top: number) => {
      let n = 0;
      for (let i = top * info.width; i < (top + band) * info.width; i++) if (data[i] > 128) n++;
      return n;
    };
    // every line has text
    for (const top of [0, 60, 120]) expect(ink(top)).toBeGreaterThan(500);
    const fileVsSerif = difference(data, info.width, 0, 60, band);
    const fileVsDefault = difference(data, info.width, 0, 120, band);
    // "Montage Test" is installed nowhere: only the file can have drawn serifs here
    expect(fileVsSerif).toBeLessThan(1);
    expect(fileVsDefault).toBeGreaterThan(5);
  });
});
