import { MontageError, badInput } from '../../src/common/errors';
import { farmFrameFile, farmInspectArgs, farmRenderArgs, productRenderArgs, turntableEncodeArgs, turntableGifArgs } from '../../src/farm/blender-farm-args';
import { parseSceneInventory } from '../../src/farm/farm-inventory';
import { layoutPath } from '../../src/farm/farm-paths';
import { doneFrames, farmFailure } from '../../render-nodes/farm.job';
import { loadConfig } from '../../src/config/config';
import { sandboxedArgs } from '../../src/farm/farm-sandbox';

const HEAD = ['--factory-startup', '-b', '-Y', '--python-exit-code', '3'];

describe('farm Blender args', () => {
  it('inspect: the file, the script, and the job after --', () => {
    expect(farmInspectArgs('/w/files/shot/a.blend', '/s/montage_farm.py', '/w/files')).toEqual([
      ...HEAD, '/w/files/shot/a.blend', '-P', '/s/montage_farm.py', '--', '{"mode":"inspect","file":"/w/files/shot/a.blend","folder":"/w/files"}',
    ]);
    expect(farmInspectArgs('/w/files/shot/a.blend', '/s/montage_farm.py').at(-1)).toBe('{"mode":"inspect","file":"/w/files/shot/a.blend","folder":"/w/files/shot"}');
  });

  it('render: -o before -F and -f, -f a comma list and last before --', () => {
    const job = { mode: 'render' as const, file: '/w/files/a.blend', folder: '/w/files', camera: 'CamB', resolutionPercent: 50, device: 'CPU' as const };
    expect(farmRenderArgs({ file: '/w/files/a.blend', script: '/s/f.py', outputDir: '/w/out', frames: [1, 5, 7], format: 'WEBP', device: 'CPU', threads: 2, job })).toEqual([
      ...HEAD, '/w/files/a.blend', '-P', '/s/f.py', '-t', '2', '-o', '/w/out/f_######', '-F', 'WEBP', '-x', '1', '-f', '1,5,7', '--', '--cycles-device', 'CPU',
      '{"mode":"render","file":"/w/files/a.blend","folder":"/w/files","camera":"CamB","resolutionPercent":50,"device":"CPU"}',
    ]);
  });

  it('render refuses no frames, a frame twice, negative or fractional frames', () => {
    const base = { file: 'a', script: 's', outputDir: 'o', format: 'PNG' as const, device: 'CPU' as const, threads: 0, job: { mode: 'render' as const, file: 'a', folder: 'f', resolutionPercent: 100, device: 'CPU' as const } };
    expect(() => farmRenderArgs({ ...base, frames: [] })).toThrow('no frames');
    expect(() => farmRenderArgs({ ...base, frames: [2, 2] })).toThrow('twice');
    expect(() => farmRenderArgs({ ...base, frames: [-1] })).toThrow('invalid frame');
    expect(() => farmRenderArgs({ ...base, frames: [1.5] })).toThrow('invalid frame');
  });

  it('product: no .blend, the script builds the scene before -o and -f', () => {
    const shot = { mode: 'turntable' as const, count: 8, width: 64, height: 64, samples: 2 };
    expect(productRenderArgs({ script: '/s/f.py', outputDir: '/w/out', frames: [1, 2, 3], threads: 0, job: { mode: 'product', model: '/w/files/model.glb', folder: '/w/files', shot, device: 'CPU' } })).toEqual([
      ...HEAD, '-P', '/s/f.py', '-t', '0', '-o', '/w/out/f_######', '-F', 'PNG', '-x', '1', '-f', '1,2,3', '--', '--cycles-device', 'CPU',
      '{"mode":"product","model":"/w/files/model.glb","folder":"/w/files","shot":{"mode":"turntable","count":8,"width":64,"height":64,"samples":2},"device":"CPU"}',
    ]);
  });

  it('frame files: six digits and the format\'s extension', () => {
    expect(farmFrameFile('/o', 7, 'PNG')).toBe('/o/f_000007.png');
    expect(farmFrameFile('/o', 1073, 'JPEG')).toBe('/o/f_001073.jpg');
    expect(farmFrameFile('/o', 3, 'OPEN_EXR')).toBe('/o/f_000003.exr');
    expect(farmFrameFile('/o', 3, 'TIFF')).toBe('/o/f_000003.tif');
  });
});

