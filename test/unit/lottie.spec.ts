import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildLottieEncodeArgs, jsonDepth, lottieAssetFiles, lottieBox, lottieClipFrames, lottieClipProblem, readLottieHeader, type LottieHeader } from '../../src/compiler/lottie';
import { planRender } from '../../src/compiler/render-plan';
import { resolveMovie } from '../../src/compiler/resolve';
import { type ResolvedLayerSpec } from '../../src/templates/movie.schema';
import { failure, resolvedMovie, templateFrom } from '../helpers/movie-fixtures';

const SQUARE = fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'templates', 't', 'lottie', 'square.json'), 'utf8');
const doc = (patch: Record<string, unknown>) => JSON.stringify({ ...JSON.parse(SQUARE), ...patch });
const header = (patch: Partial<LottieHeader> = {}): LottieHeader => ({ width: 100, height: 100, fps: 30, inPoint: 0, outPoint: 30, images: [], fonts: [], ...patch });

describe('readLottieHeader', () => {
  it('reads size, frame rate and in/out points of a Bodymovin file', () => {
    expect(readLottieHeader(SQUARE)).toEqual({ width: 100, height: 100, fps: 30, inPoint: 0, outPoint: 30, images: [], fonts: [] });
    expect(readLottieHeader(doc({ ip: 10, op: 70, fr: 60, w: 1920, h: 1080 }))).toMatchObject({ width: 1920, height: 1080, fps: 60, inPoint: 10, outPoint: 70 });
  });

  it.each([
    ['not JSON', 'not json', /^not JSON/],
    ['an array', '[1, 2]', /expected a JSON object/],
    ['no layers', '{"w":1,"h":1,"fr":30,"ip":0,"op":1}', /no "layers"/],
    ['a frame rate that is text', doc({ fr: '30' }), /"fr" must be a number/],
    ['no out point', doc({ op: undefined }), /"op" must be a number/],
    ['a zero width', doc({ w: 0 }), /size must be between 1 and 16384/],
    ['a huge size', doc({ w: 1e9, h: 1e9 }), /size must be between 1 and 16384 pixels a side \(it is 1000000000×1000000000\)/],
    ['frame rate 0', doc({ fr: 0 }), /frame rate must be between 0 and 240/],
    ['frame rate 1000', doc({ fr: 1000 }), /frame rate/],
    ['an end before the start', doc({ ip: 30, op: 30 }), /ends before it starts/],
    ['millions of frames', doc({ op: 30 * 3600 + 1 }), /may last at most 3600 s/],
    ['nesting 129 deep', doc({ nm: 'X' }).replace('"X"', '['.repeat(128) + ']'.repeat(128)), /nests deeper than 128 levels/],
  ])('refuses %s', (_name, text, message) => {
    expect(readLottieHeader(text)).toMatch(message);
  });

  it('an hour of animation and 128 levels of nesting are still fine', () => {
    expect(readLottieHeader(doc({ op: 30 * 3600 }))).toMatchObject({ outPoint: 108000 });
    expect(readLottieHeader(doc({ nm: 'X' }).replace('"X"', '['.repeat(127) + ']'.repeat(127)))).toMatchObject({ width: 100 });
  });

  it('refuses a file over 16 MiB before parsing it', () => {
    expect(readLottieHeader(doc({ nm: 'x'.repeat(16 * 1024 * 1024) }))).toBe('a Lottie file may be at most 16 MiB');
  });
});

