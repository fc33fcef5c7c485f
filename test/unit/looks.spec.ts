import { buildRenderArgs } from '../../src/compiler/ffmpeg-args';
import { colorFilters, hasStaticLook, rotatedSize, yuvOf } from '../../src/compiler/layer-look';
import { planRender, type PlannedLayer, type RenderPlan } from '../../src/compiler/render-plan';
import { resolveMovie } from '../../src/compiler/resolve';
import { maskSvg, shapeSvg, type ShapeSpec } from '../../src/compiler/shapes';
import { movieSchema } from '../../src/templates/movie.schema';
import { evalExpr } from './ffmpeg-expr';
import { failure, templateFrom } from '../helpers/movie-fixtures';

const CANVAS = { width: 320, height: 180 };
const rect = (over: Partial<ShapeSpec>): ShapeSpec => ({ shape: 'rectangle', x: 10, y: 20, width: 100, height: 50, radius: 0, ...over });

describe('shapeSvg', () => {
  it('a filled rectangle: its own size, drawn at the layer position, radius capped at half the short side', () => {
    const d = shapeSvg(rect({ fill: '#ff000080', radius: 40 }), CANVAS) as Exclude<ReturnType<typeof shapeSvg>, string>;
    expect(d.markup).toBe(
      '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50" viewBox="0 0 100 50">' +
        '<rect x="0" y="0" width="100" height="50" rx="25" fill="#ff0000" fill-opacity="0.502" stroke="none"/></svg>',
    );
    expect([d.width, d.height, d.dx + 0, d.dy + 0]).toEqual([100, 50, 0, 0]);
  });

  it('a stroke is centred on the outline: the raster grows by half of it on each side, and moves up-left as much', () => {
    const d = shapeSvg(rect({ shape: 'ellipse', stroke: { color: '#0F0', width: 5 } }), CANVAS);
    expect(d).toEqual({
      markup:
        '<svg xmlns="http://www.w3.org/2000/svg" width="106" height="56" viewBox="0 0 106 56">' +
        '<ellipse cx="53" cy="28" rx="50" ry="25" fill="none" stroke="#00ff00" stroke-opacity="1" stroke-width="5"/></svg>',
      width: 106,
      height: 56,
      dx: -3,
      dy: -3,
    });
  });

  it('no size: the shape reaches the canvas edges from its position', () => {
    const d = shapeSvg(rect({ width: undefined, height: undefined, fill: '#fff' }), CANVAS) as { width: number; height: number };
    expect([d.width, d.height]).toEqual([310, 160]);
  });

  it('a line: its bounding box with room for the stroke and round caps, whichever way it runs', () => {
    const d = shapeSvg({ shape: 'line', x: 100, y: 80, x2: 20, y2: 50, radius: 0, stroke: { color: '#ffffff', width: 6 } }, CANVAS);
    // pad = ceil(6 / 2) + 1 = 4; the box starts at (20 − 4, 50 − 4), relative to the layer's x, y (100, 80)
    expect(d).toEqual({
      markup:
        '<svg xmlns="http://www.w3.org/2000/svg" width="88" height="38" viewBox="0 0 88 38">' +
        '<line x1="84" y1="34" x2="4" y2="4" stroke="#ffffff" stroke-opacity="1" stroke-width="6" stroke-linecap="round"/></svg>',
      width: 88,
      height: 38,
      dx: -84,
      dy: -34,
    });
  });

  it('a linear gradient runs along its angle (0 = left to right, 90 = top to bottom); radial from the centre', () => {
    const along = (angle: number) => (shapeSvg(rect({ fill: { colors: ['#f00', '#00f'], angle, type: 'linear' } }), CANVAS) as { markup: string }).markup;
    expect(along(0)).toContain('<linearGradient id="g" x1="0" y1="0.5" x2="1" y2="0.5"><stop offset="0" stop-color="#ff0000" stop-opacity="1"/><stop offset="1" stop-color="#0000ff" stop-opacity="1"/></linearGradient>');
    expect(along(90)).toContain('x1="0.5" y1="0" x2="0.5" y2="1"');
    expect(along(0)).toContain('fill="url(#g)"');
    const radial = shapeSvg(rect({ fill: { colors: ['#fff', '#000', '#f00'], angle: 0, type: 'radial' } }), CANVAS) as { markup: string };
    expect(radial.markup).toContain('<radialGradient id="g" cx="0.5" cy="0.5" r="0.5"><stop offset="0" stop-color="#ffffff" stop-opacity="1"/><stop offset="0.5"');
  });

  it.each([
    ['no area', rect({ width: 0, fill: '#fff' }), 'the shape has no area (width and height must be > 0)'],
    ['invisible', rect({}), 'the shape has neither fill nor stroke: it would be invisible'],
    ['too large', rect({ width: 9000, fill: '#fff' }), 'the shape is too large (at most 8192 pixels each way)'],
    ['a line without its end', { shape: 'line', x: 0, y: 0, radius: 0, stroke: { color: '#fff', width: 2 } } as ShapeSpec, 'a line needs x2 and y2 (where it ends)'],
    ['a line without a stroke', { shape: 'line', x: 0, y: 0, x2: 5, y2: 5, radius: 0 } as ShapeSpec, 'a line needs a stroke (its colour and width)'],
    ['a line too long', { shape: 'line', x: 0, y: 0, x2: 1e5, y2: 5, radius: 0, stroke: { color: '#fff', width: 2 } } as ShapeSpec, 'the line is too long (at most 8192 pixels each way)'],
  ])('%s: a message, no markup', (_label, spec, message) => {
    expect(shapeSvg(spec, CANVAS)).toBe(message);
  });
});

