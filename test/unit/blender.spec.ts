import { blenderFailure, type BlenderRunEnd } from '../../src/repositories/blender-failure';
import { resolvedBlenderBlockSchema } from '../../src/engines/blender/blender.schema';
import { frameFile } from '../../src/engines/blender/blender-args';
import { blenderEnv } from '../../src/repositories/blender.repository';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isPermanent, MontageError } from '../../src/common/errors';
import { buildRenderArgs } from '../../src/compiler/ffmpeg-args';
import { framesPlan, type PlannedLayer, type RenderPlan } from '../../src/compiler/render-plan';
import { resolveMovie } from '../../src/compiler/resolve';
import type { ResolvedBlenderScene } from '../../src/compiler/resolve-blender';
import { loadConfig } from '../../src/config/config';
import { checkBindings, type SceneInventory } from '../../src/engines/blender/binding-check';
import { type BlenderJob, blenderJob, blenderQueryArgs, blenderRenderArgs, blenderServeArgs, MAX_JOB_BYTES, serveChunkLine } from '../../src/engines/blender/blender-args';
import { blenderErrorSummary, LineSplitter, parseBlenderLine } from '../../src/engines/blender/blender-log';
import { BlenderScenesService, SCENE_SCRIPT } from '../../src/engines/blender/blender-scenes.service';
import { type BlenderBlock, blenderBlockSchema } from '../../src/engines/blender/blender.schema';
import { chunkTiming, planFrameChunks, sceneTimingKey } from '../../src/engines/blender/frame-chunks';
import { EngineName } from '../../src/engines/engine';
import { queueName } from '../../src/jobs/job.types';
import type { BlenderRepository } from '../../src/repositories/blender.repository';
import type { FontsRepository } from '../../src/repositories/fonts.repository';
import { TemplateFilesRepository } from '../../src/repositories/template-files.repository';
import type { LoadedTemplate } from '../../src/templates/template.types';
import { TemplatesService } from '../../src/templates/templates.service';

// ---- fixtures ------------------------------------------------------------------------------

const SETTINGS: ResolvedBlenderScene['settings'] = {
  engine: 'CYCLES',
  samples: 16,
  device: 'CPU',
  denoise: false,
  transparent: false,
  frameStart: 1,
};

function scene(overrides: Partial<ResolvedBlenderScene> = {}): ResolvedBlenderScene {
  return {
    scene: { kind: 'blend', path: '/templates/p/m/scene.blend' },
    settings: SETTINGS,
    bindings: [
      { type: 'text', object: 'Title', body: 'Hello Ada' },
      { type: 'image', image: 'Poster', src: { kind: 'url', url: 'https://example.com/a.png' } },
      { type: 'material', material: 'TitleMaterial', input: 'Base Color', value: '#ff6a00' },
      { type: 'image', image: 'Logo', src: { kind: 'file', path: '/templates/p/m/logo.png' } },
    ],
    ...overrides,
  };
}

const CANVAS = { width: 640, height: 360, fps: 24 };
const SCRIPT = '/app/engines/blender/python/montage_scene.py';
const HEAD = ['--factory-startup', '-b', '-Y', '--python-exit-code', '3'];

function renderCommand(overrides: Partial<Parameters<typeof blenderRenderArgs>[0]> = {}): Parameters<typeof blenderRenderArgs>[0] {
  return {
    scene: { kind: 'blend', path: '/templates/p/m/scene.blend' },
    script: SCRIPT,
    outputDir: '/tmp/montage-blender/p-m-0',
    frames: { start: 1, end: 12 },
    device: 'CPU',
    threads: 0,
    job: { mode: 'render', settings: { ...SETTINGS, ...CANVAS }, bindings: [{ type: 'text', object: 'Title', body: 'Hi' }] },
    ...overrides,
  };
}

// ---- 1. the command line -------------------------------------------------------------------

describe('blenderRenderArgs', () => {
  it('a .blend scene: the exact argument array, the file before our script and the job JSON last', () => {
    const command = renderCommand({ frames: { start: 5, end: 16 }, device: 'CUDA', threads: 4 });
    expect(blenderRenderArgs(command)).toEqual([
      '--factory-startup',
      '-b',
      '-Y',
      '--python-exit-code', '3',
      '/templates/p/m/scene.blend',
      '-P', SCRIPT,
      '-t', '4',
      '-o', '/tmp/montage-blender/p-m-0/f_#####',
      '-F', 'PNG',
      '-x', '1',
      '-s', '5',
      '-e', '16',
      '-a',
      '--',
      '--cycles-device', 'CUDA',
      JSON.stringify(command.job),
    ]);
  });

  it('a .py scene is run with -P before our script, never loaded as a file', () => {
    const args = blenderRenderArgs(renderCommand({ scene: { kind: 'script', path: '/templates/p/m/scene.py' } }));
    expect(args.slice(0, 9)).toEqual([...HEAD, '-P', '/templates/p/m/scene.py', '-P', SCRIPT]);
    expect(args.filter((a) => a === '-P')).toHaveLength(2);
    expect(args).not.toContain('/templates/p/m/scene.blend');
  });

  it('order: -Y and --python-exit-code before the file; -o before -a; -s/-e/-a right before --; the job after --cycles-device', () => {
    const args = blenderRenderArgs(renderCommand());
    const at = (a: string) => args.indexOf(a);
    expect(at('-Y')).toBeLessThan(at('/templates/p/m/scene.blend'));
    expect(at('--python-exit-code')).toBeLessThan(at('-P'));
    expect(args[at('--python-exit-code') + 1]).toBe('3');
    expect(at('-o')).toBeLessThan(at('-a'));
    expect(args.slice(at('-s'), at('--') + 1)).toEqual(['-s', '1', '-e', '12', '-a', '--']);
    expect(args.slice(at('--'))).toEqual(['--', '--cycles-device', 'CPU', args[args.length - 1]]);
    expect(JSON.parse(args[args.length - 1])).toEqual(renderCommand().job);
  });

  it('one frame (start = end) is a valid range', () => {
    const args = blenderRenderArgs(renderCommand({ frames: { start: 7, end: 7 } }));
    expect(args.slice(args.indexOf('-s'), args.indexOf('-a'))).toEqual(['-s', '7', '-e', '7']);
  });

  it.each([
    ['end before start', { start: 5, end: 4 }],
    ['a fractional start', { start: 1.5, end: 4 }],
    ['a fractional end', { start: 1, end: 4.5 }],
    ['NaN', { start: Number.NaN, end: 4 }],
    ['Infinity', { start: 1, end: Number.POSITIVE_INFINITY }],
  ])('%s → throws', (_what, frames) => {
    expect(() => blenderRenderArgs(renderCommand({ frames }))).toThrow(/invalid frame range/);
  });

  it('a job of exactly MAX_JOB_BYTES passes; one byte more throws', () => {
    const job = (body: string): BlenderJob => ({ mode: 'render', settings: { ...SETTINGS, ...CANVAS }, bindings: [{ type: 'text', object: 'Title', body }] });
    const base = Buffer.byteLength(JSON.stringify(job('')));
    const fits = job('x'.repeat(MAX_JOB_BYTES - base));
    expect(Buffer.byteLength(JSON.stringify(fits))).toBe(MAX_JOB_BYTES);
    expect(blenderRenderArgs(renderCommand({ job: fits })).at(-1)).toBe(JSON.stringify(fits));
    expect(() => blenderRenderArgs(renderCommand({ job: job('x'.repeat(MAX_JOB_BYTES - base + 1)) }))).toThrow(
      new RegExp(`too long to pass to Blender \\(${MAX_JOB_BYTES + 1} bytes, at most ${MAX_JOB_BYTES}\\)`),
    );
  });

  it('the limit is in bytes, not characters (multi-byte text)', () => {
    const body = 'é'.repeat(Math.ceil(MAX_JOB_BYTES / 2) + 10); // fewer characters than the limit, more bytes
    expect(body.length).toBeLessThan(MAX_JOB_BYTES);
    const job: BlenderJob = { mode: 'render', bindings: [{ type: 'text', object: 'Title', body }] };
    expect(() => blenderRenderArgs(renderCommand({ job }))).toThrow(/too long to pass to Blender/);
  });

  it('MAX_JOB_BYTES is one less than Linux MAX_ARG_STRLEN (the terminating NUL)', () => {
    expect(MAX_JOB_BYTES).toBe(32 * 4096 - 1);
  });
});

