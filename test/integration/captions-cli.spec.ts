import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { FIXTURE_TEMPLATES } from '../helpers/render-context';

// `montage render … -o subs.vtt`: the built CLI writes the captions without rendering.
const BIN = path.join(__dirname, '..', '..', 'bin', 'montage.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-captions-cli-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

async function montage(args: string[]) {
  try {
    const { stdout, stderr } = await promisify(execFile)('node', [BIN, ...args], {
      cwd: work,
      env: { ...process.env, MONTAGE_DATA_DIR: path.join(work, 'data'), MONTAGE_TEMPLATES_DIR: FIXTURE_TEMPLATES },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('montage render -o subs.vtt', () => {
  it('writes the captions as WebVTT at movie time', async () => {
    const r = await montage(['render', 't/captions', '-o', 'subs.vtt']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('wrote subs.vtt (WebVTT, 2 cues)');
    expect(fs.readFileSync(path.join(work, 'subs.vtt'), 'utf8')).toBe('WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nAAAA BBBB\n\n00:00:02.500 --> 00:00:03.500\nCC\n');
    expect(fs.existsSync(path.join(work, 'data', 'cache', 'rasters'))).toBe(false); // nothing was rasterised
  });

  it('a movie without captions is an error that says so', async () => {
    const r = await montage(['render', 't/colors', '-o', 'none.vtt']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('has no captions layer');
    expect(fs.existsSync(path.join(work, 'none.vtt'))).toBe(false);
  });
});
