import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { valueAt } from '../../src/compiler/keyframes';
import { renderContext } from '../helpers/render-context';

// Volume keyframes and ducking, heard: the RMS of the rendered sound over time against the
// curve the template describes. t/sound: a 440 Hz tone from 0.5 s, faded in by keyframes, ducked
// under a voice at 3.5–6.5 s (attack 0.2 s, release 0.4 s, to 0.25).
let ctx: Awaited<ReturnType<typeof renderContext>>;
beforeAll(async () => {
  ctx = await renderContext();
});
afterAll(() => ctx.close());

const RATE = 48000;
const WINDOW = 1200; // 25 ms: 11 whole periods of 440 Hz

/** The decoded sound, mono, as float samples from movie time 0. */
async function samples(file: string): Promise<Float32Array> {
  const { stdout } = await promisify(execFile)('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:a', '-ac', '1', '-ar', String(RATE), '-f', 'f32le', '-'], {
    encoding: 'buffer',
    maxBuffer: 64 * 1024 * 1024,
  });
  return new Float32Array(stdout.buffer, stdout.byteOffset, stdout.length / 4);
}

/** RMS of the window centred on `sec`. */
function rmsAt(s: Float32Array, sec: number): number {
  const from = Math.round(sec * RATE) - WINDOW / 2;
  let sum = 0;
  for (let i = from; i < from + WINDOW; i++) sum += s[i] * s[i];
  return Math.sqrt(sum / WINDOW);
}

async function render(voice: number, name: string): Promise<Float32Array> {
  const out = ctx.out(name);
  await ctx.renders.render({ project: 't', movie: 'sound', params: { voice }, profile: { format: 'mp4' } }, out);
  return samples(out);
}

it('volume keyframes: the level follows the eased curve, in seconds from the track start; ducking holds `to` while the voice plays', async () => {
  const s = await render(0, 'music-alone.mp4');
  const full = rmsAt(s, 3.0); // after the fade-in, before the duck
  expect(full).toBeGreaterThan(0.05);
  expect(rmsAt(s, 0.25)).toBeLessThan(0.001); // before the track starts
  const fadeIn = [
    { at: 0, value: 0 },
    { at: 2, value: 1, easing: 'easeOut' },
  ];
  for (const sec of [0.6, 0.9, 1.3, 1.7, 2.1, 2.4, 2.7]) {
    expect(Math.abs(rmsAt(s, sec) / full - valueAt(fadeIn, sec - 0.5))).toBeLessThan(0.03);
  }
  const duck = [
    { at: 3.3, value: 1 },
    { at: 3.5, value: 0.25 },
    { at: 6.5, value: 0.25 },
    { at: 6.9, value: 1 },
  ];
  for (const sec of [3.2, 3.4, 3.6, 4.5, 6.0, 6.4, 6.7, 7.0, 7.5]) {
    expect(Math.abs(rmsAt(s, sec) / full - valueAt(duck, sec))).toBeLessThan(0.03);
  }
});

it('with the voice heard: it sounds over the ducked music, and the mix outside the voice is the music alone', async () => {
  const alone = await render(0, 'alone.mp4');
  const mixed = await render(1, 'mixed.mp4');
  const full = rmsAt(alone, 3.0);
  // The voice is the same tone at full level (its phase against the music's is whatever it is: 0.75–1.25).
  expect(rmsAt(mixed, 5.0) / full).toBeGreaterThan(0.7);
  expect(rmsAt(alone, 5.0) / full).toBeCloseTo(0.25, 1);
  for (const sec of [2.0, 3.2, 7.5]) expect(Math.abs(rmsAt(mixed, sec) - rmsAt(alone, sec)) / full).toBeLessThan(0.02);
});