describe('lottie assets', () => {
  const withAssets = doc({
    assets: [
      { id: 'image_0', w: 40, h: 40, u: 'images/', p: 'img_0.png', e: 0 },
      { id: 'image_1', w: 1, h: 1, u: '', p: 'data:image/png;base64,AAAA', e: 1 },
      { id: 'comp_0', layers: [] },
    ],
    fonts: { list: [{ fName: 'DejaVuSans', fFamily: 'DejaVu Sans' }, { fName: 'DejaVuSans' }] },
  });

  it('names the images kept beside the JSON and the fonts of text layers; embedded images and precomps are not files', () => {
    expect(readLottieHeader(withAssets)).toMatchObject({ images: [{ name: 'img_0.png', path: 'images/img_0.png' }], fonts: ['DejaVuSans'] });
  });

  it('finds them among the template files, from the JSON’s folder', () => {
    const header = readLottieHeader(withAssets) as LottieHeader;
    expect(lottieAssetFiles(header, 'anim/a.json', ['anim/a.json', 'anim/images/img_0.png', 'anim/fonts/DejaVuSans.ttf'])).toEqual({
      'img_0.png': 'anim/images/img_0.png',
      DejaVuSans: 'anim/fonts/DejaVuSans.ttf',
    });
    expect(lottieAssetFiles(header, 'a.json', ['images/img_0.png', 'DejaVuSans.otf'])).toEqual({ 'img_0.png': 'images/img_0.png', DejaVuSans: 'DejaVuSans.otf' });
  });

  it('refuses a missing image or font, and paths that leave the folder', () => {
    const header = (images: LottieHeader['images'], fonts: string[] = []) => ({ ...(readLottieHeader(SQUARE) as LottieHeader), images, fonts });
    expect(lottieAssetFiles(header([{ name: 'x.png', path: 'images/x.png' }]), 'a.json', [])).toBe('the animation\'s image "images/x.png" is not a file of the template');
    expect(lottieAssetFiles(header([{ name: 'x.png', path: '../../x.png' }]), 'a.json', [])).toMatch(/must be a file beside it in the template/);
    expect(lottieAssetFiles(header([{ name: 'x.png', path: '/etc/x.png' }]), 'a.json', [])).toMatch(/must be a file beside it/);
    expect(lottieAssetFiles(header([{ name: 'x.png', path: 'https://example.com/x.png' }]), 'a.json', [])).toMatch(/must be a file beside it/);
    expect(lottieAssetFiles(header([], ['Brand']), 'a.json', ['Brand.woff'])).toMatch(/uses the font "Brand": ship Brand.ttf or .otf/);
    expect(lottieAssetFiles(header([], ['../x']), 'a/b.json', ['x.ttf'])).toMatch(/uses the font "..\/x"/);
  });
});

describe('jsonDepth', () => {
  it('counts objects and arrays, not brackets inside strings (escaped quotes included)', () => {
    expect(jsonDepth('1')).toBe(0);
    expect(jsonDepth('[[1],[2,[3]]]')).toBe(3);
    expect(jsonDepth('{"a":"[[[[{{"}')).toBe(1);
    expect(jsonDepth('{"a":"\\"[[[","b":[{}]}')).toBe(3);
  });
});

describe('lottieBox', () => {
  it('the animation’s own size by default, the other side by aspect when one is given, even sizes', () => {
    const h = header({ width: 200, height: 100 });
    expect(lottieBox({}, h)).toEqual({ width: 200, height: 100 });
    expect(lottieBox({ width: 300 }, h)).toEqual({ width: 300, height: 150 });
    expect(lottieBox({ height: 51 }, h)).toEqual({ width: 102, height: 52 });
    expect(lottieBox({ width: 64, height: 64 }, h)).toEqual({ width: 64, height: 64 });
    expect(lottieBox({}, header({ width: 0.5, height: 0.5 }))).toEqual({ width: 2, height: 2 });
  });
});

describe('lottieClipProblem', () => {
  it('allows 4K UHD; refuses more pixels, a side past 7680, and too many pixel-frames', () => {
    expect(lottieClipProblem(3840, 2160, 1)).toBeUndefined();
    expect(lottieClipProblem(3842, 2160, 1)).toMatch(/at most 7680 pixels a side and 8294400 pixels in all/);
    expect(lottieClipProblem(7682, 2, 1)).toMatch(/this one is 7682×2/);
    expect(lottieClipProblem(1920, 1080, 12056)).toBeUndefined();
    expect(lottieClipProblem(1920, 1080, 12057)).toBe('a Lottie layer of 1920×1080 may last at most 12056 frames; this one lasts 12057');
  });
});

