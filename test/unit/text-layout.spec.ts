import { pictureOf, planRender, type PreparedVisual } from '../../src/compiler/render-plan';
import { MontageError } from '../../src/common/errors';
import { resolveMovie, type TimedLayer } from '../../src/compiler/resolve';
import {
  blockSide,
  largestFittingSize,
  layoutParagraphs,
  paddingOf,
  paragraphDirection,
  placeVertically,
  splitOptions,
  textMarkup,
  textUnits,
} from '../../src/compiler/text-layout';
import { type ResolvedLayerSpec } from '../../src/templates/movie.schema';
import type { LoadedTemplate } from '../../src/templates/template.types';
import { resolvedMovie, templateFrom } from '../helpers/movie-fixtures';

const HE = 'שלום עולם';
const AR = 'مرحبا بالعالم';

describe('paragraph direction and sides', () => {
  it('takes the first strong letter: Hebrew and Arabic read right to left, digits and marks are not letters', () => {
    expect(paragraphDirection(HE)).toBe('rtl');
    expect(paragraphDirection(AR)).toBe('rtl');
    expect(paragraphDirection('2024: ' + HE)).toBe('rtl');
    expect(paragraphDirection('Hello ' + HE)).toBe('ltr');
    expect(paragraphDirection('123 !')).toBe('ltr');
    expect(paragraphDirection('\u200F123')).toBe('rtl');
  });

  it('start and end follow each paragraph; left, right and center are where they say', () => {
    const sides = (text: string, align: Parameters<typeof layoutParagraphs>[1]) => layoutParagraphs(text, align).map((p) => p.side);
    expect(sides(`${HE}\nHello\r\n${AR}`, 'start')).toEqual(['right', 'left', 'right']);
    expect(sides(`${HE}\nHello`, 'end')).toEqual(['left', 'right']);
    expect(sides(`${HE}\nHello`, 'right')).toEqual(['right', 'right']);
    expect(sides(`${HE}\nHello`, 'center')).toEqual(['center', 'center']);
  });

  it('a paragraph laid out against its direction gets the other base direction and keeps its own inside an isolate', () => {
    // Pango lays out with `left`: a right-to-left paragraph lands right, so `left` must flip it.
    expect(textMarkup(HE, 'right')).toBe(HE);
    expect(textMarkup(HE, 'left')).toBe(`\u200E\u2067${HE}\u2069`);
    expect(textMarkup('Hi', 'right')).toBe('\u200F\u2066Hi\u2069');
    expect(textMarkup(`Hi\n${HE}`, 'start')).toBe(`Hi\n${HE}`);
    expect(textMarkup(`Hi\n${HE}`, 'center')).toBe(`Hi\n${HE}`);
  });

  it('the block goes on the side its paragraphs share', () => {
    expect(blockSide(layoutParagraphs(`${HE}\n${AR}`, 'start'))).toBe('right');
    expect(blockSide(layoutParagraphs(`Hi\n${AR}`, 'start'))).toBe('left');
    expect(blockSide(layoutParagraphs('Hi', 'center'))).toBe('center');
  });

  it('escapes markup, and hides all but the visible part with no alpha', () => {
    expect(textMarkup('<b>&"x"', 'left')).toBe('&lt;b&gt;&amp;&quot;x&quot;');
    expect(textMarkup('ab cd', 'left', [3, 5])).toBe('<span fgalpha="1">ab </span>cd');
    expect(textMarkup('ab\ncd', 'left', [1, 2])).toBe('<span fgalpha="1">a</span>b<span fgalpha="1">\n</span><span fgalpha="1">cd</span>');
    expect(textMarkup('ab', 'left', null)).toBe('<span fgalpha="1">ab</span>');
  });
});

describe('units of a split text', () => {
  it('words keep their punctuation; letters are grapheme clusters; spaces are never units', () => {
    const text = 'Hi, you!  ok';
    expect(textUnits(text, 'word').map(([a, b]) => text.slice(a, b))).toEqual(['Hi,', 'you!', 'ok']);
    const emoji = 'a👍🏽 é';
    expect(textUnits(emoji, 'letter').map(([a, b]) => emoji.slice(a, b))).toEqual(['a', '👍🏽', 'é']);
    expect(textUnits(HE, 'word')).toHaveLength(2);
  });

  it('presets', () => {
    expect(splitOptions('typewriter')).toEqual({ by: 'letter', stagger: 0.06, preset: 'typewriter' });
    expect(splitOptions('pop')).toMatchObject({ by: 'word', preset: 'pop' });
    expect(splitOptions({ by: 'word', stagger: 0.2 })).toEqual({ by: 'word', stagger: 0.2 });
  });
});

