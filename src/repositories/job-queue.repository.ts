import { Logger } from '@nestjs/common';
import { type ConnectionOptions, Queue, QueueEvents, Worker } from 'bullmq';
import IORedis, { type RedisOptions } from 'ioredis';
import { type JobHandlers, JobName, type JobPayloads, type JobResults, type NodeHeartbeat, HEARTBEAT_PREFIX, HEARTBEAT_TTL_SEC, queueName } from '../queue/queue.types';

/** `redis://…`, `rediss://…` or `unix:///path/redis.sock` → ioredis options (BullMQ needs maxRetriesPerRequest: null). */
export function redisOptions(url: string): RedisOptions {
  if (url.startsWith('unix://')) return { path: url.slice('unix://'.length), maxRetriesPerRequest: null };
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 6379),
    username: u.username || undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null,
  };
}

export interface WorkerOptions {
  concurrency: number;
  /** How long a job's lock lasts without renewal; a node that dies loses its jobs after this. */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
}

/**
 * BullMQ on Redis: the only place that imports bullmq or ioredis. Queues per routing key,
 * jobs named by `JobName`, workers with one handler per job name, node heartbeats.
 */
export class JobQueueRepository {
  private readonly logger = new Logger('Queue');
  private readonly queues = new Map<string, Queue>();
  private readonly events = new Map<string, QueueEvents>();
  private readonly workers: Worker[] = [];
  private readonly redis: IORedis;

  constructor(private readonly connection: RedisOptions) {
    this.redis = new IORedis(connection);
  }

  private queue(routingKey: string): Queue {
    let q = this.queues.get(routingKey);
    if (!q) {
      q = new Queue(queueName(routingKey), { connection: this.connection as ConnectionOptions });
      this.queues.set(routingKey, q);
    }
    return q;
  }

  async enqueue<N extends JobName>(routingKey: string, name: N, payload: JobPayloads[N], jobId: string, attempts = 3): Promise<void> {
    await this.queue(routingKey).add(name, payload, {
      jobId,
      attempts,
      backoff: { type: 'exponential', delay: 500 },
      removeOnComplete: { age: 3600 },
      removeOnFail: { age: 24 * 3600 },
    });
  }

  /** Resolves with the job's result, rejects with its last error once no attempt is left. */
  async waitFor<N extends JobName>(routingKey: string, jobId: string, onProgress?: (value: number) => void): Promise<JobResults[N]> {
    const events = await this.queueEvents(routingKey);
    const queue = this.queue(routingKey);
    return new Promise<JobResults[N]>((resolve, reject) => {
      const cleanup = () => {
        events.off('completed', completed);
        events.off('failed', failed);
        events.off('progress', progress);
      };
      const completed = ({ jobId: id, returnvalue }: { jobId: string; returnvalue: unknown }) => {
        if (id !== jobId) return;
        cleanup();
        resolve((typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as JobResults[N]);
      };
      const failed = async ({ jobId: id, failedReason }: { jobId: string; failedReason: string }) => {
        if (id !== jobId) return;
        const job = await queue.getJob(jobId);
        if (job && job.attemptsMade < (job.opts.attempts ?? 1)) return; // another attempt follows
        cleanup();
        reject(new Error(failedReason));
      };
      const progress = ({ jobId: id, data }: { jobId: string; data: unknown }) => {
        if (id === jobId && typeof data === 'number') onProgress?.(data);
      };
      events.on('completed', completed);
      events.on('failed', failed);
      events.on('progress', progress);
      // The job may have ended before we listened.
      void queue.getJob(jobId).then(async (job) => {
        if (!job) return;
        const state = await job.getState();
        if (state === 'completed') completed({ jobId, returnvalue: job.returnvalue });
        else if (state === 'failed') failed({ jobId, failedReason: job.failedReason });
      });
    });
  }

  /** Starts one worker per routing key; every JobName must have its handler. */
  startWorkers(routingKeys: string[], handlers: JobHandlers, options: WorkerOptions): void {
    for (const name of Object.values(JobName)) {
      if (typeof handlers[name] !== 'function') throw new Error(`no handler for job "${name}"`);
    }
    for (const key of routingKeys) {
      const worker = new Worker(
        queueName(key),
        async (job) => {
          const handler = handlers[job.name as JobName] as (p: unknown, c: unknown) => Promise<unknown>;
          if (!handler) throw new Error(`unknown job "${job.name}"`);
          return handler(job.data, { attempt: job.attemptsMade + 1, progress: (v: number) => job.updateProgress(v) });
        },
        {
          connection: this.connection as ConnectionOptions,
          concurrency: options.concurrency,
          lockDuration: options.lockDurationMs ?? 30_000,
          stalledInterval: options.stalledIntervalMs ?? 30_000,
          maxStalledCount: 2,
        },
      );
      worker.on('error', (err) => this.logger.error(`worker ${key}: ${err.message}`));
      this.workers.push(worker);
    }
  }

  /** Jobs waiting per routing key (for metrics and warnings). */
  async waiting(routingKey: string): Promise<number> {
    return this.queue(routingKey).getWaitingCount();
  }

  async publishHeartbeat(beat: NodeHeartbeat): Promise<void> {
    await this.redis.set(`${HEARTBEAT_PREFIX}${beat.id}`, JSON.stringify(beat), 'EX', HEARTBEAT_TTL_SEC);
  }

  async liveNodes(): Promise<NodeHeartbeat[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', `${HEARTBEAT_PREFIX}*`, 'COUNT', 100);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    if (keys.length === 0) return [];
    const values = await this.redis.mget(...keys);
    return values.filter((v): v is string => !!v).map((v) => JSON.parse(v) as NodeHeartbeat);
  }

  async removeHeartbeat(id: string): Promise<void> {
    await this.redis.del(`${HEARTBEAT_PREFIX}${id}`);
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
    await Promise.all([...this.events.values()].map((e) => e.close()));
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.redis.disconnect();
  }

  private async queueEvents(routingKey: string): Promise<QueueEvents> {
    let events = this.events.get(routingKey);
    if (!events) {
      events = new QueueEvents(queueName(routingKey), { connection: this.connection as ConnectionOptions });
      this.events.set(routingKey, events);
      await events.waitUntilReady();
    }
    return events;
  }
}
