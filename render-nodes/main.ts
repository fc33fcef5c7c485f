import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfig } from '../src/config/config';
import { QueueModule } from '../src/queue/queue.module';
import { RenderModule } from '../src/render/render.module';
import { RenderNodeModule } from './render-node.module';

@Module({ imports: [RenderModule, QueueModule, RenderNodeModule] })
class RenderNodeApp {}

/** `npm run render-node`: REDIS_URL, ROUTING_KEYS, CONCURRENCY, MONTAGE_TEMPLATES_DIR, MONTAGE_DATA_DIR. */
async function main() {
  const config = loadConfig();
  if (!config.redisUrl) {
    console.error('REDIS_URL is required for a render node (on the API machine: unix://<data dir>/redis/redis.sock)');
    process.exit(2);
  }
  const app = await NestFactory.createApplicationContext(RenderNodeApp, { logger: ['error', 'warn', 'log'] });
  app.enableShutdownHooks();
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
