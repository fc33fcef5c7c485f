import { Inject, Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';

/**
 * Rendered outputs on the local disk (one machine). Finished outputs live under
 * `outputs/<key>.<ext>` and are written by rename only, so a file there is always complete;
 * renders in progress write to `live/`, which is emptied at start-up.
 */
@Injectable()
export class OutputStorageRepository {
  private readonly outputsDir: string;
  private readonly liveDir: string;

  constructor(@Inject(MONTAGE_CONFIG) config: MontageConfig) {
    this.outputsDir = path.join(config.dataDir, 'outputs');
    this.liveDir = path.join(config.dataDir, 'live');
    this.segmentsDir = path.join(config.dataDir, 'segments');
  }

  private readonly segmentsDir: string;

  readonly kind = 'local';

  async init(): Promise<void> {
    await fs.rm(this.liveDir, { recursive: true, force: true }); // cut off by a restart: never served
    await fs.mkdir(this.liveDir, { recursive: true });
    await fs.mkdir(this.outputsDir, { recursive: true });
    // Temporary siblings of outputs whose render was cut off (a complete output is only ever renamed into place).
    for (const name of await fs.readdir(this.outputsDir)) {
      if (name.startsWith('.') && name.includes('.part')) await fs.rm(path.join(this.outputsDir, name), { force: true });
    }
    await fs.rm(this.segmentsDir, { recursive: true, force: true });
    await fs.mkdir(this.segmentsDir, { recursive: true });
  }

  /** Throws when the storage cannot be written. */
  async ping(): Promise<void> {
    const probe = path.join(this.outputsDir, `.ping-${randomBytes(4).toString('hex')}`);
    await fs.writeFile(probe, 'ok');
    await fs.rm(probe, { force: true });
  }

  outputPath(key: string, ext: string): string {
    return path.join(this.outputsDir, `${key}.${ext}`);
  }

  livePath(key: string, ext: string): string {
    return path.join(this.liveDir, `${key}.${randomBytes(4).toString('hex')}.${ext}`);
  }

  /** Size and modification time of a finished output, or undefined. */
  async stat(key: string, ext: string): Promise<{ size: number; mtime: Date } | undefined> {
    return fs.stat(this.outputPath(key, ext)).then(
      (s) => (s.isFile() ? { size: s.size, mtime: s.mtime } : undefined),
      () => undefined,
    );
  }

  read(key: string, ext: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.outputPath(key, ext), range ? { start: range.start, end: range.end } : {});
  }

  /** Where a segment of a distributed render goes: under the data dir, which render nodes share. */
  segmentPath(key: string, part: string, ext: string): string {
    return path.join(this.segmentsDir, `${key}-${part}.${ext}`);
  }

  async readFile(file: string): Promise<Buffer> {
    return fs.readFile(file);
  }

  async fileHasBytes(file: string): Promise<boolean> {
    return fs.stat(file).then((s) => s.size > 0, () => false);
  }

  async remove(key: string, ext: string): Promise<void> {
    await fs.rm(this.outputPath(key, ext), { force: true });
  }

  async removeFile(file: string): Promise<void> {
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
