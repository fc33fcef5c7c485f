import { Injectable } from '@nestjs/common';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ZipFile } from 'yazl';

export interface ZipEntry {
  name: string;
  size: number;
  mtime?: Date;
  open: () => Promise<Readable>;
}

/**
 * Zip archives of stored files (the farm's frame downloads). Minimal version of the farm-files
 * helper's repository (same signature): entries are stored (frames are compressed already) and
 * opened one at a time while the zip is written, so nothing is held whole in memory or on disk.
 */
@Injectable()
export class ArchiveRepository {
  async writeZip(entries: ZipEntry[], out: Writable, signal?: AbortSignal): Promise<void> {
    const zip = new ZipFile();
    for (const entry of entries) {
      zip.addReadStreamLazy(entry.name, { size: entry.size, compress: false, ...(entry.mtime ? { mtime: entry.mtime } : {}) }, (cb) => {
        entry.open().then(
          (stream) => cb(null, stream),
          (err: Error) => cb(err, undefined as unknown as Readable),
        );
      });
    }
    zip.end();
    await pipeline(zip.outputStream as Readable, out, { signal });
  }
}