describe('turntable ffmpeg args', () => {
  const t = { input: '/w/t_%06d.png', frameRate: 12, width: 321, height: 240, output: '/w/out.mp4' };
  const input = ['-hide_banner', '-nostdin', '-v', 'error', '-progress', 'pipe:1', '-nostats', '-y', '-f', 'image2', '-framerate', '12', '-start_number', '1', '-i', '/w/t_%06d.png'];

  it('mp4: H.264 yuv420p, even sides, faststart', () => {
    expect(turntableEncodeArgs(t)).toEqual([
      ...input, '-vf', 'scale=320:240:flags=lanczos,setsar=1', '-c:v', 'libx264', '-preset', 'medium', '-crf', '18', '-pix_fmt', 'yuv420p', '-r', '12', '-movflags', '+faststart', '-f', 'mp4', '/w/out.mp4',
    ]);
  });

  it('gif: a palette of its own frames, at the same rate, looping', () => {
    expect(turntableGifArgs({ ...t, output: '/w/out.gif' })).toEqual([
      ...input,
      '-filter_complex', '[0:v]scale=321:240:flags=lanczos,split[a][b];[a]palettegen=stats_mode=full[p];[b][p]paletteuse=dither=bayer:bayer_scale=4:diff_mode=rectangle',
      '-loop', '0', '-f', 'gif', '/w/out.gif',
    ]);
  });

  it('refuses sizes and rates that are not ones', () => {
    expect(() => turntableEncodeArgs({ ...t, width: 0 })).toThrow('size');
    expect(() => turntableEncodeArgs({ ...t, height: 1.5 })).toThrow('size');
    expect(() => turntableGifArgs({ ...t, frameRate: 0 })).toThrow('frame rate');
    expect(() => turntableGifArgs({ ...t, frameRate: Number.NaN })).toThrow('frame rate');
  });
});

describe('layoutPath', () => {
  it('keeps relative paths', () => {
    expect(layoutPath('shot/lgt.blend')).toBe('shot/lgt.blend');
    expect(layoutPath('tex/wood grain.png')).toBe('tex/wood grain.png');
  });
  it.each([
    ['empty', ''],
    ['absolute', '/etc/passwd'],
    ['parent', '../x'],
    ['climbing', 'a/../../x'],
    ['dot segment', 'a/./b'],
    ['empty segment', 'a//b'],
    ['trailing slash', 'a/'],
    ['drive letter', 'C:/x'],
    ['backslashes', 'a\\..\\b'],
    ['NUL', 'a\u0000b'],
    ['newline', 'a\nb'],
    ['too long', 'x'.repeat(1025)],
    ['segment too long', `${'y'.repeat(256)}/a`],
  ])('refuses %s', (_what, p) => {
    expect(() => layoutPath(p)).toThrow();
  });
});

describe('parseSceneInventory', () => {
  const good = {
    scene: 'Scene', cameras: ['CamA', 'CamB'], camera: 'CamA', viewLayers: ['A', 'B'], frameStart: 1, frameEnd: 6, frameStep: 1, fps: 24,
    width: 64, height: 48, resolutionPercent: 100, engine: 'CYCLES', externalFiles: ['//tex/a.png'], savedWith: '3.4.1',
  };
  it('keeps an inventory', () => expect(parseSceneInventory(good)).toEqual(good));
  it('drops unknown fields and a missing active camera', () => {
    const { camera: _camera, ...rest } = good;
    expect(parseSceneInventory({ ...rest, $where: 'x', extra: { deep: 1 } })).toEqual(rest);
  });
  it.each([
    ['null', null],
    ['an array', []],
    ['a string', 'x'],
    ['cameras not a list', { ...good, cameras: 'CamA' }],
    ['a fractional frame', { ...good, frameStart: 1.5 }],
    ['fps not a number', { ...good, fps: 'x' }],
    ['a NUL in a name', { ...good, scene: 'a\u0000b' }],
  ])('refuses %s', (_what, v) => {
    expect(parseSceneInventory(v)).toBeUndefined();
  });
  it('drops names that are not strings', () => expect(parseSceneInventory({ ...good, cameras: ['A', 3, { x: 1 }] })?.cameras).toEqual(['A']));
});

describe('farmFailure', () => {
  it('says the script\'s refusals in the farm\'s words, still a 400', () => {
    const err = farmFailure(badInput('the scene does not fit the template\'s bindings: x', [{ field: 'blender', message: 'camera "Nope" is not in the scene (it has: CamA)' }]), 'scene') as MontageError;
    expect(err).toBeInstanceOf(MontageError);
    expect(err.kind).toBe('bad_input');
    expect(err.message).toBe('the scene cannot be rendered as asked: camera "Nope" is not in the scene (it has: CamA)');
    expect(err.details).toEqual([{ field: 'scene', message: 'camera "Nope" is not in the scene (it has: CamA)' }]);
  });
  it('leaves other failures alone', () => {
    const other = new Error('x');
    expect(farmFailure(other, 'model')).toBe(other);
  });
});

