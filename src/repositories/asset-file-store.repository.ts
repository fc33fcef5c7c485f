import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { access, mkdir, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import type { AssetFileStore } from '../assets/asset-cache.types';

/** AssetFileStore on the local disk. */
@Injectable()
export class LocalAssetFileStore implements AssetFileStore {
  async ensureDir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
  }

  async exists(path: string): Promise<boolean> {
    try {
      await access(path);
      return true;
    } catch {
      return false;
    }
  }

  async readText(path: string): Promise<string | undefined> {
    try {
      return await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async writeTextAtomic(path: string, text: string): Promise<void> {
    // A unique temp name keeps concurrent writers of the same file from clobbering each other's temp.
    const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(temp, text, 'utf8');
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  async rename(from: string, to: string): Promise<void> {
    await rename(from, to);
  }

  async remove(path: string): Promise<void> {
    await rm(path, { force: true });
  }

  async touch(path: string): Promise<void> {
    const now = new Date();
    await utimes(path, now, now).catch(() => undefined); // evicted meanwhile: nothing to mark
  }
}
