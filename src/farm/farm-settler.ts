import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { FarmJobsService } from './farm-jobs.service';

/** How often the settler looks at open and deleted jobs. */
export const SETTLE_INTERVAL_MS = 15_000;

/**
 * With DELIVERY_WORKERS (the default), this API process settles farm jobs nobody asks about:
 * their frame states are copied to the store while Redis still has them (they expire, and a
 * Redis without persistence loses them), and deleted jobs' frames are swept once their chunks
 * have ended. Every API process may run it: settling and sweeping are guarded and idempotent.
 */
@Injectable()
export class FarmSettler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Farm');
  private timer?: NodeJS.Timeout;
  private pass?: Promise<unknown>;

  constructor(
    private readonly jobs: FarmJobsService,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.deliveries.workers) return;
    this.timer = setInterval(() => {
      // One pass at a time: a slow one (a big sweep) is not run over by the next.
      this.pass ??= this.jobs
        .settleOpen()
        .catch((err: unknown) => this.logger.warn(`settling farm jobs failed: ${(err as Error).message}`))
        .finally(() => (this.pass = undefined));
    }, SETTLE_INTERVAL_MS);
    this.timer.unref();
  }

  /** No new pass; one under way ends on its own (its calls fail once Redis is closed, and are logged). */
  onModuleDestroy(): void {
    clearInterval(this.timer);
  }
}
