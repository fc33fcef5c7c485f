import { Controller, Get, Inject } from '@nestjs/common';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { MediaRepository } from '../repositories/media.repository';

@Controller()
export class HealthController {
  constructor(
    private readonly media: MediaRepository,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  /** `ok` when ffmpeg runs; `degraded` (still 200, so the process is not restarted in a loop) when not. */
  @Get('health')
  async health() {
    const ffmpeg = await this.media.version();
    return {
      status: ffmpeg ? 'ok' : 'degraded',
      ffmpeg: ffmpeg ?? null,
      templatesDir: this.config.templatesDir,
      version: process.env.npm_package_version ?? '0.1.0',
    };
  }
}