describe('blenderQueryArgs', () => {
  it('devices: no scene, no output, no frames; only the mode after --', () => {
    expect(blenderQueryArgs(SCRIPT, 'devices')).toEqual([...HEAD, '-P', SCRIPT, '--', '{"mode":"devices"}']);
  });

  it('inventory of a .blend: the file, then our script', () => {
    expect(blenderQueryArgs(SCRIPT, 'inventory', { kind: 'blend', path: '/t/scene.blend' })).toEqual([...HEAD, '/t/scene.blend', '-P', SCRIPT, '--', '{"mode":"inventory"}']);
  });

  it('inventory of a .py scene: the scene script, then ours', () => {
    const args = blenderQueryArgs(SCRIPT, 'inventory', { kind: 'script', path: '/t/scene.py' });
    expect(args).toEqual([...HEAD, '-P', '/t/scene.py', '-P', SCRIPT, '--', '{"mode":"inventory"}']);
    for (const renderOnly of ['-o', '-a', '-s', '-e', '-F', '--cycles-device']) expect(args).not.toContain(renderOnly);
  });
});

describe('blenderServeArgs and serveChunkLine (a Blender kept for the next chunk)', () => {
  const command = () => {
    const { frames: _frames, outputDir: _outputDir, ...rest } = renderCommand({ device: 'OPTIX', threads: 8 });
    return rest;
  };

  it('the scene, -t before our script (it renders), the job in mode serve after --; no -o/-s/-e/-a', () => {
    const c = command();
    expect(blenderServeArgs(c)).toEqual([
      ...HEAD,
      '/templates/p/m/scene.blend',
      '-t', '8',
      '-P', SCRIPT,
      '--',
      '--cycles-device', 'OPTIX',
      JSON.stringify({ ...c.job, mode: 'serve' }),
    ]);
    const args = blenderServeArgs(c);
    for (const renderOnly of ['-o', '-a', '-s', '-e']) expect(args).not.toContain(renderOnly);
    expect(c.job.mode).toBe('render'); // the caller's job is not changed
  });

  it('a .py scene runs before -t and our script', () => {
    const args = blenderServeArgs({ ...command(), scene: { kind: 'script', path: '/t/scene.py' } });
    expect(args.slice(0, 11)).toEqual([...HEAD, '-P', '/t/scene.py', '-t', '8', '-P', SCRIPT]);
  });

  it('the job is held to MAX_JOB_BYTES like a render', () => {
    const job: BlenderJob = { mode: 'render', bindings: [{ type: 'text', object: 'T', body: 'x'.repeat(MAX_JOB_BYTES) }] };
    expect(() => blenderServeArgs({ ...command(), job })).toThrow(/too long to pass to Blender/);
  });

  it('a chunk is one JSON line: scene frames (inclusive) and the folder', () => {
    expect(serveChunkLine({ start: 5, end: 16 }, '/tmp/f')).toBe('{"start":5,"end":16,"dir":"/tmp/f"}\n');
    expect(JSON.parse(serveChunkLine({ start: 1, end: 1 }, '/tmp/f'))).toEqual({ start: 1, end: 1, dir: '/tmp/f' });
    const odd = serveChunkLine({ start: 1, end: 2 }, '/tmp/a\nb"c');
    expect(odd.split('\n')).toEqual([expect.any(String), '']); // a newline in the folder cannot end the line early
    expect(JSON.parse(odd).dir).toBe('/tmp/a\nb"c');
  });

  it.each([
    { start: 5, end: 4 },
    { start: 1.5, end: 4 },
    { start: 1, end: Number.NaN },
  ])('an invalid chunk %p throws', (frames) => {
    expect(() => serveChunkLine(frames, '/tmp/f')).toThrow(/invalid frame range/);
  });
});

describe('blenderJob', () => {
  const images = { 1: '/data/cache/ab12.png', 3: '/templates/p/m/logo.png' };

  it('image bindings become {type, image, path}; the others are copied as they are', () => {
    const s = scene();
    const job = blenderJob(s, CANVAS, images);
    expect(job.mode).toBe('render');
    expect(job.bindings).toEqual([
      { type: 'text', object: 'Title', body: 'Hello Ada' },
      { type: 'image', image: 'Poster', path: '/data/cache/ab12.png' },
      { type: 'material', material: 'TitleMaterial', input: 'Base Color', value: '#ff6a00' },
      { type: 'image', image: 'Logo', path: '/templates/p/m/logo.png' },
    ]);
    // no media reference travels to Blender: only local paths
    expect(job.bindings?.[1]).not.toHaveProperty('src');
    expect(JSON.stringify(job)).not.toContain('https://');
    // copies, not the resolved movie's own objects
    expect(job.bindings?.[0]).not.toBe(s.bindings[0]);
  });

  it('settings are merged with the canvas', () => {
    const job = blenderJob(scene({ settings: { ...SETTINGS, camera: 'Cam2', samples: 64 } }), CANVAS, images);
    expect(job.settings).toEqual({ ...SETTINGS, camera: 'Cam2', samples: 64, width: 640, height: 360, fps: 24 });
  });

  it('an image binding without its local file throws, naming the binding', () => {
    expect(() => blenderJob(scene(), CANVAS, { 1: '/data/cache/ab12.png' })).toThrow('image binding 3 has no local file');
    expect(() => blenderJob(scene(), CANVAS, {})).toThrow('image binding 1 has no local file');
  });

  it('a scene without image bindings needs no files', () => {
    const job = blenderJob(scene({ bindings: [{ type: 'object', object: 'Logo', visible: false }] }), CANVAS, {});
    expect(job.bindings).toEqual([{ type: 'object', object: 'Logo', visible: false }]);
  });
});

// ---- 2. Blender's output -------------------------------------------------------------------

describe('parseBlenderLine', () => {
  it.each([
    ["Saved: '/tmp/x/f_00001.png'", { kind: 'saved', path: '/tmp/x/f_00001.png' }],
    ["Saved: '/tmp/with space/f_00012.png'   ", { kind: 'saved', path: '/tmp/with space/f_00012.png' }],
    [
      'MONTAGE_ERROR {"binding":2,"message":"object \\"Title\\" is not in the scene (it has: Cube, Camera)"}',
      { kind: 'binding-error', binding: 2, message: 'object "Title" is not in the scene (it has: Cube, Camera)' },
    ],
    ['MONTAGE_DEVICE {"type":"CUDA","devices":["NVIDIA H200"]}', { kind: 'device', type: 'CUDA', devices: ['NVIDIA H200'] }],
    ['MONTAGE_DEVICE {"type":"CPU"}', { kind: 'device', type: 'CPU', devices: [] }],
    ['MONTAGE_CHUNK {"done":true}', { kind: 'chunk-done' }],
    [
      'MONTAGE_INVENTORY {"version":"4.2.0","objects":{"Title":"FONT"},"images":[],"viewLayers":["ViewLayer"],"camera":null}',
      { kind: 'json', tag: 'MONTAGE_INVENTORY', value: { version: '4.2.0', objects: { Title: 'FONT' }, images: [], viewLayers: ['ViewLayer'], camera: null } },
    ],
    [
      'MONTAGE_DEVICES {"version":"4.2.0","devices":{"CPU":["CPU"],"CUDA":["NVIDIA H200"]}}',
      { kind: 'json', tag: 'MONTAGE_DEVICES', value: { version: '4.2.0', devices: { CPU: ['CPU'], CUDA: ['NVIDIA H200'] } } },
    ],
  ])('%s', (line, event) => {
    expect(parseBlenderLine(line)).toEqual(event);
  });

  it('a setting error (no binding index) has no binding field', () => {
    const event = parseBlenderLine('MONTAGE_ERROR {"setting":true,"message":"the scene has no camera"}');
    expect(event).toEqual({ kind: 'binding-error', message: 'the scene has no camera' });
    expect(event).not.toHaveProperty('binding');
  });

  it('an error without a message gets a generic one; a non-numeric binding is dropped', () => {
    expect(parseBlenderLine('MONTAGE_ERROR {"binding":"2"}')).toEqual({ kind: 'binding-error', message: 'a binding does not fit the scene' });
  });

  it.each([
    ['a progress line', 'Fra:1 Mem:31.97M (Peak 33.06M) | Time:00:00.42 | Remaining:00:01.09 | Mem:3.16M, Peak:3.16M | Scene, ViewLayer | Sample 1/4'],
    ['a timing line', ' Time: 00:01.93 (Saving: 00:00.01)'],
    ['Blender quitting', 'Blender quit'],
    ['malformed JSON', 'MONTAGE_INVENTORY {"objects":{"Title":'],
    ['not JSON at all', 'MONTAGE_DEVICE {not json}'],
    ['a JSON array', 'MONTAGE_INVENTORY [1,2]'],
    ['no payload', 'MONTAGE_ERROR'],
    ['a tag not at the start of the line', 'Info: MONTAGE_ERROR {"message":"x"}'],
    ['an unknown tag', 'MONTAGE_OTHER {"a":1}'],
    ['a chunk end without JSON', 'MONTAGE_CHUNK done'],
    ['an unquoted Saved path', 'Saved: /tmp/x/f_00001.png'],
    ['an empty line', ''],
  ])('%s → undefined', (_what, line) => {
    expect(parseBlenderLine(line)).toBeUndefined();
  });
});