describe('sandboxedArgs (bwrap)', () => {
  const SYSTEM = ['/usr', '/lib', '/lib64', '/bin', '/sbin', '/etc'].flatMap((d) => ['--ro-bind-try', d, d]);
  const HEAD_BWRAP = ['--unshare-all', '--die-with-parent', '--new-session', '--tmpfs', '/tmp', '--proc', '/proc', '--dev', '/dev', '--tmpfs', '/dev/shm'];

  it('no network or shared namespace; tmpfs, proc and dev first; the system and the given folders read-only; the workspace read-write, last', () => {
    expect(sandboxedArgs('/opt/blender/blender', ['-b', 'x.blend'], { workspace: '/data/work/farm/job-c0-1-ab-Xy', readOnly: ['/opt/blender', '/app/dist/src/engines/blender/python'] })).toEqual([
      ...HEAD_BWRAP,
      ...SYSTEM,
      '--ro-bind', '/opt/blender', '/opt/blender',
      '--ro-bind', '/app/dist/src/engines/blender/python', '/app/dist/src/engines/blender/python',
      '--bind', '/data/work/farm/job-c0-1-ab-Xy', '/data/work/farm/job-c0-1-ab-Xy',
      '--chdir', '/data/work/farm/job-c0-1-ab-Xy',
      '--setenv', 'TMPDIR', '/tmp',
      '--', '/opt/blender/blender', '-b', 'x.blend',
    ]);
  });

  it('folders inside the system ones (Debian\'s /usr/bin) and repeats are bound once; a trailing slash goes', () => {
    expect(sandboxedArgs('/usr/bin/blender', [], { workspace: '/w/', readOnly: ['/usr/bin', '/s', '/s/'] })).toEqual([
      ...HEAD_BWRAP, ...SYSTEM, '--ro-bind', '/s', '/s', '--bind', '/w', '/w', '--chdir', '/w', '--setenv', 'TMPDIR', '/tmp', '--', '/usr/bin/blender',
    ]);
  });

  it('a GPU render: /sys read-only and the device nodes, before the workspace', () => {
    expect(sandboxedArgs('/b/blender', ['-b'], { workspace: '/w', readOnly: [], devices: ['/dev/nvidia0', '/dev/nvidiactl'] })).toEqual([
      ...HEAD_BWRAP, ...SYSTEM,
      '--ro-bind-try', '/sys', '/sys', '--dev-bind-try', '/dev/nvidia0', '/dev/nvidia0', '--dev-bind-try', '/dev/nvidiactl', '/dev/nvidiactl',
      '--bind', '/w', '/w', '--chdir', '/w', '--setenv', 'TMPDIR', '/tmp', '--', '/b/blender', '-b',
    ]);
  });

  it.each([
    ['a relative workspace', { workspace: 'work/x', readOnly: [] }],
    ['a climbing workspace', { workspace: '/data/../etc', readOnly: [] }],
    ['the root as workspace', { workspace: '/', readOnly: [] }],
    ['a system folder as workspace', { workspace: '/etc', readOnly: [] }],
    ['a relative read-only folder', { workspace: '/w', readOnly: ['dist'] }],
    ['a NUL', { workspace: '/w\u0000x', readOnly: [] }],
  ])('refuses %s', (_what, o) => {
    expect(() => sandboxedArgs('/b/blender', [], o)).toThrow('sandbox');
  });

  it('refuses a command that is not an absolute path (bwrap would look it up inside)', () => {
    expect(() => sandboxedArgs('blender', [], { workspace: '/w', readOnly: [] })).toThrow('command');
  });
});

describe('FARM_SANDBOX', () => {
  it('auto unless said; auto, bwrap or off', () => {
    expect(loadConfig({}).farm.sandbox).toBe('auto');
    expect(loadConfig({ FARM_SANDBOX: 'bwrap' }).farm.sandbox).toBe('bwrap');
    expect(loadConfig({ FARM_SANDBOX: 'OFF' }).farm.sandbox).toBe('off');
    expect(() => loadConfig({ FARM_SANDBOX: 'firejail' })).toThrow('FARM_SANDBOX must be one of auto, bwrap, off');
  });
});

describe('doneFrames', () => {
  it('the chunk\'s frames an earlier attempt stored, with where; not rendering, failed, other chunks\' or incomplete states', () => {
    const at = '2024-01-01T00:00:00.000Z';
    const done = (frame: number) => ({ status: 'done' as const, node: 'n', storageKey: `fr-j-${frame}`, ext: 'png', bytes: frame, sha256: 'ab'.repeat(32), at });
    const states = { 1: done(1), 2: { status: 'rendering' as const, node: 'n', at }, 3: { status: 'failed' as const, node: 'n', at, error: 'x' }, 4: { status: 'done' as const, node: 'n', at }, 9: done(9) };
    expect([...doneFrames(states, [1, 2, 3, 4, 5]).values()]).toEqual([{ frame: 1, storageKey: 'fr-j-1', ext: 'png', bytes: 1, sha256: 'ab'.repeat(32) }]);
  });
});
