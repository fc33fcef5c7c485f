import { duckKeyframes, keyframedGain } from '../../src/compiler/audio-envelopes';
import { buildRenderArgs } from '../../src/compiler/ffmpeg-args';
import { keyframesExpr, valueAt } from '../../src/compiler/keyframes';
import { planRender, type RenderPlan } from '../../src/compiler/render-plan';
import { resolveMovie } from '../../src/compiler/resolve';
import { failure, templateFrom } from '../helpers/movie-fixtures';

const DUCK = { under: 1, to: 0.25, attackSec: 0.2, releaseSec: 0.4 };

describe('duckKeyframes', () => {
  it('full level until `attack` before the other track, `to` while it plays, back over `release` (seconds from this track start)', () => {
    expect(duckKeyframes(0.5, { startSec: 3.5, playSec: 3 }, DUCK)).toEqual([
      { at: 2.8, value: 1 },
      { at: 3, value: 0.25 },
      { at: 6, value: 0.25 },
      { at: 6.4, value: 1 },
    ]);
  });

  it('an attack that would begin before this track starts begins part-way down, at 0', () => {
    const track = duckKeyframes(1, { startSec: 1.1, playSec: 1 }, DUCK);
    expect(track[0]).toEqual({ at: 0, value: expect.closeTo(0.625, 9) });
    expect(track.slice(1)).toEqual([
      { at: expect.closeTo(0.1, 9), value: 0.25 },
      { at: expect.closeTo(1.1, 9), value: 0.25 },
      { at: expect.closeTo(1.5, 9), value: 1 },
    ]);
    // Another track playing from before this one starts: ducked from the first sample.
    expect(duckKeyframes(2, { startSec: 0, playSec: 5 }, DUCK)).toEqual([
      { at: 0, value: 0.25 },
      { at: 3, value: 0.25 },
      { at: 3.4, value: 1 },
    ]);
  });

  it('another track that never plays ducks nothing', () => {
    expect(duckKeyframes(0, { startSec: 1, playSec: 0 }, DUCK)).toEqual([]);
  });
});

describe('keyframedGain', () => {
  it('a level that never changes is a plain volume (or nothing at 1)', () => {
    expect(keyframedGain([{ at: 0, value: 0.5 }, { at: 2, value: 0.5 }])).toEqual(['volume=0.5']);
    expect(keyframedGain([{ at: 1, value: 1 }])).toEqual([]);
  });

  it('a changing level is an expression of the track time, evaluated per 10 ms block', () => {
    const track = [
      { at: 0, value: 0 },
      { at: 2, value: 1, easing: 'easeOut' },
    ];
    expect(keyframedGain(track)).toEqual([
      'asetnsamples=n=480:p=0',
      "volume=volume='(if(lt((t-0),2),0+1*(1-pow(1-clip(((t-0)-0)/2,0,1),2)),1))':eval=frame",
    ]);
    expect(keyframedGain(track)[1]).toBe(`volume=volume='${keyframesExpr(track, 0)}':eval=frame`);
  });
});

function plan(audio: RenderPlan['audio']): RenderPlan {
  return {
    templateId: 'p/m', version: 'v1', width: 320, height: 180, fps: 30, totalFrames: 60, background: '#000000', posterFrame: 30,
    scenes: [{ index: 0, startFrame: 0, endFrame: 60, background: '#000000', layers: [] }],
    audio,
  } as RenderPlan;
}

describe('buildRenderArgs: keyframed and ducked tracks', () => {
  it('keyframes replace the volume and come before the delay (track time); the duck multiplies them', () => {
    const fadeIn = [{ at: 0, value: 0 }, { at: 1, value: 1 }];
    const duck = [{ at: 0.3, value: 1 }, { at: 0.5, value: 0.25 }];
    const args = buildRenderArgs(
      plan([{ id: 'a0', path: '/m.m4a', startFrame: 15, trimSec: 0, playSec: 1.5, volume: 0.5, fadeInSec: 0, fadeOutSec: 0, loop: false, volumeKeyframes: fadeIn, duckKeyframes: duck }]),
      { from: 0, to: 60 },
      { format: 'mp4' },
      'o.mp4',
    );
    const chains = args[args.indexOf('-filter_complex') + 1].split(';');
    expect(chains.slice(-2)).toEqual([
      '[0:a]aformat=sample_fmts=fltp:sample_rates=48000:channel_layouts=stereo,asetpts=N/SR/TB,atrim=start=0,asetpts=PTS-STARTPTS,atrim=end=1.5,' +
        "asetnsamples=n=480:p=0,volume=volume='(if(lt((t-0),1),0+1*clip(((t-0)-0)/1,0,1),1))':eval=frame," +
        "asetnsamples=n=480:p=0,volume=volume='(if(lt((t-0),0.5),1+-0.75*clip(((t-0)-0.3)/0.2,0,1),0.25))':eval=frame," +
        'adelay=delays=500:all=1[at3]',
      '[at3]apad=whole_dur=2,atrim=start=0:end=2,asetpts=PTS-STARTPTS[a2]',
    ]);
  });
});

