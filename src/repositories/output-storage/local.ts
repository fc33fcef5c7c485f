import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { notFound, unavailable } from '../../common/errors';
import type { FileEntry, Leftover } from '../../retention/retention-plan';
import { listFiles } from '../disk-areas.repository';
import { type PresignedUpload, REUSABLE_NAME, type ReusablePiece, storageName, type OutputStorage } from './port';

/**
 * Outputs and segments in a local directory: the data dir on one machine, or a mount that
 * every render node shares. Objects appear by rename only, so a file there is always
 * complete; staging files are hidden `.…part` siblings, removed at start-up.
 */
export class LocalOutputStorage implements OutputStorage {
  readonly kind = 'local';
  readonly description: string;
  private readonly outputsDir: string;
  private readonly segmentsDir: string;
  private readonly identityFile: string;

  constructor(dir: string) {
    this.outputsDir = path.join(dir, 'outputs');
    this.segmentsDir = path.join(dir, 'segments');
    this.description = `local ${dir}`;
    this.identityFile = path.join(dir, 'storage-id');
  }

  async init(): Promise<void> {
    await fs.mkdir(this.outputsDir, { recursive: true });
    if (!(await this.identity())) {
      const staging = `${this.identityFile}.${randomBytes(4).toString('hex')}.part`;
      await fs.writeFile(staging, randomBytes(16).toString('hex'));
      await fs.rename(staging, this.identityFile);
    }
    // Staging files of outputs whose render was cut off (a complete output is only ever renamed into place).
    for (const name of await fs.readdir(this.outputsDir)) {
      if (isStaging(name)) await fs.rm(path.join(this.outputsDir, name), { force: true });
    }
    await fs.rm(this.segmentsDir, { recursive: true, force: true });
    await fs.mkdir(this.segmentsDir, { recursive: true });
  }

  async ping(): Promise<void> {
    const probe = path.join(this.outputsDir, `.ping-${randomBytes(4).toString('hex')}`);
    await fs.writeFile(probe, 'ok');
    await fs.rm(probe, { force: true });
  }

  async identity(): Promise<string | undefined> {
    return fs.readFile(this.identityFile, 'utf8').then((id) => id.trim() || undefined, () => undefined);
  }

  async stat(key: string, ext: string): Promise<{ size: number; mtime: Date } | undefined> {
    return fs.stat(this.outputPath(key, ext)).then(
      (s) => (s.isFile() ? { size: s.size, mtime: s.mtime } : undefined),
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
        throw unreadable(err);
      },
    );
  }

  async read(key: string, ext: string, range?: { start: number; end: number }): Promise<Readable> {
    // Opened here, so an output removed since its stat is an error now, not an empty 200 later.
    const handle = await fs.open(this.outputPath(key, ext), 'r').catch((err: NodeJS.ErrnoException) => {
      throw err.code === 'ENOENT' ? notFound('the stored output was removed') : unreadable(err);
    });
    return handle.createReadStream(range ? { start: range.start, end: range.end } : {});
  }

  async storeOutput<T>(key: string, ext: string, write: (file: string) => Promise<T>): Promise<T> {
    return this.store(this.outputPath(key, ext), write);
  }

  async remove(key: string, ext: string): Promise<void> {
    await fs.rm(this.outputPath(key, ext), { force: true });
  }

  async listReusable(): Promise<ReusablePiece[]> {
    const pieces: ReusablePiece[] = [];
    for (const name of await fs.readdir(this.outputsDir).catch(() => [] as string[])) {
      const m = REUSABLE_NAME.exec(name);
      if (!m) continue;
      const s = await fs.stat(path.join(this.outputsDir, name)).catch(() => undefined);
      if (s?.isFile()) pieces.push({ key: m[1], ext: m[2], bytes: s.size, storedMs: s.mtimeMs });
    }
    return pieces;
  }

  async storeSegment<T>(name: string, write: (file: string) => Promise<T>): Promise<T> {
    return this.store(this.segmentPath(name), write);
  }

  async readSegment(name: string): Promise<Buffer> {
    return fs.readFile(this.segmentPath(name));
  }

  async removeSegment(name: string): Promise<void> {
    await fs.rm(this.segmentPath(name), { force: true });
  }

  async listLeftovers(): Promise<Leftover[]> {
    const as = (area: Leftover['area']) => (f: FileEntry): Leftover => ({ name: f.name, area, bytes: f.bytes, modifiedMs: f.mtimeMs });
    const segments = (await listFiles(this.segmentsDir)).map(as('segments'));
    // The outputs dir is listed by name first: only its few staging files are looked at.
    const staging = (await fs.readdir(this.outputsDir).catch(() => [] as string[])).filter(isStaging);
    const outputs: Leftover[] = [];
    for (const name of staging) {
      const s = await fs.stat(path.join(this.outputsDir, name)).catch(() => undefined);
      if (s?.isFile()) outputs.push({ name, area: 'outputs', bytes: s.size, modifiedMs: s.mtimeMs });
    }
    return [...segments, ...outputs];
  }

  async removeLeftover(leftover: Leftover): Promise<void> {
    const dir = leftover.area === 'segments' ? this.segmentsDir : this.outputsDir;
    if (!/^\.{0,2}[A-Za-z0-9][A-Za-z0-9._-]*$/.test(leftover.name)) return; // its own names only (staging ones start with dots): no path, no traversal
    await fs.rm(path.join(dir, leftover.name), { force: true });
  }

  /** A local directory has no URLs of its own: the API receives uploads and serves downloads. */
  presignUpload(): Promise<PresignedUpload | undefined> {
    return Promise.resolve(undefined);
  }

  presignDownload(): Promise<string | undefined> {
    return Promise.resolve(undefined);
  }

  /**
   * The staging file is made before the render writes into it, so a storage that cannot be
   * written (read-only, full, no permission) fails at once, plainly, without rendering for nothing.
   */
  private async store<T>(target: string, write: (file: string) => Promise<T>): Promise<T> {
    const ext = path.extname(target);
    const staging = path.join(path.dirname(target), `.${path.basename(target, ext)}.${randomBytes(6).toString('hex')}.part${ext}`);
    try {
      await fs.mkdir(path.dirname(target), { recursive: true });
      await (await fs.open(staging, 'wx')).close();
    } catch (err) {
      await fs.rm(staging, { force: true }).catch(() => undefined);
      throw unwritable(err as NodeJS.ErrnoException);
    }
    try {
      const result = await write(staging);
      await fs.rename(staging, target).catch((err: NodeJS.ErrnoException) => {
        throw unwritable(err);
      });
      return result;
    } finally {
      await fs.rm(staging, { force: true }).catch(() => undefined);
    }
  }

  private outputPath(key: string, ext: string): string {
    return path.join(this.outputsDir, `${storageName(key)}.${storageName(ext)}`);
  }

  private segmentPath(name: string): string {
    return path.join(this.segmentsDir, storageName(name));
  }
}

const isStaging = (name: string) => name.startsWith('.') && name.includes('.part');

/** A storage error said plainly (the path and the system's words go to the log). */
function unwritable(err: NodeJS.ErrnoException) {
  const why = err.code === 'ENOSPC' || err.code === 'EDQUOT' ? 'it is full' : err.code === 'EROFS' ? 'it is read-only' : err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied' : 'it failed';
  return unavailable(`the output storage cannot be written (${why}); nothing was stored, try again later`, 30, err.message);
}

function unreadable(err: NodeJS.ErrnoException) {
  return unavailable('the output storage cannot be read right now; try again later', 10, err.message);
}