describe('LineSplitter', () => {
  it('joins lines across chunk boundaries and keeps the rest until the end', () => {
    const s = new LineSplitter();
    expect(s.push('Fra:1 Mem:')).toEqual([]);
    expect(s.push("3M\nSaved: '/tmp/x/f_")).toEqual(['Fra:1 Mem:3M']);
    expect(s.push("00001.png'\nMONTAGE_DEVICE {\"type\"")).toEqual(["Saved: '/tmp/x/f_00001.png'"]);
    expect(s.push(':"CPU"}')).toEqual([]);
    expect(s.end()).toEqual(['MONTAGE_DEVICE {"type":"CPU"}']);
    expect(s.end()).toEqual([]);
  });

  it('strips \\r of \\r\\n, also when \\r and \\n arrive in different chunks', () => {
    const s = new LineSplitter();
    expect(s.push('one\r\ntwo\r')).toEqual(['one']);
    expect(s.push('\nthree\r\n')).toEqual(['two', 'three']);
    expect(s.end()).toEqual([]);
  });

  it('several lines in one chunk, empty lines kept', () => {
    const s = new LineSplitter();
    expect(s.push('a\n\nb\n')).toEqual(['a', '', 'b']);
    expect(s.end()).toEqual([]);
  });

  it('what each line parses to, from a chunked stream', () => {
    const s = new LineSplitter();
    const text = "Fra:1 Mem:1M | Sample 1/4\r\nSaved: '/tmp/x/f_00001.png'\r\n Time: 00:00.50\r\nSaved: '/tmp/x/f_00002.png'\r\n";
    const lines: string[] = [];
    for (let i = 0; i < text.length; i += 7) lines.push(...s.push(text.slice(i, i + 7)));
    lines.push(...s.end());
    expect(lines.map(parseBlenderLine).filter(Boolean)).toEqual([
      { kind: 'saved', path: '/tmp/x/f_00001.png' },
      { kind: 'saved', path: '/tmp/x/f_00002.png' },
    ]);
  });
});

describe('blenderErrorSummary', () => {
  it('a Python traceback: its exception line, without the Traceback and File lines', () => {
    const lines = [
      'Blender 4.2.0 (hash a51f293548ad built 2024-07-16 06:27:02)',
      'Read blend: "/templates/p/m/scene.blend"',
      'Traceback (most recent call last):',
      '  File "/app/python/montage_scene.py", line 256, in <module>',
      '    main()',
      '  File "/app/python/montage_scene.py", line 240, in main',
      '    raise RuntimeError("boom")',
      'RuntimeError: boom',
      'Blender quit',
    ];
    expect(blenderErrorSummary(lines)).toBe('RuntimeError: boom');
  });

  it('Error: lines and Cycles without the device', () => {
    expect(blenderErrorSummary(['Fra:1 Mem:1M', 'Error: Cannot read file "/t/scene.blend": No such file or directory', 'Blender quit'])).toBe(
      'Error: Cannot read file "/t/scene.blend": No such file or directory',
    );
    expect(blenderErrorSummary(['Blender 4.2.0', 'Found no Cycles device of the specified type', 'Blender quit'])).toBe('Found no Cycles device of the specified type');
  });

  it.each([
    ['Segmentation fault (core dumped)'],
    ['Killed'],
    ['KeyError: \'bpy_prop_collection[key]: key "Title" not found\''],
  ])('picks %s', (line) => {
    expect(blenderErrorSummary(['Fra:3 Mem:1M | Sample 2/16', `  ${line}  `, 'Blender quit'])).toBe(line);
  });

  it('repeated lines once; at most `max`, the last ones, joined with |', () => {
    const lines = ['Error: a', 'Error: a', 'Error: b', 'Error: c', 'Error: d', 'Error: e'];
    expect(blenderErrorSummary(lines)).toBe('Error: b | Error: c | Error: d | Error: e');
    expect(blenderErrorSummary(lines, 2)).toBe('Error: d | Error: e');
    expect(blenderErrorSummary(['Error: a', 'Error: a'])).toBe('Error: a');
  });

  it('at most 600 characters', () => {
    expect(blenderErrorSummary([`Error: ${'x'.repeat(2000)}`])).toHaveLength(600);
  });

  it('no error line: the last two lines without progress and quit noise', () => {
    const lines = ['Blender 4.2.0', 'Fra:1 Mem:1M | Sample 1/4', 'odd thing one', 'odd thing two', 'Fra:2 Mem:1M | Sample 2/4', ' Time: 00:01.00 (Saving: 00:00.00)', 'Blender quit', ''];
    expect(blenderErrorSummary(lines)).toBe('odd thing one | odd thing two');
  });

  it('nothing but noise → a sentence that says so', () => {
    expect(blenderErrorSummary([])).toBe('Blender exited without saying why');
    expect(blenderErrorSummary(['Fra:1 Mem:1M', 'Blender quit', '   '])).toBe('Blender exited without saying why');
  });
});

// ---- 3. chunks of frames -------------------------------------------------------------------

const lengths = (chunks: Array<{ from: number; to: number }>) => chunks.map((c) => c.to - c.from);