/** A LoadedTemplate from YAML lines, with two sound files. */
const template = (lines: string[]) => templateFrom(lines, { files: ['m.m4a', 'v.m4a', 'c.mp4'] });

describe('volume keyframes and ducking from the movie file to the plan', () => {
  const media = { visuals: {}, audio: { a0: { path: '/m.m4a', durationSec: 60 }, a1: { path: '/v.m4a', durationSec: 2 } } };

  it('the music ducks under the voice as it is placed; keyframes are kept as written', () => {
    const t = template([
      'canvas: { width: 320, height: 180 }',
      'duration: 10',
      'audio:',
      '  - src: m.m4a',
      '    start: 1',
      '    keyframes: { volume: [ { at: 0, value: 0 }, { at: 2, value: 1, easing: easeOut } ] }',
      '    duck: { under: 1, to: 0.3 }',
      '  - src: v.m4a',
      '    start: 4',
      'scenes:',
      '  - layers: []',
    ]);
    const p = planRender(resolveMovie(t, {}), media);
    expect(p.audio[0].volumeKeyframes).toEqual([{ at: 0, value: 0 }, { at: 2, value: 1, easing: 'easeOut' }]);
    // The voice plays 2 s from 4 s: the music (from 1 s) is at 0.3 from 3 s to 5 s of its own time.
    expect(p.audio[0].duckKeyframes).toEqual([
      { at: expect.closeTo(2.85, 9), value: 1 },
      { at: 3, value: 0.3 },
      { at: 5, value: 0.3 },
      { at: expect.closeTo(5.4, 9), value: 1 },
    ]);
    expect(p.audio[1].duckKeyframes).toBeUndefined();
    expect(valueAt(p.audio[0].duckKeyframes!, 4)).toBe(0.3);
  });

  it('a video layer takes volume keyframes for its sound; other layers do not', () => {
    const ok = template([
      'canvas: { width: 320, height: 180 }',
      'scenes:',
      '  - duration: 2',
      '    layers:',
      '      - { type: video, src: c.mp4, mute: false, keyframes: { volume: [ { at: 0, value: 1 }, { at: 1, value: 0 } ], opacity: [ { at: 0, value: 1 } ] } }',
    ]);
    const m = resolveMovie(ok, {});
    const p = planRender(m, { visuals: { 's0.l0': { kind: 'video', path: '/c.mp4', width: 320, height: 180, durationSec: 5, hasAudio: true } }, audio: {} });
    expect(p.audio).toEqual([expect.objectContaining({ id: 's0.l0.audio', volumeKeyframes: [{ at: 0, value: 1 }, { at: 1, value: 0 }] })]);
    expect(p.scenes[0].layers[0].look?.keyframes).toEqual({ opacity: [{ at: 0, value: 1 }] }); // the picture's keyframes only
    expect(() =>
      template(['canvas: { width: 320, height: 180 }', 'scenes:', '  - layers:', '      - { type: solid, color: "#fff", keyframes: { volume: [ { at: 0, value: 1 } ] } }']),
    ).toThrow(/volume/);
  });

  it.each([
    ['itself', '0', /a track cannot duck under itself/],
    ['a track that is not there', '2', /there is no audio track 2 \(tracks are numbered from 0; this movie has 2\)/],
  ])('ducking under %s is bad input at its line', (_label, under, message) => {
    const t = template(['canvas: { width: 320, height: 180 }', 'audio:', '  - src: m.m4a', `    duck: { under: ${under} }`, '  - src: v.m4a', 'scenes:', '  - duration: 1']);
    const err = failure(() => resolveMovie(t, {}));
    expect(err.details).toEqual([{ field: 'ok/t/movie.yaml:4', message: expect.stringMatching(message) }]);
  });

  it('volume keyframes out of time order are bad input at the keyframe; a level above 4 too', () => {
    const t = template([
      'canvas: { width: 320, height: 180 }',
      'audio:',
      '  - src: m.m4a',
      '    keyframes:',
      '      volume:',
      '        - { at: 2, value: 1 }',
      '        - { at: 1, value: 0 }',
      'scenes:',
      '  - duration: 3',
    ]);
    expect(failure(() => resolveMovie(t, {})).details).toEqual([{ field: 'ok/t/movie.yaml:7', message: expect.stringMatching(/in time order/) }]);
    expect(() => template(['canvas: { width: 320, height: 180 }', 'audio:', '  - { src: m.m4a, keyframes: { volume: [ { at: 0, value: 5 } ] } }', 'scenes:', '  - duration: 1'])).toThrow(/≤ 4/);
  });
});