describe('maskSvg', () => {
  const mask = { shape: 'ellipse' as const, x: 10, y: 5, width: 80, height: 40, radius: 0, feather: 0, invert: false };
  it('white inside the shape, black around it, the size of the content', () => {
    expect(maskSvg(mask, { width: 100, height: 50 })).toBe(
      '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50" viewBox="0 0 100 50">' +
        '<rect width="100%" height="100%" fill="#000000"/><ellipse cx="50" cy="25" rx="40" ry="20" fill="#ffffff"/></svg>',
    );
  });

  it('inverted swaps the colours; feathered blurs the shape by half the feather', () => {
    const svg = maskSvg({ ...mask, shape: 'rectangle', radius: 100, feather: 6, invert: true }, { width: 100, height: 50 });
    expect(svg).toBe(
      '<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50" viewBox="0 0 100 50">' +
        '<defs><filter id="f" x="-50%" y="-50%" width="200%" height="200%"><feGaussianBlur stdDeviation="3"/></filter></defs>' +
        '<rect width="100%" height="100%" fill="#ffffff"/><rect x="10" y="5" width="80" height="40" rx="20" fill="#000000" filter="url(#f)"/></svg>',
    );
  });
});

describe('layer looks: sizes and colours', () => {
  it('rotatedSize: the bounding box of the turned picture, rounded up to even', () => {
    expect(rotatedSize(40, 10, 90)).toEqual({ w: 10, h: 40 });
    expect(rotatedSize(40, 10, -90)).toEqual({ w: 10, h: 40 });
    expect(rotatedSize(40, 10, 180)).toEqual({ w: 40, h: 10 });
    expect(rotatedSize(100, 50, 45)).toEqual({ w: 108, h: 108 }); // 150 × cos 45° = 106.07
    expect(rotatedSize(100, 50, 0)).toEqual({ w: 100, h: 50 });
  });

  it('yuvOf: BT.709 limited-range values, and the alpha', () => {
    expect(yuvOf('#000000')).toEqual({ y: 16, u: 128, v: 128, a: 1 });
    expect(yuvOf('#ffffff')).toEqual({ y: 235, u: 128, v: 128, a: 1 });
    expect(yuvOf('#ff0000')).toEqual({ y: 63, u: 102, v: 240, a: 1 });
    expect(yuvOf('#00f8')).toEqual({ y: 32, u: 240, v: 118, a: 0x88 / 255 });
  });

  it('colorFilters: grey before saturation is ignored; brightness and contrast together; a tint takes its chroma by its alpha', () => {
    expect(colorFilters({ grayscale: true, saturation: 2 })).toEqual(['hue=s=0']);
    expect(colorFilters({ saturation: 1, brightness: 0, contrast: 1 })).toEqual([]);
    expect(colorFilters({ saturation: 1.5, brightness: 0.1, tint: '#ff000080' })).toEqual([
      'hue=s=1.5',
      'eq=brightness=0.1:contrast=1',
      "lutyuv=y=val:u='val+0.502*(102-val)':v='val+0.502*(240-val)':a=val",
    ]);
  });

  it('hasStaticLook: only looks that change the content once', () => {
    expect(hasStaticLook(undefined)).toBe(false);
    expect(hasStaticLook({ keyframes: { x: [{ at: 0, value: 1 }] }, blendMode: 'multiply' })).toBe(false);
    expect(hasStaticLook({ filters: { saturation: 1 } })).toBe(false);
    expect(hasStaticLook({ rotation: 0 })).toBe(false);
    expect(hasStaticLook({ rotation: 5 })).toBe(true);
    expect(hasStaticLook({ maskPath: '/m.png' })).toBe(true);
    expect(hasStaticLook({ shadow: { x: 1, y: 1, blur: 0, color: '#000' } })).toBe(true);
  });
});