describe('planFrameChunks', () => {
  const base = { parallel: 2, defaultChunkFrames: 12, targetChunkSeconds: 60 };

  it('before any timing: about the default size, as many chunks as that gives (rounded), sizes within one frame', () => {
    expect(lengths(planFrameChunks(96, base))).toEqual([12, 12, 12, 12, 12, 12, 12, 12]);
    // 100 / 12 = 8.3 → 8 chunks of 12–13: no tiny last chunk that costs a whole start-up
    expect(lengths(planFrameChunks(100, base))).toEqual([12, 13, 12, 13, 12, 13, 12, 13]);
    expect(planFrameChunks(100, base).at(-1)).toEqual({ from: 87, to: 100 });
  });

  it('never fewer chunks than lanes while frames allow: no lane left without work', () => {
    expect(lengths(planFrameChunks(9, { ...base, parallel: 4, defaultChunkFrames: 100 }))).toEqual([2, 2, 2, 3]);
    expect(planFrameChunks(48, { ...base, parallel: 14 })).toHaveLength(14);
    expect(lengths(planFrameChunks(7, { ...base, parallel: 3, defaultChunkFrames: 100 }))).toEqual([2, 2, 3]);
    expect(lengths(planFrameChunks(3, { ...base, parallel: 8 }))).toEqual([1, 1, 1]);
  });

  it('adaptive: targetChunkSeconds / secondsPerFrame frames, rounded', () => {
    expect(lengths(planFrameChunks(100, { ...base, secondsPerFrame: 2 }))).toEqual([25, 25, 25, 25]); // 30 wanted: round(3.33) = 3, to the nearest multiple of 2 lanes: 4
    expect(lengths(planFrameChunks(120, { ...base, parallel: 3, secondsPerFrame: 2 }))).toEqual([40, 40, 40]); // 4 → 3 (the nearest multiple of 3 lanes)
    // 48 frames at 0.954 s each, 10 s chunks: 10 frames wanted, 5 chunks → 6 (3 per lane), not 28/20 frames per lane
    expect(lengths(planFrameChunks(48, { ...base, targetChunkSeconds: 10, secondsPerFrame: 0.954 }))).toEqual([8, 8, 8, 8, 8, 8]);
    expect(planFrameChunks(200, { ...base, parallel: 1, secondsPerFrame: 2.9 })).toHaveLength(10); // round(20.69) = 21 wanted: round(9.5) = 10
    expect(lengths(planFrameChunks(5, { ...base, secondsPerFrame: 100 }))).toEqual([1, 1, 1, 2]); // round(0.6) = 1 wanted, never 0; 4 chunks: a multiple of 2 lanes
  });

  it('fast frames: no more than total / parallel per chunk, so every lane has work', () => {
    expect(planFrameChunks(100, { ...base, secondsPerFrame: 0.01 })).toEqual([
      { from: 0, to: 50 },
      { from: 50, to: 100 },
    ]);
    expect(lengths(planFrameChunks(48, { ...base, parallel: 4, defaultChunkFrames: 1000 }))).toEqual([12, 12, 12, 12]);
  });

  it('a timing of 0 or less is no timing: the default size', () => {
    expect(planFrameChunks(100, { ...base, secondsPerFrame: 0 })).toEqual(planFrameChunks(100, base));
    expect(planFrameChunks(100, { ...base, secondsPerFrame: -3 })).toEqual(planFrameChunks(100, base));
  });

  it('parallel 0 counts as 1', () => {
    expect(planFrameChunks(10, { ...base, parallel: 0, defaultChunkFrames: 100 })).toEqual([{ from: 0, to: 10 }]);
  });

  it.each([0, -5, 2.5, Number.NaN])('totalFrames %p → no chunks', (total) => {
    expect(planFrameChunks(total, base)).toEqual([]);
  });

  it('property: contiguous, non-empty, every frame exactly once, sizes bounded, lanes filled as the size allows', () => {
    // plain checks, collected: an expect per case would take tens of seconds
    const problems: string[] = [];
    let cases = 0;
    for (let total = 1; total <= 160; total++) {
      for (const parallel of [1, 2, 3, 4, 5, 7, 8, 16, 200]) {
        for (const defaultChunkFrames of [1, 5, 12, 500]) {
          for (const secondsPerFrame of [undefined, 0.05, 1, 7, 90]) {
            cases++;
            const options = { parallel, defaultChunkFrames, targetChunkSeconds: 60, secondsPerFrame };
            const chunks = planFrameChunks(total, options);
            const bad = (what: string) => problems.push(`${what}: ${JSON.stringify({ total, ...options })} → ${JSON.stringify(chunks)}`);
            if (chunks.length === 0) {
              bad('no chunks');
              continue;
            }
            if (chunks[0].from !== 0 || chunks[chunks.length - 1].to !== total) bad('not from 0 to total');
            const seen = new Array<number>(total).fill(0);
            chunks.forEach((c, i) => {
              if (c.to <= c.from) bad('an empty chunk');
              if (i > 0 && c.from !== chunks[i - 1].to) bad('not contiguous');
              for (let f = Math.max(0, c.from); f < Math.min(total, c.to); f++) seen[f]++;
            });
            if (seen.some((n) => n !== 1)) bad('a frame not covered exactly once');
            // sizes within one frame of each other; at least min(parallel, total) chunks (every lane has work)
            const sizes = chunks.map((c) => c.to - c.from);
            if (Math.max(...sizes) - Math.min(...sizes) > 1) bad('sizes more than a frame apart');
            if (chunks.length < Math.min(Math.max(1, parallel), total)) bad('fewer chunks than lanes');
            // a multiple of the lanes (every lane the same share) while frames allow, near what the wanted size gives
            const lanes = Math.max(1, parallel);
            if (total >= lanes && chunks.length % lanes !== 0) bad(`${chunks.length} chunks on ${lanes} lanes`);
            const wanted = secondsPerFrame ? Math.round(60 / secondsPerFrame) : defaultChunkFrames;
            const byWanted = Math.round(total / Math.max(1, wanted));
            const clamped = chunks.length + lanes > total; // no room for another round of lanes
            if (total >= lanes && !clamped && Math.abs(chunks.length - byWanted) > Math.max(lanes / 2, lanes - byWanted)) bad(`${chunks.length} chunks, far from ${byWanted}`);
          }
        }
      }
    }
    expect(problems.slice(0, 5)).toEqual([]);
    expect(cases).toBe(160 * 9 * 4 * 5);
  });
});

describe('chunkTiming', () => {
  it('seconds per frame: the median gap between saved frames; start-up: the first frame less that', () => {
    expect(chunkTiming(1000, [6000, 7000, 8200, 9100])).toEqual({ secondsPerFrame: 1, startupSeconds: 4, totalSeconds: 8.1 });
  });

  it('an even number of gaps takes the upper median; an outlier does not move it', () => {
    expect(chunkTiming(0, [3000, 4000, 6000, 7000, 9000])).toEqual({ secondsPerFrame: 2, startupSeconds: 1, totalSeconds: 9 });
    expect(chunkTiming(0, [5000, 6000, 7000, 8000, 38000])?.secondsPerFrame).toBe(1);
  });

  it('one frame (a still): no timing, its frame cannot be told from the start-up', () => {
    expect(chunkTiming(10_000, [12_500])).toBeUndefined();
  });

  it('a first frame faster than the median: start-up 0, never negative', () => {
    expect(chunkTiming(0, [500, 2500, 4500])).toEqual({ secondsPerFrame: 2, startupSeconds: 0, totalSeconds: 4.5 });
  });

  it('no frame saved → undefined', () => {
    expect(chunkTiming(0, [])).toBeUndefined();
  });
});

describe('sceneTimingKey', () => {
  const canvas = { width: 640, height: 360 };

  it('stable for equal inputs, named by template and version', () => {
    const key = sceneTimingKey('p/m', 'v1', { ...SETTINGS }, canvas);
    expect(key).toMatch(/^blender:p\/m@v1:[0-9a-f]{12}$/);
    expect(sceneTimingKey('p/m', 'v1', { ...SETTINGS }, { ...canvas })).toBe(key);
  });

  it('other settings, size, template or version → another key', () => {
    const key = sceneTimingKey('p/m', 'v1', SETTINGS, canvas);
    const others = [
      sceneTimingKey('p/m', 'v1', { ...SETTINGS, samples: 32 }, canvas),
      sceneTimingKey('p/m', 'v1', { ...SETTINGS, device: 'CUDA' }, canvas),
      sceneTimingKey('p/m', 'v1', SETTINGS, { width: 1280, height: 720 }),
      sceneTimingKey('p/m', 'v1', SETTINGS, { width: 360, height: 640 }),
      sceneTimingKey('p/m', 'v1', SETTINGS, { width: 640, height: 480 }),
      sceneTimingKey('p/m', 'v2', SETTINGS, canvas),
      sceneTimingKey('p/n', 'v1', SETTINGS, canvas),
    ];
    expect(new Set([key, ...others]).size).toBe(others.length + 1);
  });

  it('only the width and height of the canvas count (a whole movie may be passed)', () => {
    const movie = { width: 640, height: 360, fps: 24, totalFrames: 48 };
    const other = { ...movie, fps: 60, totalFrames: 9 };
    expect(sceneTimingKey('p/m', 'v1', SETTINGS, movie)).toBe(sceneTimingKey('p/m', 'v1', SETTINGS, other));
  });
});

// ---- 4. bindings against the scene ---------------------------------------------------------

const INVENTORY: SceneInventory = {
  version: '4.2.0',
  objects: { Title: 'FONT', Logo: 'MESH', Camera: 'CAMERA', Side: 'CAMERA', Key: 'LIGHT' },
  materials: {
    TitleMaterial: {
      nodes: {
        'Principled BSDF': { type: 'BSDF_PRINCIPLED', inputs: { 'Base Color': 'RGBA', Roughness: 'VALUE', Normal: 'VECTOR' } },
        'Material Output': { type: 'OUTPUT_MATERIAL', inputs: { Surface: 'SHADER' } },
      },
    },
    Glow: { nodes: { Emission: { type: 'EMISSION', inputs: { Color: 'RGBA', Strength: 'VALUE' } } } },
  },
  images: ['Poster', 'Logo'],
  viewLayers: ['ViewLayer', 'Foreground'],
  camera: 'Camera',
};

const at = (p: Array<string | number>) => `p/m/movie.yaml:${p.join('.')}`;
const block = (extra: Record<string, unknown>): BlenderBlock => blenderBlockSchema.parse({ scene: 'scene.blend', ...extra });
const check = (extra: Record<string, unknown>, inventory: SceneInventory = INVENTORY) => checkBindings(block(extra), inventory, at);

