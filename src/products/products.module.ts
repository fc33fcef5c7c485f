import { Inject, Injectable, Module, OnApplicationBootstrap } from '@nestjs/common';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { FarmModule } from '../farm/farm.module';
import { FARM_QUEUE, JobName, QueueKind } from '../jobs/job.types';
import { JOB_QUEUE } from '../jobs/queue.module';
import type { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { OutputStorageModule } from '../repositories/output-storage/output-storage.module';
import { WebhooksModule } from '../webhooks/webhooks.module';
import { ProductsController } from './products.controller';
import { ProductsService } from './products.service';

/** How many product render requests one API process follows at once (each mostly waits). */
const TRACKERS = 16;

/** With DELIVERY_WORKERS (the default), this API process follows product render requests (they emit webhooks and write the store). */
@Injectable()
class ProductWorkers implements OnApplicationBootstrap {
  constructor(
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    private readonly products: ProductsService,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.deliveries.workers) return;
    this.queue.startWorkers(QueueKind.Farm, [FARM_QUEUE], { [JobName.TrackProductRender]: (payload, ctx) => this.products.track(payload, ctx) }, { concurrency: TRACKERS });
  }
}

/** 3D products and their renders (VNTANA's contract). */
@Module({
  imports: [FarmModule, WebhooksModule, OutputStorageModule],
  controllers: [ProductsController],
  providers: [ProductsService, ProductWorkers],
})
export class ProductsModule {}
