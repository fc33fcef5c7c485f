import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { MediaRepository } from '../repositories/media.repository';
import { OUTPUT_STORAGE, type OutputStorage } from '../storage/output-storage';
import { JOB_QUEUE } from '../queue/queue.module';
import { JobQueueRepository } from '../repositories/job-queue.repository';
import { DOCUMENT_STORE, type DocumentStore } from '../store/document-store';

@Controller()
export class HealthController {
  constructor(
    private readonly media: MediaRepository,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
    @Inject(DOCUMENT_STORE) private readonly store: DocumentStore,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
  ) {}

  /** 200 `ok` when every dependency answers; 503 `degraded` naming the ones that do not. */
  @Get('health')
  async health(@Res({ passthrough: true }) res: Response) {
    const check = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
        return { ok: true };
      } catch (err) {
        return { ok: false, error: (err as Error).message };
      }
    };
    const ffmpeg = await this.media.version();
    const [store, storage, queue] = await Promise.all([
      check(() => this.store.ping()),
      check(() => this.storage.ping()),
      check(() => this.queue.ping()),
    ]);
    const ok = !!ffmpeg && store.ok && storage.ok && queue.ok;
    res.status(ok ? 200 : 503);
    return {
      status: ok ? 'ok' : 'degraded',
      ffmpeg: ffmpeg ?? null,
      store: { kind: this.store.kind, ...store },
      storage: { kind: this.storage.kind, location: this.storage.description, ...storage },
      queue: { kind: this.config.redisUrl ? 'redis' : 'embedded redis', ...queue },
      templatesDir: this.config.templatesDir,
      version: process.env.npm_package_version ?? '0.1.0',
    };
  }
}
