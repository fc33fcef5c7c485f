import { Injectable } from '@nestjs/common';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/** The studio's static files (copied next to the compiled code by `npm run build`) and hls.js from node_modules. */
@Injectable()
export class StudioFilesRepository {
  private readonly cache = new Map<string, Buffer>();
  private readonly staticDir = path.join(__dirname, '..', 'studio', 'static');

  /** A file of the studio by its bare name (the caller allow-lists names); undefined if absent. */
  async studioFile(name: string): Promise<Buffer | undefined> {
    return this.read(path.join(this.staticDir, path.basename(name)));
  }

  /** hls.js's minified browser build, as npm installed it. */
  async hlsJs(): Promise<Buffer | undefined> {
    let file: string;
    try {
      file = require.resolve('hls.js/dist/hls.min.js');
    } catch {
      return undefined;
    }
    return this.read(file);
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
