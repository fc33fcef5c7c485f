import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { MontageError } from '../../src/common/errors';
import { frameAt, pixel, probe, type Frame } from '../helpers/media';
import { renderContext } from '../helpers/render-context';

const run = promisify(execFile);
type Ctx = Awaited<ReturnType<typeof renderContext>>;
let ctx: Ctx;
beforeAll(async () => {
  ctx = await renderContext();
});
afterAll(() => ctx.close());

const W = 320;
const H = 180;
/** Pixels of the caption band (the lower third) in the left or right half that are red (highlight) or white (text). */
function ink(frame: Frame, half: 'left' | 'right', colour: 'red' | 'white'): number {
  let n = 0;
  for (let y = 90; y < H; y++) {
    for (let x = half === 'left' ? 0 : W / 2; x < (half === 'left' ? W / 2 : W); x++) {
      const [r, g, b] = pixel(frame, x, y);
      if (colour === 'red' ? r > 150 && g < 90 && b < 90 : r > 200 && g > 200 && b > 200) n++;
    }
  }
  return n;
}

/** Every frame, decoded to RGB the same way. */
async function allFrames(file: string): Promise<Buffer[]> {
  const { stdout } = await run('ffmpeg', ['-v', 'error', '-i', file, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { encoding: 'buffer', maxBuffer: 1 << 28 });
  const size = W * H * 3;
  return Array.from({ length: stdout.length / size }, (_, i) => stdout.subarray(i * size, (i + 1) * size));
}

describe('captions layer (SRT)', () => {
  // At 30 fps (where a still read at image2's default 25 fps would land on the wrong frames):
  // the layer starts at 0.5 s: cue 1 "AAAA BBBB" shows 1.0–2.0 s (frames 30–59), cue 2 "CC" 2.5–3.5 s (frames 75–104).
  // Each word of cue 1 has half the cue (same length): AAAA frames 30–44, BBBB frames 45–59.
  it('captions appear only during their cues, and the highlight moves from word to word', async () => {
    const out = ctx.out('captions.mp4');
    await ctx.renders.render({ project: 't', movie: 'captions', params: {}, profile: { format: 'mp4', crf: 12 } }, out);
    expect((await probe(out)).video?.nb_read_frames).toBe('120');
    const frame = (n: number) => frameAt(out, n, W, H);

    for (const n of [0, 29, 60, 74, 105, 119]) {
      const f = await frame(n);
      expect([n, ink(f, 'left', 'white') + ink(f, 'right', 'white') + ink(f, 'left', 'red') + ink(f, 'right', 'red')]).toEqual([n, 0]);
    }
    // AAAA spoken: red on the left, white on the right
    for (const n of [30, 44]) {
      const f = await frame(n);
      expect(ink(f, 'left', 'red')).toBeGreaterThan(300);
      expect(ink(f, 'right', 'red')).toBe(0);
      expect(ink(f, 'right', 'white')).toBeGreaterThan(300);
    }
    // BBBB spoken: the highlight has moved right
    for (const n of [45, 59]) {
      const f = await frame(n);
      expect(ink(f, 'right', 'red')).toBeGreaterThan(300);
      expect(ink(f, 'left', 'red')).toBe(0);
      expect(ink(f, 'left', 'white')).toBeGreaterThan(300);
    }
    // CC, one word, centred at the bottom: highlighted across the middle for its whole cue
    const cc = await frame(90);
    expect(ink(cc, 'left', 'red')).toBeGreaterThan(50);
    expect(ink(cc, 'right', 'red')).toBeGreaterThan(50);
  });

  it('a frame range rendered alone gives the same frames as the whole render (lossless)', async () => {
    const whole = ctx.out('captions-whole.mp4');
    const part = ctx.out('captions-part.mp4');
    const req = { project: 't', movie: 'captions', params: {}, profile: { format: 'mp4' as const, crf: 0 } };
    await ctx.renders.render(req, whole);
    await ctx.renders.render({ ...req, range: { from: 40, to: 80 } }, part); // starts mid-word, ends mid-cue
    const a = (await allFrames(whole)).slice(40, 80);
    const b = await allFrames(part);
    expect(b).toHaveLength(40);
    b.forEach((frame, i) => expect([40 + i, frame.equals(a[i])]).toEqual([40 + i, true]));
    expect(a.some((f, i) => i > 0 && !f.equals(a[i - 1]))).toBe(true); // the range holds changes, not one picture
  });

  it('hostile caption text is drawn as text; a bad cue is a 400 naming its line', async () => {
    const hostile = "1\n00:00:00,000 --> 00:00:02,000\n<span foreground='red'>[0:v]drawtext=text=x;</span> 👍🏽 \u202eשלום &amp;\n";
    const out = ctx.out('captions-hostile.png');
    await ctx.renders.render({ project: 't', movie: 'captions', params: { subtitles: hostile }, profile: { format: 'png' }, frame: 30 }, out);
    const bad = await ctx.renders
      .render({ project: 't', movie: 'captions', params: { subtitles: '1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:02 --> soon\nbad' }, profile: { format: 'png' } }, out)
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(MontageError);
    expect((bad as MontageError).httpStatus).toBe(400);
    expect((bad as MontageError).details[0]).toEqual({ field: expect.stringMatching(/^t\/captions\/movie\.yaml:\d+$/), message: expect.stringContaining('line 6') });
  });
});

describe('captions layer (word list)', () => {
  // The layer is in the second scene (from 1 s): "hi" at 0.2–0.6 s of the layer shows at 1.2–1.6 s, frames 12–15, on a blue box at the top.
  it('shows the word on its box at its time, offset by the scene', async () => {
    const out = ctx.out('captions-words.mp4');
    await ctx.renders.render({ project: 't', movie: 'captions-words', params: {}, profile: { format: 'mp4', crf: 12 } }, out);
    // The blue pixels' count and bounding box.
    const blue = async (n: number) => {
      const f = await frameAt(out, n, W, H);
      const box = { count: 0, top: H, bottom: 0, left: W, right: 0 };
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const [r, g, b] = pixel(f, x, y);
          if (b > 180 && r < 60 && g < 60) Object.assign(box, { count: box.count + 1, top: Math.min(box.top, y), bottom: Math.max(box.bottom, y), left: Math.min(box.left, x), right: Math.max(box.right, x) });
        }
      }
      return box;
    };
    expect((await blue(11)).count).toBe(0);
    const shown = await blue(12);
    expect(shown.count).toBeGreaterThan(1000);
    expect(Math.abs(shown.top - 20)).toBeLessThanOrEqual(2); // y: the top of the captions
    expect(Math.abs((shown.left + shown.right) / 2 - W / 2)).toBeLessThanOrEqual(3); // centred in the box
    expect((await blue(15)).count).toBeGreaterThan(1000);
    expect((await blue(16)).count).toBe(0);
  });
});
