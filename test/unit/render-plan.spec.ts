import { pictureOf, planRender, soundOf } from '../../src/compiler/render-plan';
import type { ResolvedMovie, TimedLayer } from '../../src/compiler/resolve';
import type { ResolvedLayerSpec } from '../../src/templates/movie.schema';
import { resolvedMovie } from '../helpers/movie-fixtures';

const timing = { opacity: 1, x: 100, y: 50 };
const movie = (layers: TimedLayer[], audio: ResolvedMovie['audio'] = []) => resolvedMovie(layers, { audio });
const timed = (id: string, spec: Record<string, unknown>): TimedLayer => ({ id, startFrame: 10, endFrame: 90, spec: { ...timing, ...spec } as ResolvedLayerSpec });

describe('planRender', () => {
  it('places rasters by their offset (outline and shadow padding) and keeps the box for Ken Burns', () => {
    const plan = planRender(
      movie([
        timed('t', { type: 'text', text: 'hi', in: { type: 'fade', duration: 1, easing: 'linear', direction: 'left', distance: 1 } }),
        timed('k', { type: 'image', src: 'a.jpg', fit: 'cover', width: 300, height: 200, kenBurns: { from: { zoom: 1, x: 0.5, y: 0.5 }, to: { zoom: 1.5, x: 0, y: 0 } } }),
      ]),
      {
        visuals: {
          t: { kind: 'still', path: '/t.png', width: 81, height: 41, dx: -6, dy: -6 },
          k: { kind: 'still', path: '/k.png', width: 450, height: 300, dx: 0, dy: 0 },
        },
        audio: {},
      },
    );
    const [text, kb] = plan.scenes[0].layers;
    expect(text).toMatchObject({ x: 94, y: 44, width: 81, height: 41, source: { kind: 'still', path: '/t.png' } });
    expect(text.animIn).toHaveLength(1);
    expect(kb).toMatchObject({ x: 100, y: 50, width: 300, height: 200, kenBurns: { to: { zoom: 1.5 } } });
  });

  it('solids fill the rest of the canvas unless sized; sizes are even', () => {
    const plan = planRender(movie([timed('s', { type: 'solid', color: '#fff', width: 51 }), timed('f', { type: 'solid', color: '#fff' })]), { visuals: {}, audio: {} });
    expect(plan.scenes[0].layers.map((l) => [l.width, l.height])).toEqual([
      [52, 310],
      [540, 310],
    ]);
  });

  it('an unmuted clip adds its sound to the mix; a muted one does not', () => {
    const clip = (id: string, mute: boolean) => timed(id, { type: 'video', src: 'c.mp4', fit: 'cover', trim: { start: 1 }, loop: false, mute, volume: 0.5 });
    const video = { kind: 'video' as const, path: '/c.mp4', width: 10, height: 10, durationSec: 3, hasAudio: true };
    const plan = planRender(movie([clip('loud', false), clip('quiet', true)]), { visuals: { loud: video, quiet: video }, audio: {} });
    expect(plan.audio).toEqual([
      { id: 'loud.audio', path: '/c.mp4', startFrame: 10, trimSec: 1, playSec: 2, volume: 0.5, fadeInSec: 0, fadeOutSec: 0, loop: false },
    ]);
  });

  it('the sound of a movie is planned without its rasters, and mixes exactly what the whole plan mixes', () => {
    const clip = timed('loud', { type: 'video', src: 'c.mp4', fit: 'cover', trim: { start: 1 }, loop: false, mute: false, volume: 0.5 });
    const text = timed('t', { type: 'text', text: 'hi' });
    const video = { kind: 'video' as const, path: '/c.mp4', width: 10, height: 10, durationSec: 3, hasAudio: true };
    const whole = movie([text, clip]);
    const sound = soundOf(whole);
    expect(sound.scenes[0].layers.map((l) => l.id)).toEqual(['loud']);
    // no raster for `t`: planning the whole movie with these media would fail
    expect(() => planRender(whole, { visuals: { loud: video }, audio: {} })).toThrow(/no prepared raster/);
    const soundPlan = planRender(sound, { visuals: { loud: video }, audio: {} });
    const wholePlan = planRender(whole, { visuals: { loud: video, t: { kind: 'still', path: '/t.png', width: 8, height: 8, dx: 0, dy: 0 } }, audio: {} });
    expect(soundPlan.audio).toEqual(wholePlan.audio);
    expect(soundPlan).toMatchObject({ fps: 25, totalFrames: 100 });
  });

  it('a track plays to the end of the movie when looping, or until it runs out', () => {
    const track = (loop: boolean) => ({
      id: 'a0',
      media: { kind: 'file' as const, path: '/m.m4a' },
      startFrame: 25,
      spec: { src: 'm.m4a', start: 1, trim: 0.5, volume: 1, fadeIn: 0, fadeOut: 0, loop },
    });
    const prepared = { visuals: {}, audio: { a0: { path: '/m.m4a', durationSec: 2 } } };
    expect(planRender(movie([], [track(false)]), prepared).audio[0].playSec).toBe(1.5);
    expect(planRender(movie([], [track(true)]), prepared).audio[0].playSec).toBe(3);
  });
});

describe('pictureOf', () => {
  it('keeps every scene and only the layers seen in the range', () => {
    const early = { ...timed('early', { type: 'text', text: 'a' }), startFrame: 0, endFrame: 20 };
    const late = { ...timed('late', { type: 'text', text: 'b' }), startFrame: 60, endFrame: 100 };
    const music = { id: 'a0', startFrame: 0, media: { kind: 'file', path: '/m.m4a' }, spec: {} } as unknown as ResolvedMovie['audio'][number];
    const whole = movie([early, late], [music]);
    expect(pictureOf(whole, { from: 0, to: 6 }).scenes[0].layers.map((l) => l.id)).toEqual(['early']);
    expect(pictureOf(whole, { from: 0, to: 6 }).audio).toEqual([]); // a picture has no sound to prepare
    expect(pictureOf(whole, { from: 20, to: 60 }).scenes[0].layers).toEqual([]); // both ends are exclusive
    expect(pictureOf(whole, { from: 19, to: 61 }).scenes[0].layers.map((l) => l.id)).toEqual(['early', 'late']);
    expect(pictureOf(whole, { from: 20, to: 60 }).scenes).toHaveLength(1);
  });
});
