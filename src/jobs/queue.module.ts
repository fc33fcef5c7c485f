import { Global, Inject, Injectable, Logger, Module, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import * as path from 'node:path';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { waitForDependency } from '../health/dependency-wait';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { LiveStreamRepository } from '../repositories/live-stream/live-stream.repository';
import { RedisServerRepository } from '../repositories/job-queue/redis-server.repository';
import { RenderModule } from '../render/render.module';

export const JOB_QUEUE = Symbol('JOB_QUEUE');
/** Live channels (Redis Streams) on the queue's Redis. */
export const LIVE_STREAM = Symbol('LIVE_STREAM');

/**
 * Redis is not waited for before the process serves: stored outputs need no queue. Once
 * started, it is reported (once) if Redis does not answer, and given up on after
 * STARTUP_TIMEOUT_MS when that is set.
 */
@Injectable()
class QueueStartup implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Queue');
  private readonly stop = new AbortController();

  constructor(
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    @Inject(LIVE_STREAM) private readonly live: LiveStreamRepository,
    private readonly redis: RedisServerRepository,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    private readonly lifecycle: LifecycleService,
  ) {}

  onApplicationBootstrap(): void {
    // A moment to connect, then a clear reason (the connection's last error) if it did not.
    const reached = async () => {
      const attempt = new AbortController();
      const timer = setTimeout(() => attempt.abort(), 1000);
      await this.queue.whenAvailable(attempt.signal);
      clearTimeout(timer);
      if (!this.queue.available) throw new Error(this.queue.outage ?? 'Redis does not answer');
    };
    waitForDependency(`Redis at ${this.queue.where}`, reached, { publicName: 'queue', timeoutMs: this.config.startupTimeoutMs, logger: this.logger, sleep: (ms) => this.sleep(ms), signal: this.stop.signal }).catch(
      (err: Error) => this.stop.signal.aborted || this.lifecycle.fatal(err.message),
    );
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.stop.signal.removeEventListener('abort', wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.stop.signal.addEventListener('abort', wake, { once: true });
    });
  }

  /**
   * Queue connections first (bounded: Redis may be gone already), then the private
   * redis-server (it flushes its append-only file on TERM, in milliseconds): within the
   * shutdown's last second.
   */
  async onApplicationShutdown(): Promise<void> {
    this.stop.abort();
    await Promise.all([this.queue.close(100), this.live.close()]);
    await this.redis.stop(250);
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
      useFactory: async (config: MontageConfig, redis: RedisServerRepository) =>
        new JobQueueRepository(config.redisUrl ?? `unix://${await redis.start(path.join(config.dataDir, 'redis'))}`),
    },
    {
      provide: LIVE_STREAM,
      inject: [JOB_QUEUE, MONTAGE_CONFIG],
      useFactory: (queue: JobQueueRepository, config: MontageConfig) => new LiveStreamRepository(queue.url, config.queueOutageTimeoutMs),
    },
    QueueStartup,
  ],
  exports: [JOB_QUEUE, LIVE_STREAM],
})
export class QueueModule {}
