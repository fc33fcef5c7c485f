import { Module } from '@nestjs/common';

/** Per-project webhook endpoints, signed Standard Webhooks messages, their retries, log and replay. */
@Module({
  providers: [],
  exports: [],
})
export class WebhooksModule {}