describe('lottieClipFrames', () => {
  const range = (n: number, step = 1) => Array.from({ length: n }, (_, i) => Math.round(i * step * 1e6) / 1e6);

  it('plays once at the movie’s frame rate, then holds the last frame the animation draws (op − 1)', () => {
    const clip = lottieClipFrames(header(), { layerFrames: 40, movieFps: 30, speed: 1, loop: false });
    expect(clip).toEqual({ frames: [...range(30), ...Array(10).fill(29)], loop: false });
  });

  it('a 60 fps movie shows half frames; speed 2 skips every other one', () => {
    expect(lottieClipFrames(header(), { layerFrames: 4, movieFps: 60, speed: 1, loop: false }).frames).toEqual([0, 0.5, 1, 1.5]);
    expect(lottieClipFrames(header(), { layerFrames: 4, movieFps: 30, speed: 2, loop: false }).frames).toEqual([0, 2, 4, 6]);
  });

  it('a loop lasting whole movie frames renders one pass, which the video layer repeats', () => {
    expect(lottieClipFrames(header(), { layerFrames: 100, movieFps: 30, speed: 2, loop: true })).toEqual({ frames: range(15, 2), loop: true });
    // 30 animation frames at 30 fps in a 25 fps movie: one pass is 25 movie frames.
    expect(lottieClipFrames(header(), { layerFrames: 100, movieFps: 25, speed: 1, loop: true })).toEqual({ frames: range(25, 1.2), loop: true });
  });

  it('a loop that does not fall on whole movie frames is rendered over the whole layer, wrapping', () => {
    const clip = lottieClipFrames(header({ outPoint: 10 }), { layerFrames: 8, movieFps: 30, speed: 1.5, loop: true });
    expect(clip).toEqual({ frames: [0, 1.5, 3, 4.5, 6, 7.5, 9, 0.5], loop: false });
  });

  it('a loop longer than the layer is rendered once, not repeated', () => {
    expect(lottieClipFrames(header(), { layerFrames: 20, movieFps: 30, speed: 1, loop: true })).toEqual({ frames: range(20), loop: false });
    expect(lottieClipFrames(header(), { layerFrames: 30, movieFps: 30, speed: 1, loop: true })).toEqual({ frames: range(30), loop: false });
  });

  it('frames are counted from the in point, as Skottie seeks them', () => {
    expect(lottieClipFrames(header({ inPoint: 100, outPoint: 103 }), { layerFrames: 5, movieFps: 30, speed: 1, loop: false }).frames).toEqual([0, 1, 2, 2, 2]);
  });
});

describe('buildLottieEncodeArgs', () => {
  it('raw RGBA on stdin → QuickTime Animation with alpha, at the movie’s frame rate', () => {
    expect(buildLottieEncodeArgs(320, 180, 25, '/cache/x.mov.tmp')).toEqual([
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'rawvideo', '-pix_fmt', 'rgba', '-s', '320x180', '-framerate', '25', '-i', 'pipe:0',
      '-c:v', 'qtrle', '-pix_fmt', 'argb',
      '-f', 'mov', '/cache/x.mov.tmp',
    ]);
  });
});

const template = (lines: string[], files: string[] = ['anim.json']) => templateFrom(lines, { files });

