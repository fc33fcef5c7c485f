import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/**
 * Files a render writes: cached rasters and outputs. Outputs are written to a temporary
 * sibling and renamed into place, so a failed or interrupted render never leaves a file
 * that looks finished.
 */
@Injectable()
export class WorkFilesRepository {
  async ensureDir(dir: string): Promise<void> {
    await fs.mkdir(dir, { recursive: true });
  }

  exists(file: string): Promise<boolean> {
    return fs.stat(file).then((s) => s.isFile() && s.size > 0, () => false);
  }

  /** A fresh temporary path next to `target` (same filesystem, so the final rename is atomic). */
  async tempFor(target: string, ext = path.extname(target)): Promise<string> {
    await this.ensureDir(path.dirname(target));
    return path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.part${ext}`);
  }

  async commit(temp: string, target: string): Promise<void> {
    await fs.rename(temp, target);
  }

  async remove(file: string): Promise<void> {
    await fs.rm(file, { force: true });
  }

  /** Marks a cached file as just used (its modification time): the sweeper evicts the least recently used. */
  async touch(file: string): Promise<void> {
    const now = new Date();
    await fs.utimes(file, now, now).catch(() => undefined);
  }

  read(file: string): Promise<Buffer> {
    return fs.readFile(file);
  }

  async size(file: string): Promise<number> {
    return (await fs.stat(file)).size;
  }

  async readJson<T>(file: string): Promise<T | undefined> {
    try {
      return JSON.parse(await fs.readFile(file, 'utf8')) as T;
    } catch {
      return undefined;
    }
  }

  /** Written to a temporary sibling and renamed, so readers never see half a file. */
  async writeJson(file: string, value: unknown): Promise<void> {
    const temp = await this.tempFor(file);
    await fs.writeFile(temp, JSON.stringify(value));
    await fs.rename(temp, file);
  }

  /** Text (an ffconcat list), written like writeJson. */
  async writeText(file: string, text: string): Promise<void> {
    const temp = await this.tempFor(file);
    await fs.writeFile(temp, text);
    await fs.rename(temp, file);
  }

  /** A file only its owner can read (API keys). */
  async writeSecret(file: string, content: string): Promise<void> {
    await this.ensureDir(path.dirname(file));
    await fs.writeFile(file, content, { mode: 0o600 });
  }
}