// ---- the graph ---------------------------------------------------------------------------

function layer(overrides: Partial<PlannedLayer>): PlannedLayer {
  return {
    id: 's0.l0',
    startFrame: 0,
    endFrame: 10,
    x: 10,
    y: 20,
    width: 100,
    height: 50,
    opacity: 1,
    source: { kind: 'color', color: '#00ff00' },
    fit: 'fill',
    animIn: [],
    animOut: [],
    ...overrides,
  };
}

function plan(layers: PlannedLayer[]): RenderPlan {
  return {
    templateId: 'p/m',
    version: 'v1',
    width: 320,
    height: 180,
    fps: 10,
    totalFrames: 10,
    background: '#000000',
    posterFrame: 0,
    scenes: [{ index: 0, startFrame: 0, endFrame: 10, background: '#000000', layers }],
    audio: [],
  };
}

/** The filter graph's chains, the canvas and final output chains left out. */
function chains(p: RenderPlan, range = { from: 0, to: 10 }): { inputs: string[]; chains: string[] } {
  const args = buildRenderArgs(p, range, { format: 'mp4', videoOnly: true }, 'out.mp4');
  // Chains are split at semicolons outside quotes (sendcmd's commands hold some).
  const graph = args[args.indexOf('-filter_complex') + 1].match(/(?:[^;']|'[^']*')+/g)!;
  expect(graph[0]).toMatch(/^color=c=0x000000:s=320x180:r=10,.*\[bg0\]$/);
  expect(graph[graph.length - 1]).toMatch(/setparams=.*\[v\d+\]$/);
  const inputs = args.filter((_, i) => args[i - 1] === '-i');
  return { inputs, chains: graph.slice(1, -1) };
}

const GREEN = 'color=c=0x00FF00:s=100x50:r=10,format=rgba,scale=out_color_matrix=bt709:out_range=tv,format=yuva420p';
const REPEAT = (count: number, first: number) => `loop=loop=-1:size=1:start=0,trim=end_frame=${count},settb=expr=1/10,setpts=N+${first}`;

describe('GraphBuilder: the looks of a layer, exactly', () => {
  it('opacity keyframes: one lut whose alpha factor sendcmd sets on the frames where it changes', () => {
    const l = layer({ look: { keyframes: { opacity: [{ at: 0, value: 0 }, { at: 0.3, value: 0.9 }] } } });
    expect(chains(plan([l])).chains).toEqual([
      `${GREEN},${REPEAT(10, 0)},sendcmd=c='0-0.05 [enter] lut@k1 a val*0;0.05-0.15 [enter] lut@k1 a val*0.3;0.15-0.25 [enter] lut@k1 a val*0.6;0.25-1000000 [enter] lut@k1 a val*0.9',lut@k1=a='val*0':enable='between(t,-0.05,0.95)'[l2]`,
      "[bg0][l2]overlay=x='10+(100-overlay_w)/2':y='20+(50-overlay_h)/2':eof_action=pass[o3]",
    ]);
  });

  it('opacity keyframes in a range: the initial value is the first frame of the range, times the layer opacity', () => {
    const l = layer({ opacity: 0.5, look: { keyframes: { opacity: [{ at: 0, value: 0 }, { at: 0.3, value: 0.9 }] } } });
    const graph = chains(plan([l]), { from: 2, to: 6 }).chains;
    expect(graph[0]).toBe(
      `${GREEN},${REPEAT(4, 2)},sendcmd=c='0.15-0.25 [enter] lut@k1 a val*0.3;0.25-1000000 [enter] lut@k1 a val*0.45',lut@k1=a='val*0.3':enable='between(t,0.15,0.55)'[l2]`,
    );
  });

  it('x keyframes: an overlay expression of movie time, exact at the keyframes, eased between', () => {
    // Planned x keyframes are offsets from the layer's x (the plan subtracts it).
    const l = layer({ startFrame: 2, look: { keyframes: { x: [{ at: 0, value: 0 }, { at: 0.5, value: 100, easing: 'easeIn' }] } } });
    const graph = chains(plan([l])).chains;
    expect(graph).toEqual([
      // fully opaque throughout: no opacity pass at all
      `${GREEN},${REPEAT(8, 2)}[l2]`,
      "[bg0][l2]overlay=x='10+(100-overlay_w)/2+(if(lt((t-0.2),0.5),0+100*pow(clip(((t-0.2)-0)/0.5,0,1),2),100))':y='20+(50-overlay_h)/2':eof_action=pass[o3]",
    ]);
    const x = /x='([^']+)'/.exec(graph[1])![1];
    const at = (t: number) => evalExpr(x, { t, overlay_w: 100 });
    // At the keyframe itself (t − 0.2 = 0.5, give or take a rounding) and after it: the place it arrives at.
    for (const [t, want] of [[0, 10], [0.2, 10], [0.45, 35], [0.7, 110], [1, 110]]) expect(at(t)).toBeCloseTo(want, 9);
  });

  it('blur keyframes: gblur on a padded picture, its horizontal and vertical sigma sent together', () => {
    const l = layer({ look: { keyframes: { blur: [{ at: 0, value: 0 }, { at: 0.2, value: 2 }] } } });
    const set = (sigma: number) => `gblur@k1 sigma ${sigma},gblur@k1 sigmaV ${sigma}`;
    expect(chains(plan([l])).chains).toEqual([
      `${GREEN},${REPEAT(10, 0)},sendcmd=c='0-0.05 [enter] ${set(0.01)};0.05-0.15 [enter] ${set(1)};0.15-1000000 [enter] ${set(2)}',` +
        'pad=108:58:4:4:color=black@0,gblur@k1=sigma=0.01:sigmaV=0.01[l2]',
      "[bg0][l2]overlay=x='6+(108-overlay_w)/2':y='16+(58-overlay_h)/2':eof_action=pass[o3]",
    ]);
  });

  it('a static rotation: the content turned once into its bounding box, placed so the centre stays', () => {
    const l = layer({ look: { rotation: 90 } });
    expect(chains(plan([l])).chains).toEqual([
      `${GREEN}[raw1]`,
      '[raw1]rotate=a=1.570796:ow=50:oh=100:c=black@0[look2]',
      `[look2]${REPEAT(10, 0)}[l3]`,
      // the 100×50 box at (10, 20) has its centre at (60, 45); the 50×100 picture sits at (35, −5)
      "[bg0][l3]overlay=x='35':y='-5':eof_action=pass[o4]",
    ]);
  });

  it('a mask: the layer alpha times the grey mask, once, before the frame is repeated', () => {
    const l = layer({ look: { maskPath: '/cache/mask.png' } });
    const { inputs, chains: graph } = chains(plan([l]));
    expect(inputs).toEqual(['/cache/mask.png']);
    expect(graph).toEqual([
      `${GREEN}[raw1]`,
      '[0:v]format=gray,scale=100:50[mask2]',
      '[raw1]split[mk3][ma4]',
      '[ma4]alphaextract[ma4x]',
      '[ma4x][mask2]blend=all_mode=multiply[mp5]',
      '[mk3][mp5]alphamerge[look6]',
      `[look6]${REPEAT(10, 0)}[l7]`,
      "[bg0][l7]overlay=x='10':y='20':eof_action=pass[o8]",
    ]);
  });

  it('a drop shadow: the silhouette in the shadow colour, moved and blurred, under the content; the box grows by the margin', () => {
    const l = layer({ look: { shadow: { x: 4, y: -6, blur: 2, color: '#00000080' } } });
    expect(chains(plan([l])).chains).toEqual([
      `${GREEN}[raw1]`,
      '[raw1]split[sk2][sc3]',
      // margin = even(2 × blur + max |offset|) = 10; the silhouette at (10 + 4, 10 − 6)
      "[sc3]lut=y=16:u=128:v=128:a='val*0.502',pad=120:70:14:4:color=black@0,gblur=sigma=1[sh4]",
      '[sh4][sk2]overlay=x=10:y=10:eof_action=pass[look5]',
      `[look5]${REPEAT(10, 0)}[l6]`,
      "[bg0][l6]overlay=x='0':y='10':eof_action=pass[o7]",
    ]);
  });

  it('blend mode multiply: the layer placed on a clear canvas, blended with the base in RGB, shown through its own alpha', () => {
    const l = layer({ startFrame: 3, endFrame: 8, look: { blendMode: 'multiply' } });
    expect(chains(plan([l])).chains).toEqual([
      `${GREEN},${REPEAT(5, 3)}[l1]`,
      `color=c=0x00000000:s=320x180:r=10,format=rgba,scale=out_color_matrix=bt709:out_range=tv,format=yuva420p,${REPEAT(5, 3)}[bcanvas2]`,
      "[bcanvas2][l1]overlay=x='10':y='20':eof_action=pass[o3]",
      '[bg0]split[bb4][bk5]',
      '[o3]split[lc6][la7]',
      '[bb4]trim=start_pts=3:end_pts=8,scale=in_color_matrix=bt709:in_range=tv,format=gbrp[brgb8]',
      '[lc6]scale=in_color_matrix=bt709:in_range=tv,format=gbrp[lrgb9]',
      '[la7]alphaextract[lalpha10]',
      '[brgb8][lrgb9]blend=all_mode=multiply:shortest=1,scale=out_color_matrix=bt709:out_range=tv,format=yuva420p[mixed11]',
      '[mixed11][lalpha10]alphamerge[blended12]',
      "[bk5][blended12]overlay=x='0':y='0':eof_action=pass[o13]",
    ]);
  });

  it('blur and colour filters: applied once to a still, the box grown by the blur margin', () => {
    const l = layer({ look: { blur: 3, filters: { grayscale: true } } });
    expect(chains(plan([l])).chains).toEqual([
      `${GREEN}[raw1]`,
      '[raw1]hue=s=0[look2]',
      '[look2]pad=112:62:6:6:color=black@0,gblur=sigma=3[look3]',
      `[look3]${REPEAT(10, 0)}[l4]`,
      "[bg0][l4]overlay=x='4':y='14':eof_action=pass[o5]",
    ]);
  });

  it.each([
    ['left', 'in', '10+100*(1-clip((t-0)/0.5,0,1))'], // comes from the right, travelling left
    ['right', 'in', '10-100*(1-clip((t-0)/0.5,0,1))'],
    ['left', 'out', '10-100*clip((t-0.5)/0.5,0,1)'], // leaves to the left
    ['right', 'out', '10+100*clip((t-0.5)/0.5,0,1)'],
  ] as const)('a slide %s (%s) travels that way', (direction, phase, x) => {
    const slide = { type: 'slide' as const, duration: 0.5, easing: 'linear', direction, distance: 100 };
    const l = layer(phase === 'in' ? { animIn: [slide] } : { animOut: [slide] });
    expect(chains(plan([l])).chains[1]).toBe(`[bg0][l1]overlay=x='${x}':y='20':eof_action=pass[o2]`);
  });
});

