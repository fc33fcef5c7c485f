import { Logger } from '@nestjs/common';
import { type ConnectionOptions, type FlowJob as BullFlowJob, FlowProducer, Queue, QueueEvents, UnrecoverableError, Worker } from 'bullmq';
import { MontageError } from '../common/errors';
import IORedis, { type RedisOptions } from 'ioredis';
import {
  type FlowJob,
  HEARTBEAT_PREFIX,
  HEARTBEAT_TTL_SEC,
  JOB_QUEUE_KIND,
  type JobHandlers,
  JobName,
  type JobPayloads,
  type JobResults,
  type NodeHeartbeat,
  type QueueKind,
} from '../queue/queue.types';

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

/** Retries, backoff and how long finished jobs are kept: the same for every job. */
const JOB_OPTIONS = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { age: 3600 },
  removeOnFail: { age: 24 * 3600 },
};

/**
 * BullMQ on Redis: the only place that imports bullmq or ioredis. Queues by name (render
 * nodes take `render.<routingKey>`), jobs named by `JobName`, flows of parent and child
 * jobs, workers with one handler per job name of their kind, node heartbeats.
 */
export class JobQueueRepository {
  private readonly logger = new Logger('Queue');
  private readonly queues = new Map<string, Queue>();
  private readonly events = new Map<string, QueueEvents>();
  private readonly workers: Worker[] = [];
  private readonly redis: IORedis;
  private flows?: FlowProducer;

  constructor(private readonly connection: RedisOptions) {
    this.redis = new IORedis(connection);
  }

  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.connection as ConnectionOptions });
      this.queues.set(name, q);
    }
    return q;
  }

  async enqueue<N extends JobName>(queue: string, name: N, payload: JobPayloads[N], jobId: string): Promise<void> {
    await this.queue(queue).add(name, payload, { jobId, ...JOB_OPTIONS });
  }

  /**
   * Adds a tree of jobs at once: a job runs only after all its children are done, and a
   * child that fails on every attempt fails its parent (and so on up). Ids are
   * deterministic, so adding the same tree again adds nothing.
   */
  async addFlow(root: FlowJob): Promise<void> {
    this.flows ??= new FlowProducer({ connection: this.connection as ConnectionOptions });
    const toBull = (job: FlowJob): BullFlowJob => ({
      name: job.name,
      queueName: job.queue,
      data: job.payload,
      opts: { jobId: job.jobId, ...JOB_OPTIONS, failParentOnFailure: true, ...(job.priority ? { priority: job.priority } : {}) },
      children: job.children?.map(toBull),
    });
    await this.flows.add(toBull(root));
  }

  /**
   * Resolves with the job's result, rejects with its last error once no attempt is left, or
   * when `signal` aborts (the caller gave up: no listener is left behind).
   */
  async waitFor<N extends JobName>(queueName: string, jobId: string, onProgress?: (value: number) => void, signal?: AbortSignal): Promise<JobResults[N]> {
    const events = await this.queueEvents(queueName);
    const queue = this.queue(queueName);
    return new Promise<JobResults[N]>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        events.off('completed', completed);
        events.off('failed', failed);
        events.off('progress', progress);
        signal?.removeEventListener('abort', aborted);
        fn();
      };
      const completed = ({ jobId: id, returnvalue }: { jobId: string; returnvalue: unknown }) => {
        if (id !== jobId) return;
        settle(() => resolve((typeof returnvalue === 'string' ? JSON.parse(returnvalue) : returnvalue) as JobResults[N]));
      };
      const failed = ({ jobId: id, failedReason }: { jobId: string; failedReason: string }) => {
        if (id !== jobId) return;
        // Retried (delayed or waiting again) unless the job is failed for good; a job whose child
        // failed fails at once, whatever its own attempts.
        queue.getJobState(jobId).then(
          (state) => state === 'failed' && settle(() => reject(new Error(failedReason))),
          (err: Error) => settle(() => reject(err)),
        );
      };
      const progress = ({ jobId: id, data }: { jobId: string; data: unknown }) => {
        if (id === jobId && typeof data === 'number') onProgress?.(data);
      };
      const aborted = () => settle(() => reject(new Error(`stopped waiting for job ${jobId}`)));
      if (signal?.aborted) return aborted();
      signal?.addEventListener('abort', aborted, { once: true });
      events.on('completed', completed);
      events.on('failed', failed);
      events.on('progress', progress);
      // The job may have ended before we listened.
      queue.getJob(jobId).then(
        async (job) => {
          if (!job) return;
          const state = await job.getState();
          if (state === 'completed') completed({ jobId, returnvalue: job.returnvalue });
          else if (state === 'failed') failed({ jobId, failedReason: job.failedReason });
        },
        (err: Error) => settle(() => reject(err)),
      );
    });
  }

  /** Removes a flow's parent and, with it, every job below it that has not run yet. */
  async removeFlow(queueName: string, parentId: string): Promise<void> {
    const job = await this.queue(queueName).getJob(parentId);
    await job?.remove({ removeChildren: true });
  }

  /** Starts one worker per queue; every job of the kind must have its handler. */
  startWorkers<K extends QueueKind>(kind: K, queues: string[], handlers: JobHandlers<K>, options: WorkerOptions): void {
    const table = handlers as Partial<Record<JobName, (payload: unknown, ctx: unknown) => Promise<unknown>>>;
    for (const name of Object.values(JobName)) {
      if (JOB_QUEUE_KIND[name] === kind && typeof table[name] !== 'function') throw new Error(`no handler for job "${name}"`);
    }
    for (const queue of queues) {
      const worker = new Worker(
        queue,
        async (job) => {
          const handler = JOB_QUEUE_KIND[job.name as JobName] === kind ? table[job.name as JobName] : undefined;
          if (!handler) throw new Error(`job "${job.name}" is not taken from ${queue}`);
          try {
            return await handler(job.data, {
              attempt: job.attemptsMade + 1,
              progress: (v: number) => job.updateProgress(v),
              childrenValues: async () => Object.values(await job.getChildrenValues()),
            });
          } catch (err) {
            // Bad input stays bad: fail the job now rather than retry it.
            if (err instanceof MontageError && err.kind === 'bad_input') throw new UnrecoverableError(err.message);
            throw err;
          }
        },
        {
          connection: this.connection as ConnectionOptions,
          concurrency: options.concurrency,
          lockDuration: options.lockDurationMs ?? 30_000,
          stalledInterval: options.stalledIntervalMs ?? 30_000,
          maxStalledCount: 2,
        },
      );
      worker.on('error', (err) => this.logger.error(`worker ${queue}: ${err.message}`));
      this.workers.push(worker);
    }
  }

  /** Jobs waiting in a queue, prioritised ones included (for metrics and warnings). */
  async waiting(queue: string): Promise<number> {
    const counts = await this.queue(queue).getJobCounts('wait', 'prioritized');
    return (counts.wait ?? 0) + (counts.prioritized ?? 0);
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
    await this.flows?.close();
    await Promise.all([...this.events.values()].map((e) => e.close()));
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.redis.disconnect();
  }

  private async queueEvents(name: string): Promise<QueueEvents> {
    let events = this.events.get(name);
    if (!events) {
      events = new QueueEvents(name, { connection: this.connection as ConnectionOptions });
      this.events.set(name, events);
      await events.waitUntilReady();
    }
    return events;
  }
}
