import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { buildRenderArgs } from '../../src/compiler/ffmpeg-args';
import { planRender } from '../../src/compiler/render-plan';
import { resolveMovie } from '../../src/compiler/resolve';
import { renderContext } from '../helpers/render-context';

const run = promisify(execFile);
type Ctx = Awaited<ReturnType<typeof renderContext>>;
let ctx: Ctx;
beforeAll(async () => {
  ctx = await renderContext({ templatesDir: path.join(__dirname, '..', 'fixtures', 'motion') });
});
afterAll(() => ctx.close());

/** Every frame of a file as 8-bit grey, W×H each. */
async function greyFrames(file: string, width: number, height: number): Promise<Buffer[]> {
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'gray', '-'], { encoding: 'buffer', maxBuffer: 1 << 28 });
  const size = width * height;
  return Array.from({ length: Math.floor(stdout.length / size) }, (_, i) => stdout.subarray(i * size, (i + 1) * size));
}

/** Mean absolute difference of the middle rows of two frames. */
function change(a: Buffer, b: Buffer, width: number, height: number): number {
  let sum = 0;
  let n = 0;
  for (let y = Math.floor(height / 3); y < Math.floor((2 * height) / 3); y++) {
    for (let x = 0; x < width; x++) {
      sum += Math.abs(a[y * width + x] - b[y * width + x]);
      n++;
    }
  }
  return sum / n;
}

describe('smooth motion', () => {
  it('a slow Ken Burns pan glides by a fraction of a pixel every frame instead of holding and jumping', async () => {
    // 0.19 px of pan per frame over 8 px stripes: whole-pixel crops would leave most frames
    // identical to the one before and then jump; resampling changes every frame a little.
    const out = ctx.out('kenburns.mp4');
    await ctx.renders.render({ project: 'm', movie: 'kenburns', params: {}, profile: { format: 'mp4', crf: 0 } }, out);
    const frames = await greyFrames(out, 320, 180);
    expect(frames).toHaveLength(50);
    const steps = frames.slice(1).map((f, i) => change(frames[i], f, 320, 180));
    const sorted = [...steps].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    // Every frame moves (no held frames) and no step is much larger than the typical one (no jumps).
    expect(sorted[0]).toBeGreaterThan(0.5);
    expect(sorted[sorted.length - 1] / median).toBeLessThan(2.5);
  });

  it('a frame range of a Ken Burns rendered alone is the same frames as the whole render', async () => {
    const render = async (range?: { from: number; to: number }) => {
      const out = ctx.out(`kb-${range ? `${range.from}-${range.to}` : 'all'}.mp4`);
      await ctx.renders.render({ project: 'm', movie: 'kenburns', params: {}, profile: { format: 'mp4', crf: 0, videoOnly: true }, ...(range ? { range } : {}) }, out);
      return greyFrames(out, 320, 180);
    };
    const whole = await render();
    for (const range of [{ from: 0, to: 7 }, { from: 7, to: 31 }, { from: 31, to: 50 }]) {
      const part = await render(range);
      expect(part).toHaveLength(range.to - range.from);
      part.forEach((frame, i) => {
        if (!frame.equals(whole[range.from + i])) throw new Error(`frame ${range.from + i} of [${range.from}, ${range.to}) differs from the whole render's`);
      });
    }
  });

  it('a filter graph longer than one argument may be (128 KiB) goes to ffmpeg as a script file', async () => {
    const template = await ctx.templates.load('m', 'long-graph');
    const movie = resolveMovie(template, {});
    const args = buildRenderArgs(planRender(movie, { visuals: {}, audio: {} }), { from: 0, to: movie.totalFrames }, { format: 'mp4' }, 'x.mp4');
    expect(args[args.indexOf('-filter_complex') + 1].length).toBeGreaterThan(128 * 1024);
    const out = ctx.out('long-graph.mp4');
    await ctx.renders.render({ project: 'm', movie: 'long-graph', params: {}, profile: { format: 'mp4', crf: 0 } }, out);
    const frames = await greyFrames(out, 64, 36);
    expect(frames).toHaveLength(600);
    // the layers fade in over the 20 s: the last frame is brighter than the first
    const mean = (f: Buffer) => f.reduce((a, b) => a + b, 0) / f.length;
    expect(mean(frames[599])).toBeGreaterThan(mean(frames[0]) + 20);
  });
});
