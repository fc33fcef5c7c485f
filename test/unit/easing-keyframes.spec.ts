import { ease, easeExpr, parseEasing } from '../../src/compiler/easing';
import { type Keyframe, keyframesExpr, sendcmdFilter, unorderedKeyframe, valueAt } from '../../src/compiler/keyframes';
import { evalExpr } from './ffmpeg-expr';

const CURVES = [
  'linear',
  'easeIn',
  'easeOut',
  'easeInOut',
  'ease',
  'ease-in',
  'ease-out',
  'ease-in-out',
  'cubic-bezier(0.34, 1.56, 0.64, 1)', // overshoots
  'cubic-bezier(0.5,-0.5,0.5,1.5)',
  'spring',
  'spring(0.2)',
  'spring(0.7)',
  'spring(1)',
];
const POINTS = Array.from({ length: 201 }, (_, i) => i / 200);

describe('parseEasing', () => {
  it('names the curves a designer may write', () => {
    expect(parseEasing('easeIn')).toEqual({ kind: 'quad', name: 'easeIn' });
    expect(parseEasing(' ease-out ')).toEqual({ kind: 'bezier', x1: 0, y1: 0, x2: 0.58, y2: 1 });
    expect(parseEasing('cubic-bezier(.1, -0.2, 1, 2.5)')).toEqual({ kind: 'bezier', x1: 0.1, y1: -0.2, x2: 1, y2: 2.5 });
    expect(parseEasing('spring')).toEqual({ kind: 'spring', damping: 0.45 });
    expect(parseEasing('spring(0.8)')).toEqual({ kind: 'spring', damping: 0.8 });
  });

  it('says what is wrong, briefly, for anything else', () => {
    expect(parseEasing('cubic-bezier(1.2, 0, 0.5, 1)')).toBe('cubic-bezier x values must be between 0 and 1');
    expect(parseEasing('cubic-bezier(0.2, 11, 0.5, 1)')).toBe('cubic-bezier y values must be between -10 and 10');
    expect(parseEasing('spring(0)')).toBe('spring damping must be between 0.1 and 1');
    expect(parseEasing('spring(2)')).toBe('spring damping must be between 0.1 and 1');
    expect(parseEasing('cubic-bezier(0.1, 0.2, 0.3)')).toMatch(/^unknown easing/);
    // Hostile text is cut short in the message, and never reaches an expression.
    const hostile = `ease'),drawtext=text=${'x'.repeat(500)}`;
    const message = parseEasing(hostile) as string;
    expect(message).toMatch(/^unknown easing "ease'\),drawtext=text=x+": use linear/);
    expect(message.length).toBeLessThan(250);
    expect(() => easeExpr(hostile, 'p')).toThrow(/unknown easing/);
  });
});

describe('ease and easeExpr agree', () => {
  it.each(CURVES)('%s: the ffmpeg expression gives the JavaScript value at 201 points', (curve) => {
    const expr = easeExpr(curve, 'p');
    // Beziers are sampled into linear segments in ffmpeg: within 0.3 % of the move for CSS's presets, 0.5 % for steep custom ones.
    const kind = (parseEasing(curve) as { kind: string }).kind;
    const tolerance = kind !== 'bezier' ? 1e-5 : curve.startsWith('cubic') ? 0.005 : 0.003;
    for (const p of POINTS) expect(Math.abs(evalExpr(expr, { p }) - ease(curve, p))).toBeLessThanOrEqual(tolerance);
  });

  it.each(CURVES)('%s: starts at 0 and ends exactly at 1, in both forms', (curve) => {
    expect(ease(curve, 0)).toBeCloseTo(0, 9);
    expect(ease(curve, 1)).toBe(1);
    expect(evalExpr(easeExpr(curve, 'p'), { p: 0 })).toBeCloseTo(0, 9);
    expect(evalExpr(easeExpr(curve, 'p'), { p: 1 })).toBeCloseTo(1, 9);
  });

  it('progress outside [0, 1] is clamped by ease (the expression gets a clip()ped progress)', () => {
    expect(ease('easeIn', -0.5)).toBe(0);
    expect(ease('ease', 1.5)).toBe(1);
  });
});

describe('curves', () => {
  it("CSS presets: known values of the browsers' curves", () => {
    // Reference values of CSS's cubic-bezier presets (solved to 1e-4).
    expect(ease('ease', 0.5)).toBeCloseTo(0.8024, 3);
    expect(ease('ease', 0.25)).toBeCloseTo(0.4085, 3);
    expect(ease('ease-in', 0.5)).toBeCloseTo(0.3153, 3);
    expect(ease('ease-out', 0.5)).toBeCloseTo(0.6847, 3);
    expect(ease('ease-in-out', 0.5)).toBeCloseTo(0.5, 6);
    expect(ease('ease-in-out', 0.25)).toBeCloseTo(0.1291, 3);
    expect(ease('cubic-bezier(0, 0, 1, 1)', 0.37)).toBeCloseTo(0.37, 6);
  });

  it('quadratics: v1 values', () => {
    expect(ease('easeIn', 0.5)).toBe(0.25);
    expect(ease('easeOut', 0.5)).toBe(0.75);
    expect(ease('easeInOut', 0.25)).toBe(0.125);
    expect(ease('easeInOut', 0.75)).toBe(0.875);
  });

  it('a bezier with y beyond [0, 1] overshoots', () => {
    const peak = Math.max(...POINTS.map((p) => ease('cubic-bezier(0.34, 1.56, 0.64, 1)', p)));
    expect(peak).toBeGreaterThan(1.05);
  });

  it('spring: overshoots at low damping, settles by the end, monotone (no overshoot) at damping 1', () => {
    const low = POINTS.map((p) => ease('spring(0.2)', p));
    expect(Math.max(...low)).toBeGreaterThan(1.3);
    expect(Math.abs(ease('spring(0.2)', 0.999) - 1)).toBeLessThan(0.01); // settled just before the end
    expect(Math.max(...POINTS.map((p) => ease('spring', p)))).toBeGreaterThan(1.05);
    const critical = POINTS.map((p) => ease('spring(1)', p));
    for (let i = 1; i < critical.length; i++) expect(critical[i]).toBeGreaterThanOrEqual(critical[i - 1]);
    expect(Math.max(...critical)).toBeLessThanOrEqual(1);
    // The end is exact: a spring-eased slide stops on its place, not a fraction of a pixel off.
    expect(evalExpr(easeExpr('spring(1)', 'p'), { p: 1 })).toBe(1);
  });
});

