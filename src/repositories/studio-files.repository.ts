import { Injectable } from '@nestjs/common';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/** The studio's static files (copied next to the compiled code by `npm run build`). */
@Injectable()
export class StudioFilesRepository {
  private readonly cache = new Map<string, Buffer>();
  private readonly staticDir = path.join(__dirname, '..', 'studio', 'static');

  /** A file of the studio by its bare name (the caller allow-lists names); undefined if absent. */
  async studioFile(name: string): Promise<Buffer | undefined> {
    return this.read(path.join(this.staticDir, path.basename(name)));
  }

  private async read(file: string): Promise<Buffer | undefined> {
    const hit = this.cache.get(file);
    if (hit) return hit;
    const data = await fs.readFile(file).catch(() => undefined);
    // Files of the installed package do not change while it runs.
    if (data) this.cache.set(file, data);
    return data;
  }
}