describe('fit: shrink', () => {
  it('finds the largest size that fits, in a bounded number of measurements', async () => {
    const asked: number[] = [];
    const found = await largestFittingSize(8, 200, async (size) => {
      asked.push(size);
      return size <= 37;
    });
    expect(found).toEqual({ size: 37, fits: true });
    expect(asked.length).toBeLessThanOrEqual(10);
  });

  it('the max when it fits, the min (clipped) when nothing does', async () => {
    expect(await largestFittingSize(8, 48, async () => true)).toEqual({ size: 48, fits: true });
    expect(await largestFittingSize(8, 48, async () => false)).toEqual({ size: 8, fits: false });
  });
});

describe('vertical placement', () => {
  it('places shorter text by verticalAlign and clips taller text to the box', () => {
    expect(placeVertically(40, 100, 'top')).toEqual({ top: 0 });
    expect(placeVertically(40, 100, 'middle')).toEqual({ top: 30 });
    expect(placeVertically(40, 100, 'bottom')).toEqual({ top: 60 });
    expect(placeVertically(140, 100, 'top')).toEqual({ top: 0, crop: { top: 0, height: 100 } });
    expect(placeVertically(140, 100, 'bottom')).toEqual({ top: 0, crop: { top: 40, height: 100 } });
  });

  it('padding is one number or [vertical, horizontal]', () => {
    expect(paddingOf(6)).toEqual({ v: 6, h: 6 });
    expect(paddingOf([4, 10])).toEqual({ v: 4, h: 10 });
  });
});

describe('planning text layers', () => {
  const movie = (layers: TimedLayer[]) => resolvedMovie(layers);
  const text = (id: string, spec: Record<string, unknown>, frames: [number, number] = [10, 90]): TimedLayer => ({
    id,
    startFrame: frames[0],
    endFrame: frames[1],
    spec: { type: 'text', text: 'a b c', opacity: 1, x: 20, y: 30, ...spec } as ResolvedLayerSpec,
  });
  type Still = Extract<PreparedVisual, { kind: 'still' }>;
  const still = (height: number, extra: Partial<Still> = {}): Still => ({
    kind: 'still',
    path: '/t.png',
    width: 100,
    height: height + 8,
    dx: -4,
    dy: -4,
    text: { size: 20, top: 0, bottom: height },
    ...extra,
  });

  it('a stacked layer sits gap pixels below the text above it, whatever that text rendered to; its own y is not used', () => {
    const plan = planRender(
      movie([text('title', {}), text('sub', { y: 999, stack: { gap: 10 } }), text('more', { stack: { gap: 0 } })]),
      {
        visuals: { title: still(90), sub: still(20, { text: { size: 20, top: -6, bottom: 26 } }), more: still(20) },
        audio: {},
      },
    );
    const [title, sub, more] = plan.scenes[0].layers;
    expect(title.y).toBe(30 - 4);
    // below the title's box (30 + 90) and the gap, pushed down by its own background's top padding
    expect(sub.y).toBe(30 + 90 + 10 + 6 - 4);
    expect(more.y).toBe(30 + 90 + 10 + 6 + 26 - 4);
  });

  it('a split text becomes its background and its units, each entering stagger seconds after the one before', () => {
    const part = (i: number) => ({ path: `/u${i}.png`, width: 10, height: 12, dx: i * 15, dy: 2 });
    const fade = { type: 'fade', duration: 0.2, easing: 'linear', direction: 'left', distance: 1 };
    const prepared = still(20, { units: [part(0), part(1), part(2)], textBackground: { path: '/bg.png', width: 60, height: 30, dx: -8, dy: -8 } });
    const plan = planRender(movie([text('t', { split: { by: 'word', stagger: 0.2 }, in: fade, out: fade })]), { visuals: { t: prepared }, audio: {} });
    const layers = plan.scenes[0].layers;
    expect(layers.map((l) => [l.id, l.startFrame, l.endFrame, l.x, l.y])).toEqual([
      ['t.bg', 10, 90, 12, 22],
      ['t.u0', 10, 80, 20, 32],
      ['t.u1', 15, 85, 35, 32],
      ['t.u2', 20, 90, 50, 32],
    ]);
    expect(layers[2]).toMatchObject({ source: { kind: 'still', path: '/u1.png' }, width: 10, height: 12, animIn: [fade], animOut: [fade] });
  });

  it('typewriter: letters appear without motion and stay; pop: words scale in', () => {
    const part = { path: '/u.png', width: 10, height: 12, dx: 0, dy: 0 };
    const fade = { type: 'fade', duration: 0.2, easing: 'linear', direction: 'left', distance: 1 };
    const typed = planRender(movie([text('t', { split: 'typewriter', in: fade, out: fade })]), { visuals: { t: still(20, { units: [part, part] }) }, audio: {} });
    expect(typed.scenes[0].layers.map((l) => [l.startFrame, l.endFrame, l.animIn.length])).toEqual([
      [10, 90, 0],
      [12, 90, 0],
    ]);
    const popped = planRender(movie([text('t', { split: 'pop' })]), { visuals: { t: still(20, { units: [part] }) }, audio: {} });
    expect(popped.scenes[0].layers[0].animIn).toEqual([expect.objectContaining({ type: 'scale' })]);
  });

  it('a range keeps the text a stacked layer seen there is placed below, even when that text is not seen', () => {
    const whole = movie([text('title', {}, [0, 20]), text('other', {}, [0, 20]), text('sub', { stack: { gap: 0 } }, [50, 90])]);
    expect(pictureOf(whole, { from: 60, to: 70 }).scenes[0].layers.map((l) => l.id)).toEqual(['other', 'sub']);
    expect(pictureOf(whole, { from: 25, to: 30 }).scenes[0].layers).toEqual([]);
  });
});