describe('resolveMovie: lottie layers', () => {
  const movie = (layer: string, files?: string[]) =>
    template(['canvas: { width: 320, height: 180, fps: 30 }', 'variables:', '  fast: { type: boolean, default: true }', 'scenes:', '  - duration: 2', '    layers:', `      - ${layer}`], files);

  it('a template file, with defaults (once, speed 1) and templated values', () => {
    const m = resolveMovie(movie('{ type: lottie, src: anim.json, x: 10, loop: "{{fast}}", speed: "{{#if fast}}2{{else}}1{{/if}}" }'), { fast: true });
    const layer = m.scenes[0].layers[0];
    expect(layer.lottie).toEqual({ file: '/templates/ok/t/anim.json', rel: 'anim.json', templateFiles: ['anim.json'], field: 'ok/t/movie.yaml:7' });
    expect(layer.spec).toMatchObject({ type: 'lottie', x: 10, y: 0, loop: true, speed: 2, opacity: 1 });
    expect(resolveMovie(movie('{ type: lottie, src: anim.json }'), {}).scenes[0].layers[0].spec).toMatchObject({ loop: false, speed: 1 });
  });

  it.each([
    ['a URL', '{ type: lottie, src: "https://example.com/a.json" }', /URLs are not fetched for Lottie layers yet/],
    ['a file outside the template', '{ type: lottie, src: ../other/a.json }', /points outside the template folder/],
    ['a missing file', '{ type: lottie, src: nope.json }', /file "nope.json" not found/],
  ])('refuses %s at the src line', (_name, layer, message) => {
    const err = failure(() => resolveMovie(movie(layer), {}));
    expect(err.kind).toBe('bad_input');
    expect(err.details[0]).toEqual({ field: 'ok/t/movie.yaml:7', message: expect.stringMatching(message) });
  });

  it('refuses a speed of 0 or past 100', () => {
    expect(failure(() => resolveMovie(movie('{ type: lottie, src: anim.json, speed: "{{#if fast}}0{{/if}}" }'), { fast: true })).details[0].message).toMatch(/speed: must be ≥ 0.01/);
    expect(() => template(['canvas: { width: 320, height: 180 }', 'scenes:', '  - duration: 1', '    layers: [{ type: lottie, src: anim.json, speed: 101 }]'])).toThrow(/must be ≤ 100/);
  });
});

describe('planRender: lottie layers', () => {
  const resolved = (spec: Record<string, unknown>) => resolvedMovie([{ id: 'l', startFrame: 10, endFrame: 90, spec: { opacity: 1, x: 7, y: 9, ...spec } as ResolvedLayerSpec }]);

  it('plays the prepared clip as a video layer of its size: looped when it is one pass, without sound', () => {
    const spec = { type: 'lottie', src: 'a.json', loop: true, speed: 1 };
    const plan = planRender(resolved(spec), { visuals: { l: { kind: 'clip', path: '/c.mov', width: 120, height: 60, frames: 50, loop: true } }, audio: {} });
    expect(plan.scenes[0].layers[0]).toMatchObject({ x: 7, y: 9, width: 120, height: 60, fit: 'fill', source: { kind: 'video', path: '/c.mov', trimStartSec: 0, loop: true, clipSec: 2 } });
    expect(plan.audio).toEqual([]);
    const once = planRender(resolved({ ...spec, loop: false }), { visuals: { l: { kind: 'clip', path: '/c.mov', width: 120, height: 60, frames: 80, loop: false } }, audio: {} });
    expect(once.scenes[0].layers[0].source).toEqual({ kind: 'video', path: '/c.mov', trimStartSec: 0, loop: false, clipSec: 3.2 });
  });

  it('takes the looks every layer may have (rotation, blend mode, mask)', () => {
    const spec = { type: 'lottie', src: 'a.json', loop: false, speed: 1, rotation: 15, blendMode: 'screen' };
    const media = { visuals: { l: { kind: 'clip' as const, path: '/c.mov', width: 120, height: 60, frames: 80, loop: false } }, audio: {}, masks: { l: '/m.png' } };
    expect(planRender(resolved(spec), media).scenes[0].layers[0].look).toEqual({ rotation: 15, blendMode: 'screen', maskPath: '/m.png' });
  });
});
