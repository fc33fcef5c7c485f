import { Global, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import * as path from 'node:path';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { JobQueueRepository, redisOptions } from '../repositories/job-queue.repository';
import { RedisServerRepository } from '../repositories/redis-server.repository';
import { RenderModule } from '../render/render.module';

export const JOB_QUEUE = Symbol('JOB_QUEUE');

/** Closes the queue connections, then the private redis-server if this process started one. */
@Injectable()
class QueueShutdown implements OnApplicationShutdown {
  constructor(
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    private readonly redis: RedisServerRepository,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.queue.close();
    await this.redis.stop();
  }
}

/**
 * BullMQ's Redis: REDIS_URL when set; otherwise a private redis-server under the data dir
 * (the embedded default), reachable by render nodes on this machine at
 * `unix://<dataDir>/redis/redis.sock`.
 */
@Global()
@Module({
  imports: [RenderModule],
  providers: [
    RedisServerRepository,
    {
      provide: JOB_QUEUE,
      inject: [MONTAGE_CONFIG, RedisServerRepository],
      useFactory: async (config: MontageConfig, redis: RedisServerRepository) => {
        const url = config.redisUrl ?? `unix://${await redis.start(path.join(config.dataDir, 'redis'))}`;
        const queue = new JobQueueRepository(redisOptions(url));
        await queue.ping();
        return queue;
      },
    },
    QueueShutdown,
  ],
  exports: [JOB_QUEUE],
})
export class QueueModule {}