describe('checks of text layers when params are in', () => {
  const template = (lines: string[]) => templateFrom(lines, { dir: '/t' });
  const failure = (t: LoadedTemplate, params: Record<string, string> = {}) => {
    try {
      resolveMovie(t, params);
    } catch (err) {
      return err as MontageError;
    }
    throw new Error('resolved');
  };
  const head = ['canvas: { width: 640, height: 360 }', 'variables: { t: { type: string, default: "a b" } }', 'scenes:', '  - duration: 1', '    layers:'];

  it('stack needs a text layer above it in the scene: bad_input at the stack line', () => {
    const err = failure(template([...head, '      - { type: solid, color: "#fff" }', '      - type: text', '        text: hi', '        stack: { gap: 4 }']));
    expect(err.kind).toBe('bad_input');
    expect(err.details).toEqual([{ field: 'ok/t/movie.yaml:9', message: expect.stringMatching(/no(ne)? .*text layer|there is none/) }]);
  });

  it('a split text of more than 300 units (after params) is refused at its split line', () => {
    const t = template([...head, '      - type: text', '        text: "{{t}}"', '        split: { by: letter }']);
    expect(resolveMovie(t, {}).scenes[0].layers).toHaveLength(1);
    const err = failure(t, { t: 'x'.repeat(301) });
    expect(err.details).toEqual([{ field: 'ok/t/movie.yaml:8', message: expect.stringMatching(/301 units; at most 300/) }]);
  });

  it('a split text with a mask, a rotation or scale keyframes is refused at its split line (they would apply per unit)', () => {
    const t = template([...head, '      - type: text', '        text: "{{t}}"', '        split: pop', '        rotation: 10', '        mask: { shape: ellipse }']);
    expect(failure(t).details).toEqual([{ field: 'ok/t/movie.yaml:8', message: 'a split text cannot take mask, rotation: they would apply to each unit on its own' }]);
    const ok = template([...head, '      - type: text', '        text: "{{t}}"', '        split: pop', '        keyframes: { x: [{ at: 0, value: 0 }, { at: 1, value: 10 }] }']);
    expect(resolveMovie(ok, {}).scenes[0].layers).toHaveLength(1);
  });

  it('padding and font sizes are bounded', () => {
    expect(() => template([...head, '      - { type: text, text: hi, background: { color: "#000", padding: 5000 } }'])).toThrow(/500/);
    expect(() => template([...head, '      - { type: text, text: hi, fit: shrink, maxSize: 100000 }'])).toThrow(/2000/);
  });
});
