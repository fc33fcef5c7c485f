import { Injectable } from '@nestjs/common';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { FileEntry } from '../retention/retention-plan';

/**
 * Files directly in `dir` (none when it does not exist), with size and modification time. A
 * few stats at a time: the sweeper shares libuv's threads with the requests that read stored
 * outputs, and must not make them wait.
 */
export async function listFiles(dir: string, concurrency = 8): Promise<FileEntry[]> {
  const names = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  const files = names.filter((d) => d.isFile());
  const out: FileEntry[] = [];
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const name = files[next++].name;
      const file = path.join(dir, name);
      const stat = await fs.stat(file).catch(() => undefined); // removed meanwhile
      if (stat) out.push({ name, path: file, bytes: stat.size, mtimeMs: stat.mtimeMs });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
  return out;
}

/** Listing and removing the files of the data dir's areas (caches, staging) for the sweeper. */
@Injectable()
export class DiskAreasRepository {
  list(dir: string): Promise<FileEntry[]> {
    return listFiles(dir);
  }

  /** Removes files, a few at a time; returns those that were there. */
  async removeAll(files: FileEntry[], concurrency = 8): Promise<FileEntry[]> {
    const removed: FileEntry[] = [];
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const file = files[next++];
        if (await this.remove(file.path)) removed.push(file);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
    return removed;
  }

  /** Removes a file; true when it was there. */
  async remove(file: string): Promise<boolean> {
    try {
      await fs.unlink(file);
      return true;
    } catch {
      return false;
    }
  }
}
