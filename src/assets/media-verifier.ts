import { Inject, Injectable } from '@nestjs/common';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { MediaRepository } from '../repositories/media.repository';
import { RasterRepository } from '../repositories/raster.repository';
import type { MediaKind, MediaProbe, ProbeResult } from './asset-cache.types';

/**
 * The asset cache's view of a downloaded file: what ffprobe says it holds, and whether it
 * really decodes — images the way they are used (sharp reads every pixel), videos and sounds
 * with ffmpeg (the first frames, the first seconds) — within MEDIA_CHECK_TIMEOUT_MS.
 */
@Injectable()
export class MediaVerifier implements MediaProbe {
  constructor(
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    private readonly media: MediaRepository,
    private readonly rasters: RasterRepository,
  ) {}

  probe(path: string): Promise<ProbeResult> {
    return this.media.probe(path);
  }

  decodeProblem(path: string, kind: MediaKind): Promise<string | undefined> {
    const timeout = this.config.mediaCheckTimeoutMs;
    return kind === 'image' ? this.rasters.decodeProblem(path, timeout) : this.media.decodeProblem(path, kind, timeout);
  }
}