describe('checkBindings', () => {
  it('bindings that fit the scene: no errors', () => {
    expect(
      check({
        camera: 'Side',
        viewLayer: 'Foreground',
        bindings: [
          { type: 'text', object: 'Title', body: 'x' },
          { type: 'material', material: 'TitleMaterial', input: 'Base Color', value: '#ff0000' },
          { type: 'material', material: 'TitleMaterial', input: 'Roughness', value: 0.4 },
          { type: 'material', material: 'Glow', node: 'Emission', input: 'Strength', value: '2.5' },
          { type: 'image', image: 'Poster', src: 'https://example.com/a.png' },
          { type: 'object', object: 'Logo', visible: true, location: [0, 1, 2] },
          { type: 'property', name: 'speed', value: 3 },
          { type: 'property', name: 'speed', object: 'Key', value: 3 },
        ],
      }),
    ).toEqual([]);
  });

  it.each<[string, Record<string, unknown>, string, RegExp]>([
    ['an unknown object', { type: 'object', object: 'Cube', visible: false }, 'blender.bindings.0.object', /^object "Cube" is not in the scene \(it has: Title, Logo, Camera, Side, Key\)$/],
    ['an unknown text object', { type: 'text', object: 'Subtitle', body: 'x' }, 'blender.bindings.0.object', /^text object "Subtitle" is not in the scene \(it has: Title, Logo/],
    ['a text binding on a MESH', { type: 'text', object: 'Logo', body: 'x' }, 'blender.bindings.0.object', /^object "Logo" is a mesh, not a text object$/],
    ['an unknown property holder', { type: 'property', name: 'speed', object: 'Nope', value: 1 }, 'blender.bindings.0.object', /^object "Nope" is not in the scene/],
    ['an unknown material', { type: 'material', material: 'Steel', input: 'Roughness', value: 1 }, 'blender.bindings.0.material', /^material "Steel" is not in the scene \(it has: TitleMaterial, Glow\)$/],
    ['a material without a Principled BSDF and no node named', { type: 'material', material: 'Glow', input: 'Strength', value: 1 }, 'blender.bindings.0.material', /^material "Glow" has no Principled BSDF: name the node$/],
    ['an unknown node', { type: 'material', material: 'Glow', node: 'Mix', input: 'Strength', value: 1 }, 'blender.bindings.0.node', /^material "Glow" has no node "Mix" \(it has: Emission\)$/],
    ['an unknown input', { type: 'material', material: 'TitleMaterial', input: 'Metalness', value: 1 }, 'blender.bindings.0.input', /^node "Principled BSDF" of material "TitleMaterial" has no input "Metalness" \(it has: Base Color, Roughness, Normal\)$/],
    ['a number for a colour socket', { type: 'material', material: 'TitleMaterial', input: 'Base Color', value: 0.5 }, 'blender.bindings.0.value', /^input "Base Color" is a colour: give #rrggbb$/],
    ['a colour for a number socket', { type: 'material', material: 'Glow', node: 'Emission', input: 'Strength', value: '#ffffff' }, 'blender.bindings.0.value', /^input "Strength" is a number, not a colour$/],
    ['a socket that is neither', { type: 'material', material: 'TitleMaterial', input: 'Normal', value: 1 }, 'blender.bindings.0.input', /^input "Normal" is a vector: only colours and numbers are bound$/],
    ['an unknown image', { type: 'image', image: 'Backdrop', src: 'x.png' }, 'blender.bindings.0.image', /^image "Backdrop" is not in the scene \(it has: Poster, Logo\)$/],
  ])('%s', (_what, binding, field, message) => {
    expect(check({ bindings: [binding] })).toEqual([{ field: `p/m/movie.yaml:${field}`, message: expect.stringMatching(message) }]);
  });

  it('the explicit node of a material is checked, not its Principled BSDF', () => {
    expect(check({ bindings: [{ type: 'material', material: 'TitleMaterial', node: 'Material Output', input: 'Base Color', value: '#000000' }] })).toEqual([
      { field: 'p/m/movie.yaml:blender.bindings.0.input', message: 'node "Material Output" of material "TitleMaterial" has no input "Base Color" (it has: Surface)' },
    ]);
  });

  it('an unknown camera, a camera that is not one, an unknown view layer', () => {
    expect(check({ camera: 'Drone' })).toEqual([{ field: 'p/m/movie.yaml:blender.camera', message: expect.stringMatching(/^camera "Drone" is not in the scene \(it has: Title/) }]);
    expect(check({ camera: 'Key' })).toEqual([{ field: 'p/m/movie.yaml:blender.camera', message: 'object "Key" is a light, not a camera' }]);
    expect(check({ viewLayer: 'Background' })).toEqual([
      { field: 'p/m/movie.yaml:blender.viewLayer', message: 'view layer "Background" is not in the scene (it has: ViewLayer, Foreground)' },
    ]);
  });

  it('no camera in the scene and none named → an error at the scene; a named camera is enough', () => {
    const noCamera = { ...INVENTORY, camera: null };
    expect(check({}, noCamera)).toEqual([{ field: 'p/m/movie.yaml:blender.scene', message: 'the scene has no camera: add one or name it with `camera`' }]);
    expect(check({ camera: 'Side' }, noCamera)).toEqual([]);
  });

  it('errors of several bindings, each at its own index, in order; the list of names is cut at 12', () => {
    const many: SceneInventory = { ...INVENTORY, images: Array.from({ length: 20 }, (_, i) => `img${i}`) };
    const errors = check(
      {
        bindings: [
          { type: 'text', object: 'Title', body: 'ok' },
          { type: 'object', object: 'Ghost' },
          { type: 'image', image: 'Nope', src: 'a.png' },
        ],
      },
      many,
    );
    expect(errors.map((e) => e.field)).toEqual(['p/m/movie.yaml:blender.bindings.1.object', 'p/m/movie.yaml:blender.bindings.2.image']);
    expect(errors[1].message).toBe(`image "Nope" is not in the scene (it has: ${Array.from({ length: 12 }, (_, i) => `img${i}`).join(', ')})`);
  });

  it('an empty scene says "none"', () => {
    const empty: SceneInventory = { version: '4.2.0', objects: {}, materials: {}, images: [], viewLayers: [], camera: null };
    expect(check({ camera: 'Camera', bindings: [{ type: 'image', image: 'A', src: 'a.png' }] }, empty)).toEqual([
      { field: 'p/m/movie.yaml:blender.bindings.0.image', message: 'image "A" is not in the scene (it has: none)' },
      { field: 'p/m/movie.yaml:blender.camera', message: 'camera "Camera" is not in the scene (it has: none)' },
    ]);
  });

  it('templated names and values are skipped: they are known only with params', () => {
    expect(
      check({
        camera: '{{cam}}',
        viewLayer: '{{layer}}',
        bindings: [
          { type: 'text', object: '{{which}}', body: 'x' },
          { type: 'object', object: 'Obj {{n}}' },
          { type: 'image', image: '{{img}}', src: 'a.png' },
          { type: 'material', material: '{{mat}}', input: 'Nope', value: 1 },
          { type: 'material', material: 'Glow', node: '{{node}}', input: 'Nope', value: 1 },
          { type: 'material', material: 'TitleMaterial', input: '{{input}}', value: 1 },
          { type: 'material', material: 'Glow', node: 'Emission', input: 'Strength', value: '{{strength}}' },
          { type: 'material', material: 'TitleMaterial', input: 'Base Color', value: '{{color}}' },
        ],
      }),
    ).toEqual([]);
  });

  it('the `at` callback gets the path of each error', () => {
    const spy = jest.fn((p: Array<string | number>) => `f.yaml:${p.length}`);
    const errors = checkBindings(block({ bindings: [{ type: 'object', object: 'Nope' }] }), INVENTORY, spy);
    expect(spy).toHaveBeenCalledWith(['blender', 'bindings', 0, 'object']);
    expect(errors).toEqual([{ field: 'f.yaml:4', message: expect.any(String) }]);
  });
});

// ---- 5. templates: load, check, resolve ----------------------------------------------------

const GOOD = `engine: blender
canvas: { width: 640, height: 360, fps: 24 }
duration: 2
variables:
  name: { type: string, default: Montage }
  color: { type: color, default: "#ff6a00" }
  photo: { type: image, default: poster.png }
  samples: { type: number, integer: true, min: 1, max: 64, default: 8 }
  show: { type: boolean, default: true }
blender:
  scene: scene.py
  samples: "{{samples}}"
  camera: Camera
  bindings:
    - type: text
      object: Title
      body: "Hello {{name}}"
    - type: material
      material: TitleMaterial
      input: Base Color
      value: "{{color}}"
    - type: image
      image: Poster
      src: "{{photo}}"
    - type: object
      object: Logo
      visible: "{{show}}"
      location: [0, "{{samples}}", 1.5]
    - type: image
      image: Logo
      src: logo.png
`;

/** project `b`: one folder per movie, its files. */
const MOVIES: Record<string, Record<string, string>> = {
  good: { 'movie.yaml': GOOD, 'scene.py': 'import bpy\n', 'poster.png': 'png', 'logo.png': 'png' },
  'no-block': { 'movie.yaml': 'engine: blender\ncanvas: { width: 640, height: 360 }\nduration: 2\n' },
  'with-scenes': {
    'movie.yaml': 'engine: blender\ncanvas: { width: 640, height: 360 }\nduration: 2\nscenes:\n  - layers: []\nblender:\n  scene: scene.py\n',
    'scene.py': '',
  },
  'composite-with-block': {
    'movie.yaml': 'canvas: { width: 640, height: 360 }\nscenes:\n  - duration: 1\nblender:\n  scene: scene.py\n',
    'scene.py': '',
  },
  'no-duration': { 'movie.yaml': 'engine: blender\ncanvas: { width: 640, height: 360 }\nblender:\n  scene: scene.py\n', 'scene.py': '' },
  'scene-missing': { 'movie.yaml': 'engine: blender\ncanvas: { width: 640, height: 360 }\nduration: 1\nblender:\n  scene: scene.blend\n' },
  'scene-in-folder': { 'movie.yaml': 'engine: blender\ncanvas: { width: 640, height: 360 }\nduration: 1\nblender:\n  scene: sub/scene.py\n' },
  'not-a-colour': {
    'movie.yaml': [
      'engine: blender',
      'canvas: { width: 640, height: 360 }',
      'duration: 1',
      'variables:',
      '  tint: { type: string, default: blue }',
      'blender:',
      '  scene: scene.py',
      '  bindings:',
      '    - type: material',
      '      material: M',
      '      input: Base Color',
      '      value: "{{tint}}"',
      '',
    ].join('\n'),
    'scene.py': '',
  },
  'unknown-binding': {
    'movie.yaml': 'engine: blender\ncanvas: { width: 640, height: 360 }\nduration: 1\nblender:\n  scene: scene.py\n  bindings:\n    - type: mesh\n      object: Logo\n',
    'scene.py': '',
  },
  'control-char': {
    'movie.yaml': 'engine: blender\ncanvas: { width: 640, height: 360 }\nduration: 1\nblender:\n  scene: scene.py\n  bindings:\n    - type: object\n      object: "Lo\\tgo"\n',
    'scene.py': '',
  },
  'bad-variable': {
    'movie.yaml': 'engine: blender\ncanvas: { width: 640, height: 360 }\nduration: 1\nvariables:\n  mood: { type: enum }\nblender:\n  scene: scene.py\n',
    'scene.py': '',
  },
  'templated-names': {
    'movie.yaml': [
      'engine: blender',
      'canvas: { width: 640, height: 360 }',
      'duration: 1',
      'variables:',
      '  which: { type: string, default: Title }',
      '  cam: { type: string, default: Camera }',
      '  img: { type: string, default: Poster }',
      'blender:',
      '  scene: scene.py',
      '  camera: "{{cam}}"',
      '  bindings:',
      '    - type: text',
      '      object: "{{which}}"',
      '      body: hi',
      '    - type: image',
      '      image: "{{img}}"',
      '      src: https://example.com/a.png',
      '',
    ].join('\n'),
    'scene.py': '',
  },
  composite: { 'movie.yaml': 'canvas: { width: 640, height: 360 }\nscenes:\n  - duration: 1\n    layers: [{ type: solid, color: "#112233" }]\n' },
};

describe('Blender movies through TemplatesService and resolveMovie', () => {
  let root: string;
  let dataDir: string;
  let service: TemplatesService;
  const sceneCheck = jest.fn(async (_template: LoadedTemplate) => [] as Array<{ field: string; message: string }>);

  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-blender-templates-'));
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-blender-data-'));
    for (const [movie, files] of Object.entries(MOVIES)) {
      const dir = path.join(root, 'b', movie);
      fs.mkdirSync(dir, { recursive: true });
      for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    }
    const config = loadConfig({ MONTAGE_TEMPLATES_DIR: root, MONTAGE_DATA_DIR: dataDir }, process.cwd());
    const fonts = { installedFamilies: async () => new Set(['dejavu sans']) } as unknown as FontsRepository;
    service = new TemplatesService(config, new TemplateFilesRepository(), fonts, { check: sceneCheck } as unknown as BlenderScenesService);
  });

  afterAll(() => {
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  beforeEach(() => sceneCheck.mockClear());

  async function loadError(movie: string): Promise<MontageError> {
    try {
      await service.load('b', movie);
    } catch (err) {
      expect(err).toBeInstanceOf(MontageError);
      return err as MontageError;
    }
    throw new Error(`expected b/${movie} not to load`);
  }

  it('a valid Blender movie resolves: engine blender, duration × fps frames, no scenes, params bound', async () => {
    const t = await service.load('b', 'good');
    expect(t.spec.engine).toBe('blender');
    const movie = resolveMovie(t, service.validateParams(t, { name: 'Ada', photo: 'https://example.com/a.png', samples: 12 }));
    expect(movie).toMatchObject({ templateId: 'b/good', engine: 'blender', width: 640, height: 360, fps: 24, totalFrames: 48, posterFrame: 24, scenes: [], audio: [] });
    expect(movie.blender).toEqual({
      scene: { kind: 'script', path: path.join(root, 'b', 'good', 'scene.py') },
      settings: { engine: 'CYCLES', samples: 12, device: 'CPU', denoise: false, transparent: false, frameStart: 1, camera: 'Camera' },
      bindings: [
        { type: 'text', object: 'Title', body: 'Hello Ada' },
        { type: 'material', material: 'TitleMaterial', input: 'Base Color', value: '#ff6a00' },
        { type: 'image', image: 'Poster', src: { kind: 'url', url: 'https://example.com/a.png' } },
        { type: 'object', object: 'Logo', visible: true, location: [0, 12, 1.5] },
        { type: 'image', image: 'Logo', src: { kind: 'file', path: path.join(root, 'b', 'good', 'logo.png') } },
      ],
    });
  });

  it('a media default that is a template file becomes {kind: file}; a boolean param becomes a boolean', async () => {
    const t = await service.load('b', 'good');
    const movie = resolveMovie(t, service.validateParams(t, { show: false }));
    expect(movie.blender?.bindings[2]).toEqual({ type: 'image', image: 'Poster', src: { kind: 'file', path: path.join(root, 'b', 'good', 'poster.png') } });
    expect(movie.blender?.bindings[3]).toMatchObject({ visible: false, location: [0, 8, 1.5] });
  });

  it('a movie without engine: blender has no blender scene', async () => {
    const movie = resolveMovie(await service.load('b', 'composite'), {});
    expect(movie.engine).toBe('ffmpeg-composite');
    expect(movie.blender).toBeUndefined();
    expect(movie.scenes).toHaveLength(1);
  });

  it.each<[string, number, RegExp]>([
    ['no-block', 1, /^engine: a Blender movie needs a `blender` block/],
    ['with-scenes', 5, /^scenes: a Blender movie has no scenes/],
    ['composite-with-block', 5, /^blender: a `blender` block needs `engine: blender`$/],
    ['no-duration', 1, /^engine: a Blender movie needs a `duration`/],
    ['scene-in-folder', 5, /^blender\.scene: expected a \.blend or \.py file at the top of the template folder$/],
    ['unknown-binding', 7, /^blender\.bindings\.0\.type: Invalid discriminator value/],
    ['control-char', 8, /^blender\.bindings\.0\.object: control characters are not allowed in names$/],
  ])('b/%s does not load: bad_input at b/%s/movie.yaml:%i', async (movie, line, message) => {
    const err = await loadError(movie);
    expect(err.kind).toBe('bad_input');
    expect(err.details).toContainEqual({ field: `b/${movie}/movie.yaml:${line}`, message: expect.stringMatching(message) });
    expect(await service.check('b', movie)).toContainEqual({ field: `b/${movie}/movie.yaml:${line}`, message: expect.stringMatching(message) });
  });

  it('a scene file that is not in the folder: an error at blender.scene', async () => {
    const t = await service.load('b', 'scene-missing');
    let err: unknown;
    try {
      resolveMovie(t, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MontageError);
    expect((err as MontageError).details).toEqual([{ field: 'b/scene-missing/movie.yaml:5', message: 'scene file "scene.blend" not found in the template folder' }]);
    expect(await service.check('b', 'scene-missing')).toEqual([{ field: 'b/scene-missing/movie.yaml:5', message: 'scene file "scene.blend" not found in the template folder' }]);
  });

  it('a binding value that is not a colour once the params are in: an error at its line', async () => {
    const t = await service.load('b', 'not-a-colour'); // "{{tint}}" loads: it may be a colour
    const expected = { field: 'b/not-a-colour/movie.yaml:12', message: expect.stringMatching(/^blender\.bindings\.0\.value: expected a colour .*\(after applying params\)$/) };
    expect(() => resolveMovie(t, { tint: 'blue' })).toThrow(MontageError);
    try {
      resolveMovie(t, { tint: 'blue' });
    } catch (err) {
      expect((err as MontageError).details).toEqual([expected]);
      expect((err as MontageError).message).toMatch(/^b\/not-a-colour: b\/not-a-colour\/movie\.yaml:12: /);
    }
    expect(resolveMovie(t, { tint: '#0000ff' }).blender?.bindings[0]).toMatchObject({ value: '#0000ff' });
    expect(await service.check('b', 'not-a-colour')).toEqual([expected]);
  });

  it('check asks the Blender scenes service about Blender movies only, with the loaded template', async () => {
    await expect(service.check('b', 'good')).resolves.toEqual([]);
    expect(sceneCheck).toHaveBeenCalledTimes(1);
    expect(sceneCheck.mock.calls[0][0]).toMatchObject({ project: 'b', movie: 'good', file: 'b/good/movie.yaml', spec: { engine: 'blender' } });
    sceneCheck.mockClear();
    await expect(service.check('b', 'composite')).resolves.toEqual([]);
    expect(sceneCheck).not.toHaveBeenCalled();
  });

  it("the scenes service's errors are the check's; the movie is then not resolved", async () => {
    sceneCheck.mockResolvedValueOnce([{ field: 'b/good/movie.yaml:16', message: 'text object "Title" is not in the scene (it has: Cube)' }]);
    expect(await service.check('b', 'good')).toEqual([{ field: 'b/good/movie.yaml:16', message: 'text object "Title" is not in the scene (it has: Cube)' }]);
  });

  it('earlier errors: Blender is not asked', async () => {
    const errors = await service.check('b', 'bad-variable');
    expect(errors).toEqual([{ field: 'b/bad-variable/movie.yaml:5', message: 'enum variable "mood" needs values' }]);
    expect(sceneCheck).not.toHaveBeenCalled();
  });

  describe('BlenderScenesService.check (Blender mocked)', () => {
    const inventoryOf = (value: unknown, error?: string) => ({ query: jest.fn(async () => ({ value, error })) });

    it('asks for the inventory of the scene once per version and gives file:line errors of the bindings', async () => {
      const t = await service.load('b', 'good');
      const blender = inventoryOf({ ...INVENTORY, objects: { ...INVENTORY.objects, Title: 'MESH' } });
      const scenes = new BlenderScenesService(blender as unknown as BlenderRepository);
      const errors = await scenes.check(t);
      expect(errors).toEqual([{ field: 'b/good/movie.yaml:16', message: 'object "Title" is a mesh, not a text object' }]);
      expect(blender.query).toHaveBeenCalledWith(
        blenderQueryArgs(SCENE_SCRIPT, 'inventory', { kind: 'script', path: path.join(root, 'b', 'good', 'scene.py') }),
        'MONTAGE_INVENTORY',
        120_000,
      );
      await scenes.check(t);
      expect(blender.query).toHaveBeenCalledTimes(1);
    });

    it('a scene that Blender cannot read; a scene file that is missing (Blender not asked)', async () => {
      const good = await service.load('b', 'good');
      expect(await new BlenderScenesService(inventoryOf(undefined, 'Error: not a blend file') as unknown as BlenderRepository).check(good)).toEqual([
        { field: 'b/good/movie.yaml:11', message: 'Blender could not read the scene: Error: not a blend file' },
      ]);
      const blender = inventoryOf(INVENTORY);
      expect(await new BlenderScenesService(blender as unknown as BlenderRepository).check(await service.load('b', 'scene-missing'))).toEqual([
        { field: 'b/scene-missing/movie.yaml:5', message: 'scene file "scene.blend" not found in the template folder' },
      ]);
      expect(blender.query).not.toHaveBeenCalled();
    });
  });

  describe('BlenderScenesService.checkWhereAvailable (at request time, Blender mocked)', () => {
    const withBlender = (devices: Record<string, string[]> | undefined) => ({
      query: jest.fn(async (_args: string[], tag: string) =>
        tag === 'MONTAGE_DEVICES' ? (devices ? { value: { version: '4.2.0', devices } } : { error: 'Blender could not be started' }) : { value: INVENTORY },
      ),
    });

    it('checks the names after params, at the lines of the templated fields', async () => {
      const t = await service.load('b', 'templated-names');
      const blender = withBlender({ CPU: ['CPU'] });
      const scenes = new BlenderScenesService(blender as unknown as BlenderRepository);
      expect(await scenes.check(t)).toEqual([]); // templated names: nothing to say before params
      const resolve = (params: Record<string, unknown>) => resolveMovie(t, service.validateParams(t, params)).blender!;
      expect(await scenes.checkWhereAvailable(t, resolve({ which: 'Logo', cam: 'Key' }))).toEqual([
        { field: 'b/templated-names/movie.yaml:13', message: 'object "Logo" is a mesh, not a text object' },
        { field: 'b/templated-names/movie.yaml:10', message: 'object "Key" is a light, not a camera' },
      ]);
      expect(await scenes.checkWhereAvailable(t, resolve({ which: 'Backdrop', cam: 'Side', img: 'Backdrop' }))).toEqual([
        { field: 'b/templated-names/movie.yaml:13', message: expect.stringMatching(/^text object "Backdrop" is not in the scene/) },
        { field: 'b/templated-names/movie.yaml:16', message: 'image "Backdrop" is not in the scene (it has: Poster, Logo)' },
      ]);
      expect(await scenes.checkWhereAvailable(t, resolve({}))).toEqual([]); // the defaults fit
      expect(blender.query.mock.calls.filter((c) => c[1] === 'MONTAGE_INVENTORY')).toHaveLength(1); // asked once per version
    });

    it('a process without Blender leaves the check to the node: no errors, no inventory asked', async () => {
      const t = await service.load('b', 'templated-names');
      for (const devices of [undefined, {}]) {
        const blender = withBlender(devices);
        const scenes = new BlenderScenesService(blender as unknown as BlenderRepository);
        expect(await scenes.checkWhereAvailable(t, resolveMovie(t, service.validateParams(t, { which: 'Logo', cam: 'Key' })).blender!)).toEqual([]);
        expect(blender.query).toHaveBeenCalledTimes(1);
        expect(blender.query.mock.calls[0][1]).toBe('MONTAGE_DEVICES');
      }
    });
  });
});

// ---- 6. ffmpeg with frames on stdin --------------------------------------------------------

function compositePlan(extra: Partial<RenderPlan> = {}): RenderPlan {
  const solid: PlannedLayer = {
    id: 's0.l0',
    startFrame: 0,
    endFrame: 60,
    x: 0,
    y: 0,
    width: 320,
    height: 180,
    opacity: 1,
    source: { kind: 'color', color: '#00ff00' },
    fit: 'fill',
    animIn: [],
    animOut: [],
  };
  return {
    templateId: 'p/m',
    version: 'v1',
    width: 320,
    height: 180,
    fps: 30,
    totalFrames: 60,
    background: '#102030',
    posterFrame: 30,
    scenes: [{ index: 0, startFrame: 0, endFrame: 60, background: '#102030', layers: [solid] }],
    audio: [],
    engine: 'blender',
    ...extra,
  };
}

const TRACK = { id: 'a0', path: '/m/music.m4a', startFrame: 0, trimSec: 0, playSec: 2, volume: 1, fadeInSec: 0, fadeOutSec: 0, loop: false };
const PNG_PIPE = ['-f', 'png_pipe', '-framerate', '30', '-i', 'pipe:0'];

describe('buildRenderArgs with framesPlan', () => {
  it('framesPlan: one scene, one full-canvas layer of frames over the background; the sound kept', () => {
    const plan = framesPlan(compositePlan({ audio: [TRACK] }));
    expect(plan.scenes).toEqual([
      {
        index: 0,
        startFrame: 0,
        endFrame: 60,
        background: '#102030',
        layers: [{ id: 'frames', startFrame: 0, endFrame: 60, x: 0, y: 0, width: 320, height: 180, opacity: 1, source: { kind: 'frames' }, fit: 'fill', animIn: [], animOut: [] }],
      },
    ]);
    expect(plan.audio).toEqual([TRACK]);
    expect(plan.totalFrames).toBe(60);
  });

  it('frames on stdin: no -nostdin, a png_pipe input at the movie fps, numbered from the range start', () => {
    const args = buildRenderArgs(framesPlan(compositePlan()), { from: 30, to: 60 }, { format: 'mp4' }, 'out.mp4');
    expect(args).not.toContain('-nostdin');
    expect(args.slice(0, 10)).toEqual(['-hide_banner', '-loglevel', 'error', '-y', ...PNG_PIPE]);
    const filter = args[args.indexOf('-filter_complex') + 1];
    expect(filter).toContain('[0:v]scale=320:180:out_color_matrix=bt709:out_range=tv,format=yuva420p,trim=end_frame=30,settb=expr=1/30,setpts=N+30[');
    expect(filter).toMatch(/^color=c=0x102030:s=320x180:r=30,.*trim=end_frame=30,settb=expr=1\/30,setpts=N\+30\[bg0\];/);
    // the whole movie has its sound
    expect(args.filter((a) => a === '-map')).toHaveLength(2);
    expect(args).toContain('-c:a');
  });

  it('the frames are the only stdin reader; a sound track is another input after them', () => {
    const args = buildRenderArgs(framesPlan(compositePlan({ audio: [TRACK] })), { from: 0, to: 60 }, { format: 'mp4' }, 'out.mp4');
    expect(args.filter((a) => a === 'pipe:0')).toHaveLength(1);
    expect(args.indexOf('pipe:0')).toBeLessThan(args.indexOf('/m/music.m4a'));
    const filter = args[args.indexOf('-filter_complex') + 1];
    expect(filter).toContain('[0:v]');
    expect(filter).toContain('setpts=N+0[');
    expect(filter).toContain('[1:a]');
  });

  it('a segment (video only): the exact arguments; one map, no sound input, no audio encoder', () => {
    const args = buildRenderArgs(framesPlan(compositePlan({ audio: [TRACK] })), { from: 15, to: 45 }, { format: 'mp4', videoOnly: true, streamable: true }, 'seg.mp4');
    const toYuv = 'scale=out_color_matrix=bt709:out_range=tv';
    expect(args).toEqual([
      '-hide_banner', '-loglevel', 'error', '-y',
      ...PNG_PIPE,
      '-filter_complex',
      [
        `color=c=0x102030:s=320x180:r=30,format=rgb24,${toYuv},format=yuv420p,loop=loop=-1:size=1:start=0,trim=end_frame=30,settb=expr=1/30,setpts=N+15[bg0]`,
        `[0:v]scale=320:180:out_color_matrix=bt709:out_range=tv,format=yuva420p,trim=end_frame=30,settb=expr=1/30,setpts=N+15[l1]`,
        "[bg0][l1]overlay=x='0':y='0':eof_action=pass[o2]",
        '[o2]setpts=PTS-STARTPTS,format=yuv420p,setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709[v3]',
      ].join(';'),
      '-map', '[v3]',
      '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '23', '-pix_fmt', 'yuv420p',
      '-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', '-color_range', 'tv',
      '-g', '30', '-sc_threshold', '0', '-flush_packets', '1',
      '-frag_duration', '200000', '-movflags', 'frag_keyframe+empty_moov+default_base_moof+delay_moov',
      '-f', 'mp4',
      'seg.mp4',
    ]);
  });

  it('a still from frames: one PNG in, one out', () => {
    const args = buildRenderArgs(framesPlan(compositePlan()), { from: 12, to: 13 }, { format: 'png' }, 'out.png');
    expect(args).not.toContain('-nostdin');
    expect(args[args.indexOf('-filter_complex') + 1]).toContain('trim=end_frame=1,settb=expr=1/30,setpts=N+12[');
  });

  it('a composite plan still has -nostdin and no pipe input', () => {
    const args = buildRenderArgs(compositePlan(), { from: 0, to: 60 }, { format: 'mp4' }, 'out.mp4');
    expect(args.slice(0, 5)).toEqual(['-hide_banner', '-nostdin', '-loglevel', 'error', '-y']);
    expect(args).not.toContain('pipe:0');
    expect(args).not.toContain('png_pipe');
  });
});

// ---- 7. queues -----------------------------------------------------------------------------

describe('queueName', () => {
  it.each<[string, Parameters<typeof queueName>, string]>([
    ['the compositor (default engine)', ['default'], 'render.default'],
    ['the compositor, named', ['gpu', EngineName.FfmpegComposite], 'render.gpu'],
    ['the compositor ignores a device', ['default', EngineName.FfmpegComposite, 'CUDA'], 'render.default'],
    ['Blender on CPU (default device)', ['default', EngineName.Blender], 'render.default.blender'],
    ['Blender on CPU', ['default', EngineName.Blender, 'CPU'], 'render.default.blender'],
    ['Blender on CUDA', ['default', EngineName.Blender, 'CUDA'], 'render.default.blender.cuda'],
    ['Blender on OptiX, another key', ['studio', EngineName.Blender, 'OPTIX'], 'render.studio.blender.optix'],
  ])('%s', (_what, args, name) => {
    expect(queueName(...args)).toBe(name);
  });
});

describe('a device this node lacks', () => {
  it('is the node’s problem (MONTAGE_DEVICE_ERROR), not a binding error', () => {
    expect(parseBlenderLine('MONTAGE_DEVICE_ERROR {"message":"no CUDA device found by Cycles on this node"}')).toEqual({
      kind: 'device-error',
      message: 'no CUDA device found by Cycles on this node',
    });
  });
});

describe('blenderEnv: what Blender and a scene.py see of the environment', () => {
  it('keeps what running and finding a GPU need, drops Montage\'s secrets', () => {
    const env = blenderEnv({
      PATH: '/usr/bin',
      HOME: '/home/m',
      LANG: 'C.UTF-8',
      CUDA_VISIBLE_DEVICES: '0',
      NVIDIA_DRIVER_CAPABILITIES: 'all',
      MONTAGE_SECRET_KEY: 'k',
      MONGODB_URI: 'mongodb://u:p@db',
      STORAGE_URL: 's3://key:secret@host/bucket',
      AWS_SECRET_ACCESS_KEY: 's',
      REDIS_URL: 'redis://:pw@r',
    });
    expect(env).toEqual({ PATH: '/usr/bin', HOME: '/home/m', LANG: 'C.UTF-8', CUDA_VISIBLE_DEVICES: '0', NVIDIA_DRIVER_CAPABILITIES: 'all' });
  });
});

describe('frameFile', () => {
  it('names a frame as Blender saves it with -o <dir>/f_#####', () => {
    expect(frameFile('/d', 7)).toBe('/d/f_00007.png');
    expect(frameFile('/d', 123456)).toBe('/d/f_123456.png');
  });
});

describe('object transforms are bounded', () => {
  it('a location or scale beyond ±1e6 scene units is refused after params', () => {
    const ok = resolvedBlenderBlockSchema.safeParse({ scene: 'scene.py', bindings: [{ type: 'object', object: 'Logo', location: [0, 1e6, -1e6], scale: 2 }] });
    expect(ok.success).toBe(true);
    const far = resolvedBlenderBlockSchema.safeParse({ scene: 'scene.py', bindings: [{ type: 'object', object: 'Logo', location: [0, 1e308, 0] }] });
    expect(far.success).toBe(false);
    const huge = resolvedBlenderBlockSchema.safeParse({ scene: 'scene.py', bindings: [{ type: 'object', object: 'Logo', scale: -2e6 }] });
    expect(huge.success).toBe(false);
  });
});

describe('blenderFailure: how a Blender run that failed is told to the user and the queue', () => {
  const end = (overrides: Partial<BlenderRunEnd> = {}): BlenderRunEnd => ({
    command: '/usr/bin/blender',
    aborted: false,
    exit: { code: 0, signal: null },
    finished: true,
    timedOut: false,
    frameTimeoutMs: 300_000,
    bindingErrors: [],
    log: [],
    ...overrides,
  });

  it('a run that saved every frame did not fail', () => {
    expect(blenderFailure(end())).toBeUndefined();
  });

  it('bindings that do not fit are the template’s: a 400 naming them, never retried', () => {
    const failure = blenderFailure(end({ exit: { code: 3, signal: null }, finished: false, bindingErrors: ['bindings.0: object "X" is not in the scene'] }))!;
    expect(failure.httpStatus).toBe(400);
    expect(isPermanent(failure)).toBe(true);
    expect(failure.message).toContain('bindings.0: object "X" is not in the scene');
  });

  it('a device this node lacks is the node’s: retried, not a 400', () => {
    const failure = blenderFailure(end({ exit: { code: 3, signal: null }, finished: false, deviceError: 'no CUDA device found by Cycles on this node' }))!;
    expect(failure.kind).toBe('render_failed');
    expect(isPermanent(failure)).toBe(false);
  });

  it('a time-out, a crash with Blender’s own words, a binary that cannot run', () => {
    expect(blenderFailure(end({ timedOut: true, finished: false, exit: { code: null, signal: 'SIGKILL' } }))!.message).toBe('a Blender frame took longer than 300 s and the render was stopped');
    expect(blenderFailure(end({ finished: false, exit: { code: 1, signal: null }, log: ['Fra:1', 'Error: simulated GPU driver crash'] }))!.message).toBe('Blender failed (exit 1): Error: simulated GPU driver crash');
    expect(blenderFailure(end({ finished: false, exit: { code: 127, signal: null }, log: ['setpriv: failed to execute /nope: No such file or directory'] }))!.message).toBe('Blender could not be started on this render node');
    expect(blenderFailure(end({ aborted: true, finished: false }))!.message).toBe('render cancelled');
  });
});