describe('valueAt', () => {
  const track: Keyframe[] = [
    { at: 1, value: 10 },
    { at: 2, value: 20, easing: 'easeIn' },
    { at: 2, value: 50 }, // a jump
    { at: 4, value: 0, easing: 'ease' },
  ];

  it('holds the first value before the first keyframe and the last after the last', () => {
    expect(valueAt(track, 0)).toBe(10);
    expect(valueAt(track, 1)).toBe(10);
    expect(valueAt(track, 4)).toBe(0);
    expect(valueAt(track, 99)).toBe(0);
  });

  it('is exact at keyframes, follows the arriving easing between them, and jumps where two share a time', () => {
    expect(valueAt(track, 1.5)).toBe(10 + 10 * 0.25); // easeIn arriving at 2 s
    expect(valueAt(track, 2)).toBe(50); // the later of two keyframes at the same time
    expect(valueAt(track, 3)).toBeCloseTo(50 - 50 * 0.8024, 2); // ease at progress 0.5
    expect(valueAt([{ at: 0, value: 3 }], 5)).toBe(3);
    expect(() => valueAt([], 0)).toThrow();
  });
});

describe('unorderedKeyframe', () => {
  it('the index of the first keyframe earlier than the one before, or -1', () => {
    expect(unorderedKeyframe([{ at: 0, value: 0 }, { at: 1, value: 0 }, { at: 1, value: 2 }])).toBe(-1);
    expect(unorderedKeyframe([{ at: 0, value: 0 }, { at: 2, value: 0 }, { at: 1, value: 0 }, { at: 0.5, value: 0 }])).toBe(2);
  });
});

describe('keyframesExpr', () => {
  const track: Keyframe[] = [
    { at: 0.5, value: -20 },
    { at: 1, value: 80, easing: 'cubic-bezier(0.2, 0.9, 0.3, 1.4)' },
    { at: 1, value: 10 },
    { at: 2.2, value: 10 },
    { at: 3, value: 0, easing: 'spring(0.3)' },
  ];
  const startSec = 1.5; // the layer starts 1.5 s into the movie: t is movie time
  const expr = keyframesExpr(track, startSec);

  it('is exact at every keyframe and holds outside them (t is movie time)', () => {
    expect(evalExpr(expr, { t: 0 })).toBe(-20);
    expect(evalExpr(expr, { t: startSec + 0.5 })).toBe(-20);
    expect(evalExpr(expr, { t: startSec + 1 })).toBe(10); // the jump's later keyframe
    expect(evalExpr(expr, { t: startSec + 2.2 })).toBe(10);
    expect(evalExpr(expr, { t: startSec + 3 })).toBe(0);
    expect(evalExpr(expr, { t: 100 })).toBe(0);
  });

  it('follows valueAt between keyframes (a steep bezier within 0.5 % of the move)', () => {
    for (let t = 0; t <= 5; t += 0.01) {
      expect(Math.abs(evalExpr(expr, { t }) - valueAt(track, t - startSec))).toBeLessThanOrEqual(0.005 * 100);
    }
    for (let t = startSec + 2.2; t <= 5; t += 0.01) expect(evalExpr(expr, { t })).toBeCloseTo(valueAt(track, t - startSec), 4);
  });

  it('only numbers reach the expression', () => {
    expect(expr).toMatch(/^[-+*/(),.0-9a-z]+$/);
    expect(keyframesExpr([{ at: 0, value: 7 }], 0)).toBe('(7)');
  });
});

describe('sendcmdFilter', () => {
  it('emits only the frames where the commands change, centred on frame times, the last open-ended', () => {
    // 10 fps, frames 10..20; the value changes at frames 12 and 15 only.
    const value = (f: number) => (f < 12 ? 0 : f < 15 ? 0.5 : 1);
    expect(sendcmdFilter(10, 10, 20, (f) => [`lut@k a val*${value(f)}`])).toBe(
      "sendcmd=c='0.95-1.15 [enter] lut@k a val*0;1.15-1.45 [enter] lut@k a val*0.5;1.45-1000000 [enter] lut@k a val*1'",
    );
  });

  it('joins the commands of one frame; the first interval does not start before 0', () => {
    expect(sendcmdFilter(4, 0, 3, (f) => [`gblur@g sigma ${f}`, 'lut@k a val*1'])).toBe(
      "sendcmd=c='0-0.125 [enter] gblur@g sigma 0,lut@k a val*1;0.125-0.375 [enter] gblur@g sigma 1,lut@k a val*1;0.375-1000000 [enter] gblur@g sigma 2,lut@k a val*1'",
    );
  });

  it('nothing when nothing changes (the filter options say it all)', () => {
    expect(sendcmdFilter(30, 0, 60, () => ['lut@k a val*0.5'])).toBeUndefined();
    expect(sendcmdFilter(30, 5, 6, (f) => [`x ${f}`])).toBeUndefined(); // one frame
  });
});
