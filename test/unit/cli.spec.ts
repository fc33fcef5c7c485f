import { localMediaParams, mergeCliParams, parseMovieId } from '../../src/cli/parse-params';
import { parsePictureFacts } from '../../src/compiler/ffmpeg-output';
import { validateParams } from '../../src/compiler/params';
import type { Variable } from '../../src/templates/movie.schema';
import { createProgressReporter, rateAndEta } from '../../src/cli/progress-reporter';
import { failure } from '../helpers/movie-fixtures';


describe('mergeCliParams', () => {
  it('name=value pairs become string params', () => {
    expect(mergeCliParams(['name=Ada', 'count=3', 'flag=true'], undefined)).toEqual({ name: 'Ada', count: '3', flag: 'true' });
  });

  it('the value may contain = (only the first one splits)', () => {
    expect(mergeCliParams(['q=a=b=c', 'url=https://x.test/?a=1&b=2', 'eq=='], undefined)).toEqual({
      q: 'a=b=c',
      url: 'https://x.test/?a=1&b=2',
      eq: '=',
    });
  });

  it('an empty value is an empty string; spaces, newlines and JSON are kept as they are', () => {
    expect(mergeCliParams(['a=', 'b= padded ', 'c=line1\nline2', 'slides=[{"caption":"x=y"}]'], undefined)).toEqual({
      a: '',
      b: ' padded ',
      c: 'line1\nline2',
      slides: '[{"caption":"x=y"}]',
    });
  });

  it('merges over the params file; --param wins', () => {
    const file = { name: 'From file', count: 2, slides: [{ caption: 'a' }] };
    expect(mergeCliParams(['name=From flag'], file)).toEqual({ name: 'From flag', count: 2, slides: [{ caption: 'a' }] });
    expect(file.name).toBe('From file'); // the file's object is not modified
  });

  it('the last of repeated --param wins', () => {
    expect(mergeCliParams(['a=1', 'a=2'], { a: 0 })).toEqual({ a: '2' });
  });

  it('no pairs and no file → {}', () => {
    expect(mergeCliParams([], undefined)).toEqual({});
    expect(mergeCliParams([], {})).toEqual({});
  });

  it.each([['novalue'], ['=value'], [''], ['=']])('a bad pair %j → bad_input on --param', (pair) => {
    const err = failure(() => mergeCliParams(['ok=1', pair], undefined));
    expect(err.kind).toBe('bad_input');
    expect(err.exitCode).toBe(2);
    expect(err.details).toEqual([{ field: '--param', message: 'expected name=value' }]);
    expect(err.message).toMatch(/--param expects name=value/);
  });

  it('a bad pair is quoted truncated in the message', () => {
    const err = failure(() => mergeCliParams(['x'.repeat(500)], undefined));
    expect(err.message.length).toBeLessThan(120);
  });

  it.each([[null], [[1, 2]], ['a string'], [42], [true]])('a params file that is not a JSON object (%j) → bad_input', (file) => {
    const err = failure(() => mergeCliParams([], file));
    expect(err.kind).toBe('bad_input');
    expect(err.details).toEqual([{ field: '--params-file', message: 'not a JSON object' }]);
  });

  it('never pollutes Object.prototype', () => {
    const file = JSON.parse('{"__proto__": {"polluted": 1}}');
    mergeCliParams(['__proto__=x', 'constructor=y'], file);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});

describe('localMediaParams (--param photo=@./pic.jpg)', () => {
  const variables: Record<string, Variable> = {
    photo: { type: 'image', required: false },
    music: { type: 'audio', required: false },
    handle: { type: 'string', required: false },
  };
  const files = new Set(['/home/me/pics/pic.jpg', '/srv/a b#c.mp3']);
  const isFile = (f: string) => files.has(f);

  it('a media value @<path> is a file URL of that path, resolved against the cwd', () => {
    expect(localMediaParams({ photo: '@./pics/pic.jpg', music: '@/srv/a b#c.mp3' }, variables, '/home/me', isFile)).toEqual({
      photo: 'file:///home/me/pics/pic.jpg',
      music: 'file:///srv/a%20b%23c.mp3', // escaped: a # or space in a name is part of the name
    });
  });

  it('other variables keep their @ as text; URLs and unknown names pass unchanged (validation names them)', () => {
    const params = { handle: '@ada', photo: 'https://x.test/p.jpg', other: '@./pics/pic.jpg' };
    expect(localMediaParams(params, variables, '/home/me', isFile)).toEqual(params);
  });

  it('a missing file (or a bare @) is bad input (exit 2) naming the file', () => {
    const e = failure(() => localMediaParams({ photo: '@pics/nope.jpg' }, variables, '/home/me', isFile));
    expect(e.exitCode).toBe(2);
    expect(e.message).toBe('--param photo: no file /home/me/pics/nope.jpg');
    expect(failure(() => localMediaParams({ photo: '@' }, variables, '/home/me', isFile)).exitCode).toBe(2);
  });

  it('the file URLs it makes are accepted only where local files are allowed (the CLI), never by default (the API)', () => {
    const photo: Record<string, Variable> = { photo: { type: 'image', required: true } };
    for (const value of ['file:///home/me/pics/pic.jpg', '@/etc/passwd', '/etc/passwd']) {
      const refused = validateParams(photo, { photo: value });
      expect(refused.ok).toBe(false);
    }
    expect(validateParams(photo, { photo: 'file:///home/me/pics/pic.jpg' }, { allowLocalFiles: true })).toEqual({ ok: true, params: { photo: 'file:///home/me/pics/pic.jpg' } });
    expect(validateParams(photo, { photo: '@/etc/passwd' }, { allowLocalFiles: true }).ok).toBe(false);
  });
});

describe('parsePictureFacts (what the CLI reports of a written file)', () => {
  it('size and counted frames of the first video stream', () => {
    expect(parsePictureFacts({ streams: [{ width: 640, height: 360, nb_read_packets: '15' }] })).toEqual({ width: 640, height: 360, frames: 15 });
  });
  it('no picture → undefined', () => {
    expect(parsePictureFacts({ streams: [] })).toBeUndefined();
    expect(parsePictureFacts({ streams: [{ width: 640, height: 360, nb_read_packets: 'N/A' }] })).toBeUndefined();
    expect(parsePictureFacts({})).toBeUndefined();
  });
});

describe('parseMovieId', () => {
  it('project/movie', () => {
    expect(parseMovieId('demo/welcome')).toEqual({ project: 'demo', movie: 'welcome' });
    expect(parseMovieId('my-proj_1/movie-2')).toEqual({ project: 'my-proj_1', movie: 'movie-2' });
  });

  it.each([['demo'], ['demo/'], ['/welcome'], ['a/b/c'], [''], ['/'], ['demo//welcome']])('%j → bad_input', (id) => {
    const err = failure(() => parseMovieId(id));
    expect(err.kind).toBe('bad_input');
    expect(err.details).toEqual([{ field: 'movie', message: 'expected <project>/<movie>' }]);
  });

  it('leaves name validation (../, dots) to the templates service', () => {
    expect(parseMovieId('..\\x/y')).toEqual({ project: '..\\x', movie: 'y' });
  });
});

describe('rateAndEta', () => {
  it.each<[number, number, number, { fps: number; etaSec: number | undefined }]>([
    [0, 100, 0, { fps: 0, etaSec: undefined }],
    [10, 100, 0, { fps: 0, etaSec: undefined }], // no time elapsed: no rate yet
    [0, 100, 5000, { fps: 0, etaSec: undefined }],
    [50, 100, 1000, { fps: 50, etaSec: 1 }],
    [30, 90, 2000, { fps: 15, etaSec: 4 }],
    [100, 100, 4000, { fps: 25, etaSec: 0 }],
    [120, 100, 1000, { fps: 120, etaSec: 0 }], // never negative
    [10, 100, -5, { fps: 0, etaSec: undefined }], // a clock going backwards
  ])('(%i done, %i total, %i ms) → %j', (done, total, ms, expected) => {
    expect(rateAndEta(done, total, ms)).toEqual(expected);
  });
});

describe('createProgressReporter (not a TTY)', () => {
  function setup(isTTY?: boolean) {
    let t = 10_000;
    const lines: string[] = [];
    const stream = { isTTY, write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WriteStream;
    const clock = { set: (ms: number) => (t = 10_000 + ms) };
    const reporter = createProgressReporter(stream, 'demo/welcome', () => t);
    return { lines, clock, reporter };
  }

  it('prints the first update at once, then at most once per second, plus a final line', () => {
    const { lines, clock, reporter } = setup(false);
    clock.set(0);
    reporter.update(0, 100);
    clock.set(300);
    reporter.update(10, 100);
    clock.set(999);
    reporter.update(20, 100);
    clock.set(1000);
    reporter.update(40, 100);
    clock.set(1500);
    reporter.update(45, 100);
    clock.set(1999);
    reporter.update(49, 100);
    clock.set(2000);
    reporter.update(50, 100);
    clock.set(2500);
    reporter.update(100, 100);
    reporter.stop();
    expect(lines).toEqual([
      'demo/welcome: 0/100 frames (0%) 0.0 fps ETA ?\n',
      'demo/welcome: 40/100 frames (40%) 40.0 fps ETA 2s\n',
      'demo/welcome: 50/100 frames (50%) 25.0 fps ETA 2s\n',
      'demo/welcome: 100/100 frames (100%) 40.0 fps ETA 0s\n',
    ]);
  });

  it('the once-per-second window starts at the last printed line, not at a fixed grid', () => {
    const { lines, clock, reporter } = setup(undefined);
    clock.set(0);
    reporter.update(1, 10);
    clock.set(1700);
    reporter.update(2, 10); // printed (≥ 1 s since the last)
    clock.set(2500);
    reporter.update(3, 10); // not printed (0.8 s since the last)
    clock.set(2700);
    reporter.update(4, 10); // printed
    expect(lines.map((l) => l.split(':')[1].trim().split(' ')[0])).toEqual(['1/10', '2/10', '4/10']);
  });

  it('the final line reports the last update even when it was not printed', () => {
    const { lines, clock, reporter } = setup(false);
    clock.set(0);
    reporter.update(5, 60);
    clock.set(500);
    reporter.update(30, 60);
    reporter.stop();
    expect(lines).toEqual(['demo/welcome: 5/60 frames (8%) 0.0 fps ETA ?\n', 'demo/welcome: 30/60 frames (50%) 60.0 fps ETA 1s\n']);
  });

  it('prints nothing if never updated', () => {
    const { lines, clock, reporter } = setup(false);
    clock.set(5000);
    reporter.stop();
    expect(lines).toEqual([]);
  });

  it('stop twice prints one final line', () => {
    const { lines, clock, reporter } = setup(false);
    clock.set(0);
    reporter.update(1, 2);
    reporter.stop();
    reporter.stop();
    expect(lines).toHaveLength(2);
  });

  it('a total of 0 frames does not divide by zero', () => {
    const { lines, clock, reporter } = setup(false);
    clock.set(0);
    reporter.update(0, 0);
    clock.set(1000);
    reporter.stop();
    expect(lines).toEqual(['demo/welcome: 0/0 frames (0%) 0.0 fps ETA ?\n', 'demo/welcome: 0/0 frames (0%) 0.0 fps ETA ?\n']);
  });
});