// ---- from the movie file -----------------------------------------------------------------

const template = (lines: string[]) => templateFrom(lines, { files: ['m.png'] });

const HEAD = ['canvas: { width: 320, height: 180, fps: 10 }', 'scenes:', '  - duration: 1', '    layers:'];

describe('looks in the movie file', () => {
  it('keyframes out of time order are bad input at the keyframe, with its line', () => {
    const t = template([...HEAD, '      - type: solid', '        color: "#fff"', '        keyframes:', '          x:', '            - { at: 0.5, value: 0 }', '            - { at: 0.2, value: 9 }']);
    expect(failure(() => resolveMovie(t, {})).details).toEqual([
      { field: 'ok/t/movie.yaml:10', message: 'keyframes of x must be in time order (at 0.2 s comes after 0.5 s)' },
    ]);
  });

  it.each([
    ['both a shape and a src', '{ shape: ellipse, src: m.png }'],
    ['neither', '{ x: 4 }'],
  ])('a mask with %s is bad input at the mask', (_label, mask) => {
    const t = template([...HEAD, `      - { type: solid, color: "#fff", mask: ${mask} }`]);
    expect(failure(() => resolveMovie(t, {})).details).toEqual([
      { field: 'ok/t/movie.yaml:5', message: 'a mask is either a shape (rectangle, ellipse) or an image (src), not both or neither' },
    ]);
  });

  it.each([
    ['a line without its end', '{ type: shape, shape: line, stroke: { width: 3 } }', 'a line needs x2 and y2 (where it ends)'],
    ['a shape without fill or stroke', '{ type: shape, shape: ellipse, width: 10, height: 10 }', 'the shape has neither fill nor stroke: it would be invisible'],
    ['a scale that would make a frame of 20000 px', '{ type: solid, color: "#fff", width: 1000, height: 100, keyframes: { scale: [{ at: 0, value: 1 }, { at: 1, value: 20 }] } }', 'a scale of 20 makes the layer about 20000 px across; at most 16384'],
  ])('%s is bad input at the layer line, in templates check as at render', (_label, layer, message) => {
    const t = template([...HEAD, `      - ${layer}`]);
    expect(failure(() => resolveMovie(t, {})).details).toEqual([{ field: 'ok/t/movie.yaml:5', message }]);
  });

  it.each([
    ['an unknown easing', 'keyframes: { x: [ { at: 0, value: 0, easing: "bounce" } ] }', /unknown easing/],
    ['a blur beyond 200', 'blur: 900', /≤ 200/],
    ['an unknown blend mode', 'blendMode: "dissolve"', /Invalid enum value/],
    ['a shadow on a solid with an unknown field', 'shadow: { spread: 3 }', /unknown field "spread"|Unrecognized key/],
    ['opacity keyframes above 1', 'keyframes: { opacity: [ { at: 0, value: 2 } ] }', /between 0 and 1/],
  ])('%s is refused when the movie is loaded', (_label, field, message) => {
    expect(() => template([...HEAD, `      - { type: solid, color: "#fff", ${field} }`])).toThrow(message);
  });

  it('a movie file with every look plans them: x keyframes as offsets from the layer x, shadow, blend mode, rotation, filters', () => {
    const t = template([
      ...HEAD,
      '      - type: shape',
      '        shape: rectangle',
      '        x: 40',
      '        y: 30',
      '        width: 60',
      '        height: 20',
      '        fill: "#ff0000"',
      '        rotation: 15',
      '        blendMode: screen',
      '        filters: { grayscale: true }',
      '        shadow: {}',
      '        keyframes: { x: [ { at: 0, value: 40 }, { at: 1, value: 140, easing: "spring(0.5)" } ] }',
    ]);
    const movie = resolveMovie(t, {});
    const p = planRender(movie, { visuals: { 's0.l0': { kind: 'still', path: '/r/shape.png', width: 60, height: 20, dx: 0, dy: 0 } }, audio: {} });
    expect(p.scenes[0].layers[0].look).toEqual({
      keyframes: { x: [{ at: 0, value: 0 }, { at: 1, value: 100, easing: 'spring(0.5)' }] },
      rotation: 15,
      filters: { grayscale: true },
      shadow: { x: 6, y: 6, blur: 8, color: '#00000099' },
      blendMode: 'screen',
    });
  });
});

