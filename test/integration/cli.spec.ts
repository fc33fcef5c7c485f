import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { frameAt, near, pixel, probe } from '../helpers/media';
import { DEMO_TEMPLATES, FIXTURE_TEMPLATES } from '../helpers/render-context';

// The CLI as a user runs it: the built binary, real processes, exit codes and output.
const BIN = path.join(__dirname, '..', '..', 'bin', 'montage.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-cli-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

async function montage(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await promisify(execFile)('node', [BIN, ...args], {
      cwd: work,
      env: { ...process.env, MONTAGE_DATA_DIR: path.join(work, 'data'), MONTAGE_TEMPLATES_DIR: DEMO_TEMPLATES, ...env },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('montage templates check', () => {
  it('passes the demo templates', async () => {
    const r = await montage(['templates', 'check']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok {4}demo\/welcome$/m);
    expect(r.stdout).toMatch(/^ok {4}demo\/lower-third$/m);
    expect(r.stdout).toMatch(/^ok {4}demo\/slideshow$/m);
  });

  it('prints each problem as file:line and exits 2', async () => {
    const dir = path.join(work, 'bad-templates', 'p', 'broken');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'movie.yaml'),
      ['canvas: { width: 320, height: 180 }', 'scenes:', '  - duration: 1', '    layers:', '      - type: text', '        text: hi', '        colour: "#fff"', '      - type: sparkle', ''].join('\n'),
    );
    const r = await montage(['templates', 'check'], { MONTAGE_TEMPLATES_DIR: path.join(work, 'bad-templates') });
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^p\/broken\/movie\.yaml:7: .*unknown field "colour"/m);
    expect(r.stdout).toMatch(/^p\/broken\/movie\.yaml:8: /m);
  });
});

describe('montage render', () => {
  it('renders a demo with the user’s params, with progress lines when not on a terminal', async () => {
    const out = path.join(work, 'lt.mp4');
    const r = await montage(['render', 'demo/lower-third', '--param', 'name=Grace Hopper', '--param', 'title=Rear Admiral', '--from', '0', '--to', '45', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/demo\/lower-third → mp4: 45\/45 frames \(100%\)/);
    expect(r.stderr).toMatch(/wrote .*lt\.mp4/);
    const p = await probe(out);
    expect(p.video).toMatchObject({ codec_name: 'h264', width: 1920, height: 1080, nb_read_frames: '45' });
  });

  it('reads params from a file alongside --param; the format comes from --out', async () => {
    const file = path.join(work, 'p.json');
    fs.writeFileSync(file, JSON.stringify({ name: 'From file', company: 'Files Inc' }));
    const out = path.join(work, 'poster.jpg');
    const r = await montage(['render', 'demo/welcome', '--params-file', file, '--param', 'name=From flag', '--out', out, '--quality', '70']);
    expect(r.code).toBe(0);
    expect(fs.readFileSync(out).subarray(0, 3)).toEqual(Buffer.from([0xff, 0xd8, 0xff])); // JPEG magic
  });

  it('shows a progress bar on a terminal', () => {
    const out = path.join(work, 'tty.gif');
    const cmd = `node ${BIN} render demo/slideshow --from 0 --to 20 --out ${out}`;
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], {
      cwd: work,
      env: { ...process.env, MONTAGE_DATA_DIR: path.join(work, 'data'), MONTAGE_TEMPLATES_DIR: DEMO_TEMPLATES, TERM: 'xterm' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/\[[█░]{30}\] \d+% \| \d+\/20 frames \| [\d.]+ fps \| ETA/);
  });

  it('reports the size and frame count of the file it wrote: a GIF is scaled down and has fewer frames per second', async () => {
    const out = path.join(work, 'small.gif');
    const r = await montage(['render', 'demo/slideshow', '--from', '0', '--to', '30', '--out', out]);
    expect(r.code).toBe(0);
    const p = await probe(out);
    const reported = /wrote small\.gif \(gif, (\d+)×(\d+), (\d+) frames,/.exec(r.stderr);
    expect(reported?.slice(1).map(Number)).toEqual([p.video!.width, p.video!.height, Number(p.video!.nb_read_frames)]);
    expect(p.video!.width).toBeLessThan(1920); // not the canvas
    expect(Number(p.video!.nb_read_frames)).toBeLessThan(30); // not the movie's frames
  });

  it('--param photo=@./file: a media param from a local file of the user, resolved against the cwd', async () => {
    await sharp({ create: { width: 64, height: 64, channels: 3, background: '#ff0000' } }).png().toFile(path.join(work, 'red.png'));
    const out = path.join(work, 'local.png');
    const r = await montage(['render', 't/media', '--param', 'photo=@./red.png', '--frame', '0', '--out', out], { MONTAGE_TEMPLATES_DIR: FIXTURE_TEMPLATES });
    expect(r.stderr).toMatch(/wrote local\.png \(png, 320×180, 1 frame,/);
    expect(r.code).toBe(0);
    expect(near(pixel(await frameAt(out, 0, 320, 180), 240, 90), [255, 0, 0])).toBe(true); // the photo's half of the canvas
  });

  it('--param photo=@missing: exit 2 naming the file', async () => {
    const r = await montage(['render', 't/media', '--param', 'photo=@pics/missing.png', '--out', 'x.png'], { MONTAGE_TEMPLATES_DIR: FIXTURE_TEMPLATES });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`--param photo: no file ${path.join(fs.realpathSync(work), 'pics', 'missing.png')}`);
    expect(fs.existsSync(path.join(work, 'x.png'))).toBe(false);
  });

  it.each([
    ['an unknown movie', ['render', 'demo/nope', '--out', 'x.mp4'], /unknown movie "nope"/],
    ['a missing required variable', ['render', 'demo/welcome', '--out', 'x.mp4'], /name: missing required string variable/],
    ['a value outside its constraints', ['render', 'demo/welcome', '--param', `name=${'x'.repeat(41)}`, '--out', 'x.mp4'], /name: must be at most 40 characters/],
    ['an unknown variable', ['render', 'demo/welcome', '--param', 'name=A', '--param', 'nmae=B', '--out', 'x.mp4'], /unknown variable "nmae"/],
    ['a malformed --param', ['render', 'demo/welcome', '--param', 'name', '--out', 'x.mp4'], /--param expects name=value/],
    ['an unknown option', ['render', 'demo/welcome', '--colour', 'red', '--out', 'x.mp4'], /unknown option/],
    ['an unknown format', ['render', 'demo/welcome', '--param', 'name=A', '--out', 'x.avi'], /cannot tell the format/],
    ['a local path as a media param', ['render', 'demo/welcome', '--param', 'name=A', '--param', 'photo=/etc/passwd', '--out', 'x.mp4'], /photo: expected an http\(s\) URL/],
  ])('%s → exit 2 with a clear message', async (_label, args, message) => {
    const r = await montage(args as string[]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(fs.existsSync(path.join(work, 'x.mp4'))).toBe(false);
  });

  it('Ctrl-C stops the render and its ffmpeg, even without setpriv', async () => {
    const { spawn } = await import('node:child_process');
    const { descendants, alive, commandOf, eventually } = await import('../helpers/processes');
    const cli = spawn('node', [BIN, 'render', 'demo/welcome', '--param', 'name=Interrupted', '--out', 'cut.mp4'], {
      cwd: work,
      env: { ...process.env, MONTAGE_DATA_DIR: path.join(work, 'data'), MONTAGE_TEMPLATES_DIR: DEMO_TEMPLATES, MONTAGE_NO_PDEATHSIG: '1' },
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
    const encoders = await eventually('ffmpeg encoding', () => {
      const found = descendants(cli.pid!).filter((p) => commandOf(p).includes('-filter_complex'));
      return found.length ? found : undefined;
    }, 60_000);
    expect(commandOf(encoders[0])).not.toMatch(/setpriv/);
    cli.kill('SIGINT'); // the CLI only: ffmpeg is in a process group of its own
    expect(await exited).toBe(130);
    await eventually('ffmpeg gone', () => (encoders.every((p) => !alive(p)) ? true : undefined), 3000);
    expect(fs.existsSync(path.join(work, 'cut.mp4'))).toBe(false);
  });

  it('a render failure exits 1', async () => {
    const r = await montage(['render', 't/colors', '--out', 'x.mp4'], { MONTAGE_TEMPLATES_DIR: FIXTURE_TEMPLATES, FFMPEG_PATH: '/bin/false' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ffmpeg failed/);
  });
});

describe('montage projects and sign-url', () => {
  it('creates a project once, prints its key once, and signs URLs with its secret', async () => {
    const created = await montage(['projects', 'create', 'acme']);
    expect(created.code).toBe(0);
    const key = /api key: +(mk_\S+)/.exec(created.stdout)?.[1];
    const secret = /signing secret: +([0-9a-f]{64})/.exec(created.stdout)?.[1];
    expect(key).toBeDefined();
    const stored = fs.readFileSync(path.join(work, 'data', 'projects', 'acme.json'), 'utf8');
    expect(stored).not.toContain(key!); // only the hash is kept

    const again = await montage(['projects', 'create', 'acme']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists/);

    const signed = await montage(['sign-url', 'acme/promo.mp4', '--param', 'name=Alex', '--base', 'https://videos.example.com']);
    expect(signed.code).toBe(0);
    const url = new URL(signed.stdout.trim());
    expect(url.origin + url.pathname).toBe('https://videos.example.com/v1/render/acme/promo.mp4');
    const { verify } = await import('../../src/projects/url-signing');
    const query = Object.fromEntries(url.searchParams);
    expect(verify(secret!, url.pathname, query, query.sig)).toBe(true);

    expect((await montage(['sign-url', 'nobody/x.mp4'])).code).toBe(2);
    expect((await montage(['projects', 'create', '../evil'])).code).toBe(2);
  });

  it("shows and sets a project's limits; unset ones follow the service settings", async () => {
    await montage(['projects', 'create', 'limited']);
    const shown = await montage(['projects', 'limits', 'limited'], { RATE_LIMIT_REQUESTS_PER_MINUTE: '77' });
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^requestsPerMinute +77 +\(service setting\)$/m);
    const set = await montage(['projects', 'limits', 'limited', '--renders-running', '3', '--output-ttl-days', '0', '--pixel-seconds-per-day', '1000000']);
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(/^rendersRunning +3$/m);
    expect(set.stdout).toMatch(/^outputTtlDays +0 {2}no limit$/m);
    const stored = JSON.parse(fs.readFileSync(path.join(work, 'data', 'projects', 'limited.json'), 'utf8'));
    expect(stored.limits).toMatchObject({ rendersRunning: 3, outputTtlDays: 0, pixelSecondsPerDay: 1_000_000 });
    const unset = await montage(['projects', 'limits', 'limited', '--unset', 'rendersRunning']);
    expect(unset.stdout).toMatch(/^rendersRunning +32 +\(service setting\)$/m);
    const bad = await montage(['projects', 'limits', 'limited', '--renders-running', '-1']);
    expect(bad.code).toBe(2);
    expect((await montage(['projects', 'limits', 'limited', '--unset', 'speed'])).stderr).toMatch(/unknown limit "speed"/);
  });
});
