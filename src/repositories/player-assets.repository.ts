import { Injectable } from '@nestjs/common';
import * as fs from 'node:fs/promises';

/** hls.js as installed from npm (no CDN), read once and kept: play mode's embed pages load it from the API. */
@Injectable()
export class PlayerAssetsRepository {
  private hlsJs?: Promise<Buffer>;

  hlsJsBundle(): Promise<Buffer> {
    this.hlsJs ??= fs.readFile(require.resolve('hls.js/dist/hls.min.js'));
    return this.hlsJs;
  }
}
