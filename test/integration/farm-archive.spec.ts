import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { ArchiveRepository } from '../../src/repositories/archive.repository';

const MB = 1024 * 1024;
const archives = new ArchiveRepository();

/** A 1 MB entry made as it is read (nothing held): `seed` fills it, so entries differ. */
const entry = (i: number) => ({
  name: `frames/frame_${String(i).padStart(4, '0')}.png`,
  size: MB,
  open: async () => Readable.from((function* () { for (let k = 0; k < 16; k++) yield Buffer.alloc(64 * 1024, (i + k) % 251); })()),
});

it('writes 100 × 1 MB entries to a sink as a stream: RSS grows by less than 64 MB', async () => {
  global.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  let bytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      peak = Math.max(peak, process.memoryUsage().rss);
      setImmediate(done); // a slow client: the zip must wait for it, not buffer ahead
    },
  });
  await archives.writeZip(Array.from({ length: 100 }, (_, i) => entry(i)), sink);
  expect(bytes).toBeGreaterThan(100 * MB); // STORE: every byte is there, plus headers
  expect(peak - before).toBeLessThan(64 * MB);
}, 120_000);

it('writes a zip that unzip -t accepts, with every entry whole; a failing entry ends the stream with its error', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-zip-'));
  const file = path.join(dir, 'out.zip');
  await archives.writeZip(Array.from({ length: 5 }, (_, i) => entry(i)), fs.createWriteStream(file));
  expect(execFileSync('unzip', ['-t', file]).toString()).toMatch(/No errors detected/);
  expect(execFileSync('unzip', ['-l', file]).toString()).toMatch(/5 files/);

  const broken = [entry(0), { name: 'bad.png', size: 10, open: async () => Promise.reject(new Error('frame gone')) }];
  await expect(archives.writeZip(broken, fs.createWriteStream(path.join(dir, 'broken.zip')))).rejects.toThrow(/frame gone/);
});

it('lists zip and tar entries with their types, and counts bytes while inflating (not trusting headers)', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-tar-'));
  fs.mkdirSync(path.join(dir, 'p/tex'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'p/tex/a.png'), Buffer.alloc(5000, 1));
  fs.symlinkSync('/etc/passwd', path.join(dir, 'p/link'));
  execFileSync('tar', ['-cf', path.join(dir, 'p.tar'), '-C', dir, 'p']);
  const entries = await archives.listEntries(path.join(dir, 'p.tar'), 'tar', 100);
  expect(entries).toEqual(expect.arrayContaining([{ name: 'p/tex/a.png', type: 'file', size: 5000 }, expect.objectContaining({ name: 'p/link', type: 'symlink' })]));
  execFileSync('zip', ['-qry', path.join(dir, 'p.zip'), 'p'], { cwd: dir });
  const zipped = await archives.listEntries(path.join(dir, 'p.zip'), 'zip', 100);
  expect(zipped).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'p/tex/a.png', type: 'file' }), expect.objectContaining({ name: 'p/link', type: 'symlink' })]));
  await expect(archives.eachFile(path.join(dir, 'p.zip'), 'zip', 4000, async (_n, body) => void (await body.toArray()))).rejects.toThrow(/more than 4000 bytes/);
  const seen: string[] = [];
  await archives.eachFile(path.join(dir, 'p.tar'), 'tar', 10_000, async (name, body) => {
    seen.push(`${name}:${Buffer.concat(await body.toArray()).length}`);
  });
  expect(seen).toEqual(['p/tex/a.png:5000']);
});
