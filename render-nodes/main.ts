import 'reflect-metadata';
import { Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfig } from '../src/config/config';
import { LifecycleModule } from '../src/lifecycle/lifecycle.module';
import { LifecycleService } from '../src/lifecycle/lifecycle.service';
import { handleShutdown } from '../src/lifecycle/shutdown';
import { JOB_QUEUE, QueueModule } from '../src/jobs/queue.module';
import type { JobQueueRepository } from '../src/repositories/job-queue/job-queue.repository';
import { RenderModule } from '../src/render/render.module';
import { RetentionModule } from '../src/retention/retention.module';
import { RenderNodeModule } from './render-node.module';

@Module({ imports: [LifecycleModule, RenderModule, QueueModule, RenderNodeModule, RetentionModule] })
class RenderNodeApp {}

/**
 * `npm run render-node`: REDIS_URL, ROUTING_KEYS, CONCURRENCY, MONTAGE_TEMPLATES_DIR, MONTAGE_DATA_DIR.
 * SIGTERM/SIGINT: no new segments; running ones get SHUTDOWN_GRACE_MS to finish, then go back
 * to their queue for another node (without using an attempt); the process exits within
 * grace + 1 s even when Redis is gone.
 */
async function main() {
  const logger = new Logger('RenderNode');
  const config = loadConfig();
  if (!config.redisUrl) {
    console.error('REDIS_URL is required for a render node (on the API machine: unix://<data dir>/redis/redis.sock)');
    process.exit(2);
  }
  const app = await NestFactory.createApplicationContext(RenderNodeApp, { logger: ['error', 'warn', 'log'], abortOnError: false });
  const shutdown = handleShutdown({
    name: 'render node',
    graceMs: config.shutdownGraceMs,
    logger,
    stop: async () => {
      app.get(LifecycleService).draining = true;
      await app.get<JobQueueRepository>(JOB_QUEUE).drainWorkers(config.shutdownGraceMs);
      await app.close();
    },
  });
  app.get(LifecycleService).onFatal((message) => shutdown.begin(message, 1));
  await app.init();
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
