import { Inject, Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { renderFailed } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import type { FarmFileRef } from '../farm/farm.types';
import { layoutPath } from '../farm/farm-paths';
import { OUTPUT_STORAGE, type OutputStorage } from './output-storage/port';
import { signalable } from './processes.repository';

/** This host, in folders' names: nodes on several hosts may share a data dir. */
const HOST = createHash('sha1').update(os.hostname()).digest('hex').slice(0, 8);

/** One farm job's folder on a node: `files/` is what Blender may read, `out/` what it writes. */
export interface FarmWorkspace {
  dir: string;
  files: string;
  out: string;
}

/**
 * Farm jobs' folders on a render node (`<data dir>/work/farm`): a job's files laid out from
 * storage as its paths say (checked again here), Blender's frames, and their hashes. Folders
 * of a node that died go with the next job here.
 */
@Injectable()
export class FarmWorkspaceRepository {
  private readonly logger = new Logger('FarmWorkspace');

  constructor(
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
  ) {}

  private root(): string {
    return path.join(this.config.dataDir, 'work', 'farm');
  }

  /** A fresh folder (mkdtemp: two jobs never share one), named after its writer (this process on this host). */
  async create(name: string): Promise<FarmWorkspace> {
    await this.removeOrphans();
    await fs.mkdir(this.root(), { recursive: true });
    const dir = await fs.mkdtemp(path.join(this.root(), `${name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100)}-${process.pid}-${HOST}-`));
    const ws = { dir, files: path.join(dir, 'files'), out: path.join(dir, 'out') };
    await fs.mkdir(ws.files, { mode: 0o700 });
    await fs.mkdir(ws.out, { mode: 0o700 });
    return ws;
  }

  /**
   * Streams each file from storage to `<folder>/<path>` (the path checked again: relative, no
   * `..`), checking its size and sha-256 on the way. Returns the files' absolute paths, in order.
   */
  async layOut(folder: string, refs: FarmFileRef[], signal?: AbortSignal): Promise<string[]> {
    const placed: string[] = [];
    for (const ref of refs) {
      let rel: string;
      try {
        rel = layoutPath(ref.path);
      } catch (err) {
        throw renderFailed(`the job lists a file with an unusable path (${(err as Error).message})`, [], { permanent: true });
      }
      const target = path.join(folder, ...rel.split('/'));
      await fs.mkdir(path.dirname(target), { recursive: true });
      const hash = createHash('sha256');
      let bytes = 0;
      const count = new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          bytes += chunk.length;
          done(null, chunk);
        },
      });
      try {
        // 'wx': a path listed twice (or a file where a folder is) fails instead of overwriting.
        await pipeline(await this.storage.read(ref.storageKey, ref.ext), count, createWriteStream(target, { flags: 'wx', mode: 0o600 }), { signal });
      } catch (err) {
        if (signal?.aborted) throw renderFailed('render cancelled');
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR') throw renderFailed(`the job lists ${rel} twice, or as a file and a folder`, [], { permanent: true });
        throw err;
      }
      const sha256 = hash.digest('hex');
      if (bytes !== ref.size || sha256 !== ref.sha256) {
        throw renderFailed(`${rel} in storage is not the file that was uploaded (${bytes} bytes, sha-256 ${sha256.slice(0, 12)}…)`, [], { internal: `${ref.storageKey}.${ref.ext}` });
      }
      placed.push(target);
    }
    return placed;
  }

  /** sha-256 (hex) and size of a file Blender saved. */
  async digest(file: string): Promise<{ sha256: string; bytes: number }> {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of createReadStream(file)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
    return { sha256: hash.digest('hex'), bytes };
  }

  async copy(from: string, to: string): Promise<void> {
    await fs.copyFile(from, to);
  }

  async removeFile(file: string): Promise<void> {
    await fs.rm(file, { force: true });
  }

  async remove(ws: FarmWorkspace): Promise<void> {
    await fs.rm(ws.dir, { recursive: true, force: true }).catch((e: Error) => this.logger.warn(`could not remove ${ws.dir}: ${e.message}`));
  }

  /** Folders of a node of this host that died (SIGKILL, a crash). */
  private async removeOrphans(): Promise<void> {
    const names = await fs.readdir(this.root()).catch(() => [] as string[]);
    for (const name of names) {
      const m = /-(\d+)-([0-9a-f]{8})-[0-9A-Za-z]+$/.exec(name);
      if (!m || m[2] !== HOST || signalable(Number(m[1]))) continue; // another host's, or a live writer's
      await fs.rm(path.join(this.root(), name), { recursive: true, force: true }).catch(() => undefined);
    }
  }
}
