import { Inject, Injectable } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import type { FileEntry } from '../retention/retention-plan';
import { listFiles } from './disk-areas.repository';

const HOST = createHash('sha1').update(os.hostname()).digest('hex').slice(0, 8);
const WRITER = `${process.pid}-${HOST}`;

/**
 * Outputs and segments a render node is writing, under `live/` in its data dir: the node
 * follows each file as it grows and publishes it piece by piece. Always local. Files a
 * killed node leaves behind are the sweeper's (ORPHAN_GRACE_MS), not the next start's: nodes
 * may share a data dir.
 */
@Injectable()
export class LiveFilesRepository {
  private readonly liveDir: string;

  constructor(@Inject(MONTAGE_CONFIG) config: MontageConfig) {
    this.liveDir = path.join(config.dataDir, 'live');
  }

  async init(): Promise<void> {
    await fs.mkdir(this.liveDir, { recursive: true });
  }

  /** A new file, named after its writer (this process on this host): the sweeper leaves a live writer's files alone. */
  livePath(key: string, ext: string): string {
    return path.join(this.liveDir, `${key}.${WRITER}.${randomBytes(4).toString('hex')}.${ext}`);
  }

  /** Whether the process that writes this file still runs (known only for writers on this host). */
  writerAlive(file: FileEntry): boolean {
    const m = /\.(\d+)-([0-9a-f]{8})\.[0-9a-f]{8}\.[a-z0-9]+$/.exec(file.name);
    if (!m || m[2] !== HOST) return false;
    try {
      process.kill(Number(m[1]), 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  }

  /** The live files there are now (for the sweeper: those of no running render go). */
  list(): Promise<FileEntry[]> {
    return listFiles(this.liveDir);
  }

  async exists(file: string): Promise<boolean> {
    return fs.stat(file).then(() => true, () => false);
  }

  /** Writes a stream (a stored file) to `file`. */
  async writeFrom(stream: Readable, file: string): Promise<void> {
    await pipeline(stream, createWriteStream(file));
  }

  /** A copy of a finished file at `target` (a staging file of storage). */
  async copy(file: string, target: string): Promise<void> {
    await fs.copyFile(file, target);
  }

  async remove(file: string): Promise<void> {
    await fs.rm(file, { force: true });
  }

  /**
   * Reads a file that another process is still writing, from its start, until `finished()`
   * says the writer is done and everything written has been read.
   */
  async *follow(file: string, finished: () => boolean, changed: () => Promise<void>, signal?: AbortSignal): AsyncGenerator<Buffer> {
    const handle = await fs.open(file, 'r');
    try {
      let position = 0;
      const buffer = Buffer.alloc(256 * 1024);
      while (!signal?.aborted) {
        const done = finished(); // read before the read below, so no final bytes are missed
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
        if (bytesRead > 0) {
          position += bytesRead;
          yield Buffer.from(buffer.subarray(0, bytesRead));
        } else if (done) {
          return;
        } else {
          await changed();
        }
      }
    } finally {
      await handle.close();
    }
  }
}
