import { Inject, Injectable, Logger, Module, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { JobName, QueueKind, WEBHOOK_QUEUE } from '../jobs/job.types';
import { JOB_QUEUE } from '../jobs/queue.module';
import type { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { OutboundHttpRepository } from '../repositories/outbound-http/outbound-http.repository';
import { WebhookSignerRepository } from '../repositories/webhook-signer.repository';
import { RenderWebhooks } from './render-webhooks';
import { SWEEP_AFTER_MS, WebhookSender } from './webhook-sender.service';
import { WebhookEndpointsService } from './webhook-endpoints.service';
import { ProjectAccess, WebhookStore } from './webhook-store';
import { WebhooksController } from './webhooks.controller';
import { WebhooksService } from './webhooks.service';

/**
 * With DELIVERY_WORKERS (the default), this API process sends webhook messages: workers on
 * the webhook queue, and a sweep every SWEEP_AFTER_MS / 2 that queues again the messages whose
 * job was lost and, once an hour, drops delivery-log entries past their retention.
 */
@Injectable()
class WebhookWorkers implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Webhooks');
  private timer?: NodeJS.Timeout;
  private sweeping = false;
  private prunedAt = 0;

  constructor(
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    private readonly sender: WebhookSender,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.deliveries.workers) return;
    this.queue.startWorkers(QueueKind.Webhook, [WEBHOOK_QUEUE], { [JobName.SendWebhook]: (payload) => this.sender.handle(payload) }, { concurrency: this.config.deliveries.webhookConcurrency });
    this.timer = setInterval(() => void this.sweep(), SWEEP_AFTER_MS / 2);
    this.timer.unref();
  }

  private async sweep(): Promise<void> {
    if (this.sweeping || !this.queue.available) return;
    this.sweeping = true;
    try {
      await this.sender.sweep();
      if (Date.now() - this.prunedAt > 3600_000) {
        this.prunedAt = Date.now();
        await this.sender.prune();
      }
    } catch (err) {
      this.logger.warn(`webhook sweep: ${(err as Error).message}`);
    } finally {
      this.sweeping = false;
    }
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }
}

/** Per-project webhook endpoints, signed Standard Webhooks messages, their retries, log and replay. */
@Module({
  controllers: [WebhooksController],
  providers: [WebhookStore, ProjectAccess, WebhookSignerRepository, OutboundHttpRepository, WebhooksService, WebhookEndpointsService, WebhookSender, RenderWebhooks, WebhookWorkers],
  exports: [WebhooksService],
})
export class WebhooksModule {}