describe('looks: hostile sizes are refused at load', () => {
  it('a drop shadow further than 1000 px away is refused, not a canvas of that size', () => {
    const movie = (shadow: unknown) => ({ canvas: { width: 64, height: 64 }, scenes: [{ duration: 1, layers: [{ type: 'solid', color: '#ff0000', shadow }] }] });
    expect(movieSchema.safeParse(movie({ x: 1000, y: -1000 })).success).toBe(true);
    const refused = movieSchema.safeParse(movie({ x: 1e9 }));
    expect(refused.success).toBe(false);
    expect(JSON.stringify(refused.error?.issues)).toMatch(/must be ≤ 1000/);
  });

  it('infinite numbers (YAML .inf), boxes over 8192 px, absurd positions and text shadows far away are refused at load, naming the field', () => {
    const movie = (layer: Record<string, unknown>) => ({ canvas: { width: 64, height: 64 }, scenes: [{ duration: 1, layers: [{ type: 'solid', color: '#ff0000', ...layer }] }] });
    const problem = (layer: Record<string, unknown>) => {
      const r = movieSchema.safeParse(movie(layer));
      return r.success ? 'accepted' : JSON.stringify(r.error.issues.map((i) => [i.path.join('.'), i.message]));
    };
    expect(problem({ keyframes: { x: [{ at: 0, value: 0 }, { at: Infinity, value: 5 }] } })).toMatch(/finite/);
    expect(problem({ x: -Infinity })).toMatch(/finite/);
    expect(problem({ width: 9000, height: 10 })).toMatch(/≤ 8192/);
    expect(problem({ x: 1e30 })).toMatch(/≤ 100000/);
    expect(problem({ width: 8192, height: 8192, x: -100000 })).toBe('accepted');
    const text = (shadow: unknown) => movieSchema.safeParse({ canvas: { width: 64, height: 64 }, scenes: [{ duration: 1, layers: [{ type: 'text', text: 'a', shadow }] }] }).success;
    expect(text({ x: 4, y: 4, blur: 6 })).toBe(true);
    expect(text({ x: 50000 })).toBe(false);
    expect(text({ blur: 1e6 })).toBe(false);
  });
});

