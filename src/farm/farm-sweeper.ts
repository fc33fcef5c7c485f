import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { FarmSpoolRepository } from '../repositories/farm-spool.repository';
import { FarmFilesService } from './farm-files.service';
import { FarmStore } from './farm-store';

/**
 * What the farm leaves behind unless someone sweeps it: uploads asked for and never confirmed
 * (their staged objects, up to FARM_MAX_FILE_BYTES each), download exclusion lists past their
 * URL's expiry, and scratch files of an API that died in the middle of a confirm. Every
 * SWEEP_INTERVAL_MS, in each API process (each step is idempotent: two APIs sweeping at once
 * remove the same things once).
 */
@Injectable()
export class FarmSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Farm');
  private timer?: NodeJS.Timeout;
  private sweeping = false;

  constructor(
    private readonly files: FarmFilesService,
    private readonly store: FarmStore,
    private readonly spool: FarmSpoolRepository,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.sweep(), Math.max(1000, this.config.retention.sweepIntervalMs));
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** One pass; what it removed, by kind. */
  async sweep(now = Date.now()): Promise<{ stages: number; downloads: number; spool: number }> {
    if (this.sweeping) return { stages: 0, downloads: 0, spool: 0 };
    this.sweeping = true;
    try {
      const stages = await this.files.sweepStages(now).catch(() => 0);
      const downloads = await this.store.downloads.deleteMany({ expiresAt: { $lt: new Date(now).toISOString() } }).catch(() => 0);
      const spool = await this.spool.removeOrphans(now).catch(() => 0);
      if (stages + downloads + spool > 0) this.logger.log(`farm sweep: ${stages} unconfirmed uploads, ${downloads} expired download lists, ${spool} scratch files of dead processes removed`);
      return { stages, downloads, spool };
    } finally {
      this.sweeping = false;
    }
  }
}
