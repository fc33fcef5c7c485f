import { Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { JOB_QUEUE } from '../jobs/queue.module';
import { RenderModule } from '../render/render.module';
import type { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { RedisRateLimitStore } from '../repositories/rate-limit.repository';
import { RATE_LIMIT_STORE } from './rate-limit-store';
import { RateLimitsService } from './rate-limits.service';

@Injectable()
class RateLimitStoreShutdown implements OnApplicationShutdown {
  constructor(@Inject(RATE_LIMIT_STORE) private readonly store: RedisRateLimitStore) {}

  onApplicationShutdown(): void {
    this.store.close();
  }
}

/** Rate limits and quotas on the job queue's Redis, so every API process shares them. */
@Module({
  imports: [RenderModule], // for MONTAGE_CONFIG
  providers: [
    { provide: RATE_LIMIT_STORE, inject: [JOB_QUEUE], useFactory: (queue: JobQueueRepository) => new RedisRateLimitStore(queue.url) },
    RateLimitStoreShutdown,
    RateLimitsService,
  ],
  exports: [RateLimitsService],
})
export class LimitsModule {}
