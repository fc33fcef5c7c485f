import { Injectable } from '@nestjs/common';
import * as fs from 'node:fs/promises';

/** What play mode reads and writes on disk: hls.js as installed from npm (no CDN), and bytes staged for the output storage. */
@Injectable()
export class PlayFilesRepository {
  private hlsJs?: Promise<Buffer>;

  /** Read once and kept. */
  hlsJsBundle(): Promise<Buffer> {
    this.hlsJs ??= fs.readFile(require.resolve('hls.js/dist/hls.min.js'));
    return this.hlsJs;
  }

  writeBytes(file: string, bytes: Buffer): Promise<void> {
    return fs.writeFile(file, bytes);
  }
}
