import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

export const MOVIE_FILES = ['movie.yaml', 'movie.yml', 'movie.json'];

/** The designers' template folders on disk. */
@Injectable()
export class TemplateFilesRepository {
  /** sha256 of a file's content, remembered by (path, size, mtime) so a reload hashes only what changed. */
  private readonly hashes = new Map<string, { key: string; hash: string }>();

  async listDirs(dir: string): Promise<string[]> {
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.') && !e.name.startsWith('_')).map((e) => e.name).sort();
  }

  async isDir(dir: string): Promise<boolean> {
    return fs.stat(dir).then((s) => s.isDirectory(), () => false);
  }

  async findMovieFile(dir: string): Promise<string | undefined> {
    for (const name of MOVIE_FILES) {
      if (await fs.stat(path.join(dir, name)).then((s) => s.isFile(), () => false)) return name;
    }
    return undefined;
  }

  /** Every regular file below `dir`, relative, with forward slashes; symlinks are not followed. */
  async listFiles(dir: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (rel: string) => {
      const entries = await fs.readdir(path.join(dir, rel), { withFileTypes: true }).catch(() => []);
      for (const e of entries) {
        const child = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(child);
        else if (e.isFile()) out.push(child);
      }
    };
    await walk('');
    return out.sort();
  }

  readText(file: string): Promise<string> {
    return fs.readFile(file, 'utf8');
  }

  async hashFile(file: string): Promise<string> {
    const st = await fs.stat(file);
    const key = `${st.size}:${st.mtimeMs}`;
    const known = this.hashes.get(file);
    if (known?.key === key) return known.hash;
    const hash = await new Promise<string>((resolve, reject) => {
      const h = createHash('sha256');
      createReadStream(file)
        .on('data', (chunk) => h.update(chunk))
        .on('end', () => resolve(h.digest('hex')))
        .on('error', reject);
    });
    this.hashes.set(file, { key, hash });
    return hash;
  }
}
