import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { buildRenderArgs } from '../../src/compiler/ffmpeg-args';
import { countFragmentedSamples, Fmp4Joiner, readBoxes } from '../../src/streaming/fmp4-joiner';
import { countIvfFrames } from '../../src/streaming/ivf-joiner';
import { planSegments } from '../../src/streaming/segment-planner';
import { pictTypes, probe, ssimPerFrame } from '../helpers/media';
import { renderContext } from '../helpers/render-context';

// Segments rendered apart (as render nodes will), joined at the box level without re-encoding.
let ctx: Awaited<ReturnType<typeof renderContext>>;
beforeAll(async () => {
  ctx = await renderContext();
});
afterAll(() => ctx.close());

it('GOP-aligned segments joined into one fragmented MP4: exact frames, continuous timestamps, keyframes at joints', async () => {
  const profile = { format: 'mp4' as const, streamable: true, videoOnly: true, crf: 12 };
  const whole = ctx.out('whole.mp4');
  const { plan } = await ctx.renders.render({ project: 't', movie: 'motion', params: {}, profile }, whole);
  const ranges = planSegments(plan.totalFrames, { fps: plan.fps, parallel: 2 });
  expect(ranges.length).toBeGreaterThan(2);

  const joiner = new Fmp4Joiner(plan.fps);
  const parts: Buffer[] = [];
  for (const [i, range] of ranges.entries()) {
    const file = ctx.out(`seg${i}.mp4`);
    await ctx.renders.render({ project: 't', movie: 'motion', params: {}, profile, range }, file, undefined, { plan });
    expect(countFragmentedSamples(fs.readFileSync(file))).toBe(range.to - range.from);
    parts.push(joiner.push(fs.readFileSync(file), range.from));
  }
  const joined = ctx.out('joined.mp4');
  fs.writeFileSync(joined, Buffer.concat(parts));

  const boxes = readBoxes(fs.readFileSync(joined)).map((b) => b.type);
  expect(boxes.filter((t) => t === 'moov')).toHaveLength(1);
  expect(boxes.filter((t) => t === 'ftyp')).toHaveLength(1);
  expect(boxes).not.toContain('mfra');

  expect((await probe(joined)).video?.nb_read_frames).toBe(String(plan.totalFrames));
  const { stdout } = await promisify(execFile)('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts', '-of', 'csv=p=0', joined]);
  const pts = stdout.split('\n').filter(Boolean).map(Number).sort((a, b) => a - b);
  expect(new Set(pts).size).toBe(plan.totalFrames); // no duplicate timestamps
  const step = pts[1] - pts[0];
  pts.forEach((p, i) => expect(p - pts[0]).toBe(i * step)); // no gaps at the joints

  const types = await pictTypes(joined);
  for (const r of ranges) expect(types[r.from]).toBe('I');
  const ssim = await ssimPerFrame(whole, joined, 0, plan.totalFrames);
  expect(Math.min(...ssim)).toBeGreaterThanOrEqual(0.99);
});

it('refuses truncated input instead of writing a broken stream', () => {
  const joiner = new Fmp4Joiner(30);
  const bad = Buffer.from([0, 0, 0, 40, 0x6d, 0x6f, 0x6f, 0x66, 1, 2, 3]); // a moof that claims 40 bytes
  expect(() => joiner.push(bad, 0)).toThrow(/runs past its container/);
});

it('counts the frames of real segments, as render nodes check them, and refuses cut ones', async () => {
  const range = { from: 10, to: 25 };
  const mp4 = ctx.out('count.mp4');
  const ivf = ctx.out('count.ivf');
  await ctx.renders.render({ project: 't', movie: 'motion', params: {}, profile: { format: 'mp4', streamable: true, videoOnly: true }, range }, mp4);
  await ctx.renders.render({ project: 't', movie: 'motion', params: {}, profile: { format: 'webm', streamable: true, videoOnly: true, container: 'ivf' }, range }, ivf);
  expect(countFragmentedSamples(fs.readFileSync(mp4))).toBe(15);
  expect(countIvfFrames(fs.readFileSync(ivf))).toBe(15);
  expect((await probe(ivf)).video?.nb_read_frames).toBe('15');
  const mp4Bytes = fs.readFileSync(mp4);
  const ivfBytes = fs.readFileSync(ivf);
  expect(() => countFragmentedSamples(mp4Bytes.subarray(0, mp4Bytes.length - 100))).toThrow(/runs past its container|truncated box header/);
  expect(() => countIvfFrames(ivfBytes.subarray(0, ivfBytes.length - 100))).toThrow(/truncated/);
  expect(() => countFragmentedSamples(ivfBytes)).toThrow();
});

it('a segment prepares only the layers it shows, and renders with exactly the command of the whole plan', async () => {
  const request = { project: 't', movie: 'motion', params: {} };
  const profile = { format: 'mp4' as const, streamable: true, videoOnly: true };
  const whole = await ctx.renders.plan(request);
  const layers = (plan: typeof whole) => plan.scenes.flatMap((s) => s.layers.map((l) => l.id));
  for (const range of [{ from: 0, to: 6 }, { from: 30, to: 42 }, { from: 42, to: 69 }]) {
    const part = await ctx.renders.planPicture(request, range);
    expect(layers(part).length).toBeLessThan(layers(whole).length);
    expect(buildRenderArgs(part, range, profile, 'o.mp4')).toEqual(buildRenderArgs(whole, range, profile, 'o.mp4'));
  }
});
