import { Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { FARM_QUEUE, JobName, QueueKind } from '../jobs/job.types';
import { JOB_QUEUE } from '../jobs/queue.module';
import type { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { ProductsController } from './products.controller';
import { ProductsService } from './products.service';

/** How many product render requests one API process follows at once (each mostly waits). */
const TRACKERS = 16;

/** With DELIVERY_WORKERS (the default), this API process follows product render requests (they emit webhooks and write the store). */
@Injectable()
export class ProductWorkers implements OnApplicationBootstrap {
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

/** 3D products and their renders (VNTANA's contract): joined to the farm's lists, which AppModule spreads into its own. */
export const PRODUCTS_CONTROLLERS = [ProductsController];
export const PRODUCTS_PROVIDERS = [ProductsService, ProductWorkers];
