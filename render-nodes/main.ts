import 'reflect-metadata';
import { type DynamicModule, Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ConfigModule, type JobQueueRepository, handleShutdown, type MontageConfig, JOB_QUEUE, LifecycleModule, LifecycleService, loadConfig, QueueModule, RenderModule, RetentionModule } from '../src/render-node-kit';
import { RenderNodeModule } from './render-node.module';

/** The node program's root: the configuration read once here, the queue, the node's workers, its caches' sweeper. */
@Module({})
class RenderNodeApp {
  static forRoot(config: MontageConfig): DynamicModule {
    return { module: RenderNodeApp, imports: [ConfigModule.forRoot(config), LifecycleModule, RenderModule, QueueModule, RenderNodeModule, RetentionModule] };
  }
}

/**
 * `npm run render-node`: REDIS_URL, STORAGE_URL, ROUTING_KEYS, CONCURRENCY, MONTAGE_TEMPLATES_DIR, MONTAGE_DATA_DIR.
 * SIGTERM/SIGINT: no new jobs; running ones get SHUTDOWN_GRACE_MS to finish, then go back
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
  const app = await NestFactory.createApplicationContext(RenderNodeApp.forRoot(config), { logger: ['error', 'warn', 'log'], abortOnError: false });
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
