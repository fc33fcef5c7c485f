import { Logger } from '@nestjs/common';
import {
  type ConnectionOptions,
  type FlowJob as BullFlowJob,
  FlowProducer,
  type Job,
  Queue,
  QueueEvents,
  DelayedError,
  UnrecoverableError,
  Worker,
} from 'bullmq';
import IORedis, { type RedisOptions } from 'ioredis';

import type { FrameState } from '../../farm/farm.types';
import { frameStatesKey } from '../../farm/farm-keys';
import { isPermanent, MontageError, unavailable } from '../../common/errors';
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
  type EnqueueOptions,
  RetryLater,
} from '../../jobs/job.types';

/** Failures of a run's jobs are remembered this long (a run lasts minutes). */
const FAILURES_TTL_SEC = 24 * 3600;
const TIMINGS_KEY = 'montage:engine-timings';
/** What a worker says in place of an error that is not a MontageError (its details are logged, not shown). */
const UNEXPECTED_NODE_FAILURE = 'the render node failed unexpectedly (its log has the details)';
const UNEXPECTED_JOB_FAILURE = 'the job failed unexpectedly (the log of the process that ran it has the details)';

/**
 * Whether a failed job's reason was written by our worker: the last stack BullMQ kept is of
 * the error that reason came from, a MontageError (UnrecoverableError: a permanent one) or
 * one of the plain sentences above. A stall leaves no stack of its own, so an older
 * attempt's stack never vouches for it.
 */
export function failedByMontage(reason: string | undefined, stacktrace: string[] | null | undefined): boolean {
  if (!reason) return false;
  if (reason === UNEXPECTED_NODE_FAILURE || reason === UNEXPECTED_JOB_FAILURE) return true;
  const header = (stacktrace?.at(-1) ?? '').split('\n')[0];
  const firstLine = reason.split('\n')[0];
  return header === `MontageError: ${firstLine}` || header === `UnrecoverableError: ${firstLine}`;
}

/** A farm job's Redis state lives a week: a job runs for hours, and the API copies it to the store once it settles. */
const FARM_STATE_TTL_SEC = 7 * 24 * 3600;

/**
 * `redis://…`, `rediss://…` or `unix:///path/redis.sock` → ioredis options. Reconnects every
 * 0.1–2 s for ever (BullMQ's own default backs off to 20 s, which would keep a render waiting
 * long after Redis is back).
 */
export function redisOptions(url: string): RedisOptions {
  const common: RedisOptions = { maxRetriesPerRequest: null, retryStrategy: (times: number) => Math.min(100 * times, 2000) };
  if (url.startsWith('unix://')) return { ...common, path: url.slice('unix://'.length) };
  const u = new URL(url);
  return {
    ...common,
    host: u.hostname,
    port: Number(u.port || 6379),
    username: u.username || undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
}

/** Where Redis is, for logs and errors: never the password. */
export function describeRedis(url: string): string {
  if (url.startsWith('unix://')) return url;
  const u = new URL(url);
  return `${u.protocol}//${u.hostname}:${u.port || 6379}${u.pathname.length > 1 ? u.pathname : ''}`;
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

/** A command sent while Redis answers, that does not answer within this, counts as an outage. */
const COMMAND_TIMEOUT_MS = 5000;

/** ioredis's words for a connection that is not there (each client reconnects on its own schedule). */
const CONNECTION_ERROR = /Stream isn't writeable|Connection is closed|enableOfflineQueue|MaxRetriesPerRequest|ECONNREFUSED|ECONNRESET|ENOENT|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|write after end/i;

/**
 * BullMQ on Redis: the only place that imports bullmq or ioredis. Queues by name (render
 * nodes take `render.<routingKey>`), jobs named by `JobName`, flows of parent and child
 * jobs, workers with one handler per job name of their kind, node heartbeats.
 *
 * Redis going away is an outage, not a crash: every client has an error listener (an
 * emitter without one would kill the process), an outage is logged once when it starts and
 * once when it ends, calls that need Redis fail at once with `unavailable` (HTTP 503) while
 * it is away instead of hanging, and waits for jobs give up after a bounded outage.
 */
export class JobQueueRepository {
  private readonly logger = new Logger('Queue');
  private readonly queues = new Map<string, Queue>();
  private readonly events = new Map<string, QueueEvents>();
  private readonly workers: Worker[] = [];
  private readonly redis: IORedis;
  private flows?: FlowProducer;
  private readonly connection: RedisOptions;
  /** Producer-side connections fail instead of queueing commands while Redis is away. */
  private readonly producer: RedisOptions;
  private up = false;
  private downSince?: number;
  private lastError = '';
  private readonly listeners = new Set<(up: boolean) => void>();
  /** Aborted when this process hands its running jobs back (shutdown after the grace period). */
  private readonly handBack = new AbortController();
  private closed = false;

  constructor(
    /** The Redis this queue uses (with its password): for other Redis clients of the same server. */
    readonly url: string,
    readonly where = describeRedis(url),
  ) {
    this.connection = redisOptions(url);
    this.producer = { ...this.connection, enableOfflineQueue: false };
    this.redis = new IORedis(this.producer);
    this.redis.on('ready', () => this.setUp(true));
    this.redis.on('close', () => this.setUp(false));
    this.redis.on('end', () => this.setUp(false));
    this.redis.on('error', (err: Error) => this.noteError('redis', err));
  }

  /** Whether Redis answers now (as seen by this process's own connection). */
  get available(): boolean {
    return this.up;
  }

  /** Description of the outage, or undefined when Redis is up. */
  get outage(): string | undefined {
    if (this.up) return undefined;
    return `Redis at ${this.where} is unreachable${this.lastError ? ` (${this.lastError})` : ''}`;
  }

  /** Called with true when Redis comes back, false when it goes; returns the unsubscriber. */
  onAvailability(listener: (up: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once Redis answers (or at once); for start-up logs and readiness. */
  whenAvailable(signal?: AbortSignal): Promise<void> {
    if (this.up) return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.onAvailability((up) => up && done());
      const done = () => {
        off();
        signal?.removeEventListener('abort', done);
        resolve();
      };
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private setUp(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    if (up) {
      if (this.downSince !== undefined) this.logger.log(`Redis at ${this.where} answers again after ${((Date.now() - this.downSince) / 1000).toFixed(1)} s`);
      this.downSince = undefined;
      this.lastError = '';
    } else if (!this.closed) {
      this.downSince = Date.now();
      this.logger.error(`${this.outage}; reconnecting (renders that need it wait up to a bound, then fail)`);
    }
    for (const listener of this.listeners) listener(up);
  }

  /** Errors repeat at every reconnect attempt: remembered, logged only outside an outage. */
  private noteError(source: string, err: Error): void {
    const message = (err.message || String(err)).slice(0, 200);
    if (this.closed) return;
    if (this.up || this.downSince === undefined) {
      if (message !== this.lastError) this.logger.warn(`${source}: ${message}`);
    }
    this.lastError = message;
  }

  /**
   * A producer-side call: fails at once while Redis is away, and after COMMAND_TIMEOUT_MS if it
   * stops answering. Clients read that the queue is away; where it is, and why, goes to the log.
   */
  private async guard<T>(what: string, call: () => Promise<T>): Promise<T> {
    const away = (why: string) => unavailable(`cannot ${what}: the job queue (Redis) is unreachable; try again in a moment`, 5, why);
    if (!this.up) throw away(this.outage ?? 'down');
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        call(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(away(`Redis at ${this.where} did not answer within ${COMMAND_TIMEOUT_MS / 1000} s`)), COMMAND_TIMEOUT_MS);
        }),
      ]);
    } catch (err) {
      if (err instanceof MontageError) throw err;
      // Another client of this process may still be reconnecting while the canary is up again.
      if (!this.up || CONNECTION_ERROR.test(`${(err as Error).name} ${(err as Error).message}`)) throw away(`${this.outage ?? 'a connection is down'}: ${(err as Error).message}`);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.producer as ConnectionOptions });
      q.on('error', (err) => this.noteError(`queue ${name}`, err));
      this.queues.set(name, q);
    }
    return q;
  }

  /** Adds a job; a job with this id already in the queue (waiting, running or kept after its end) makes this a no-op. */
  async enqueue<N extends JobName>(queue: string, name: N, payload: JobPayloads[N], jobId: string, options: EnqueueOptions = {}): Promise<void> {
    const opts = {
      jobId,
      ...JOB_OPTIONS,
      ...(options.attempts ? { attempts: options.attempts } : {}),
      ...(options.backoffMs ? { backoff: { type: 'exponential', delay: options.backoffMs } } : {}),
      ...(options.delayMs ? { delay: options.delayMs } : {}),
      ...(options.priority ? { priority: options.priority } : {}),
    };
    await this.guard('add a job', () => this.queue(queue).add(name, payload, opts));
  }

  /** Adds many jobs of one queue in one round trip (ids deduplicate as in `enqueue`). */
  async enqueueBulk<N extends JobName>(queue: string, name: N, jobs: Array<{ payload: JobPayloads[N]; jobId: string }>, options: EnqueueOptions = {}): Promise<void> {
    if (jobs.length === 0) return;
    const base = {
      ...JOB_OPTIONS,
      ...(options.attempts ? { attempts: options.attempts } : {}),
      ...(options.backoffMs ? { backoff: { type: 'exponential', delay: options.backoffMs } } : {}),
      ...(options.delayMs ? { delay: options.delayMs } : {}),
    };
    await this.guard('add jobs', () => this.queue(queue).addBulk(jobs.map((j) => ({ name, data: j.payload, opts: { ...base, jobId: j.jobId } }))));
  }

  /**
   * Adds a tree of jobs at once: a job runs only after all its children are done, and a
   * child that fails on every attempt fails its parent (and so on up). Ids are
   * deterministic, so adding the same tree again adds nothing.
   */
  async addFlows(roots: FlowJob[]): Promise<void> {
    if (!this.flows) {
      this.flows = new FlowProducer({ connection: this.producer as ConnectionOptions });
      this.flows.on('error', (err) => this.noteError('flow producer', err));
    }
    const flows = this.flows;
    const toBull = (job: FlowJob): BullFlowJob => ({
      name: job.name,
      queueName: job.queue,
      data: job.payload,
      opts: { jobId: job.jobId, ...JOB_OPTIONS, failParentOnFailure: true, ...(job.priority ? { priority: job.priority } : {}) },
      children: job.children?.map(toBull),
    });
    await this.guard('add the render to the queue', () => flows.addBulk(roots.map(toBull)));
  }

  /**
   * Removes a job that has not started (waiting, delayed, prioritised); a running one is left
   * alone (BullMQ refuses to remove a locked job). Whether it was removed.
   */
  async removeWaiting(queueName: string, jobId: string): Promise<boolean> {
    const job = await this.guard('read a job', () => this.queue(queueName).getJob(jobId));
    if (!job) return false;
    const state = await this.guard('read a job', () => job.getState());
    if (!['waiting', 'delayed', 'prioritized', 'paused', 'wait'].includes(state)) return false;
    return this.guard('remove a job', () => job.remove()).then(
      () => true,
      () => false, // taken by a node meanwhile: it runs (and renders nothing once the job is stopped)
    );
  }

  /**
   * A job's state and, once failed, its reason; undefined when the queue has no such job.
   * `ours`: the reason is what a worker of ours wrote (a MontageError's message, or the plain
   * sentence it puts in place of anything else), safe to show; not BullMQ's own (a stall).
   */
  async jobState(queueName: string, jobId: string): Promise<{ state: string; failedReason?: string; ours?: boolean } | undefined> {
    const job = await this.guard('read a job', () => this.queue(queueName).getJob(jobId));
    if (!job) return undefined;
    const state = await this.guard('read a job', () => job.getState());
    if (state !== 'failed') return { state };
    return { state, failedReason: job.failedReason, ours: failedByMontage(job.failedReason, job.stacktrace) };
  }

  /**
   * Resolves with the job's result, rejects with its last error once no attempt is left, when
   * `signal` aborts (the caller gave up: no listener is left behind), or when Redis has been
   * unreachable for `outageTimeoutMs` in a row. Missed events (Redis went away and came back)
   * are made up for by asking for the job's state again on every reconnection.
   */
  async waitFor<N extends JobName>(
    queueName: string,
    jobId: string,
    options: { onProgress?: (value: number) => void; signal?: AbortSignal; outageTimeoutMs?: number; pollMs?: number } = {},
  ): Promise<JobResults[N]> {
    const { onProgress, signal, outageTimeoutMs, pollMs = 5000 } = options;
    const events = this.queueEvents(queueName);
    const queue = this.queue(queueName);
    // Listening before the first look at the job's state; not for long if Redis is away.
    let ready: NodeJS.Timeout | undefined;
    await Promise.race([events.waitUntilReady().catch(() => undefined), new Promise((r) => (ready = setTimeout(r, 1000)))]);
    clearTimeout(ready);
    return new Promise<JobResults[N]>((resolve, reject) => {
      let settled = false;
      let outageTimer: NodeJS.Timeout | undefined;
      // Events can be missed (the listener connected after the job ended, Redis restarted): look again now and then.
      const poll = setInterval(() => check(), pollMs);
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        events.off('completed', completed);
        events.off('failed', failed);
        events.off('progress', progress);
        signal?.removeEventListener('abort', aborted);
        offAvailability();
        clearTimeout(outageTimer);
        clearInterval(poll);
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
        this.guard('read a job', () => queue.getJobState(jobId)).then(
          (state) => state === 'failed' && settle(() => reject(new Error(failedReason))),
          () => undefined, // asked again when Redis is back
        );
      };
      const progress = ({ jobId: id, data }: { jobId: string; data: unknown }) => {
        if (id === jobId && typeof data === 'number') onProgress?.(data);
      };
      const aborted = () => settle(() => reject(new Error(`stopped waiting for job ${jobId}`)));
      let missing = 0;
      /** The job may have ended before we listened, or while Redis was away. */
      const check = () => {
        this.guard('read a job', () => queue.getJob(jobId))
          .then(async (job) => {
            // Gone twice in a row: a Redis that came back without its data (or the job was removed).
            if (!job) {
              if (++missing >= 2) settle(() => reject(unavailable('the job queue lost this render (Redis came back without its data); request the output again')));
              return;
            }
            missing = 0;
            const state = await this.guard('read a job', () => job.getState());
            if (state === 'completed') completed({ jobId, returnvalue: job.returnvalue });
            else if (state === 'failed') failed({ jobId, failedReason: job.failedReason });
          })
          .catch(() => undefined); // Redis away: asked again when it is back
      };
      const armOutage = () => {
        if (!outageTimeoutMs || outageTimer) return;
        outageTimer = setTimeout(() => {
          settle(() => reject(unavailable(`Redis (the job queue) was unreachable for more than ${Math.round(outageTimeoutMs / 1000)} s; request the output again`)));
        }, outageTimeoutMs);
      };
      const offAvailability = this.onAvailability((up) => {
        if (up) {
          clearTimeout(outageTimer);
          outageTimer = undefined;
          check();
        } else {
          armOutage();
        }
      });
      if (signal?.aborted) return aborted();
      signal?.addEventListener('abort', aborted, { once: true });
      events.on('completed', completed);
      events.on('failed', failed);
      events.on('progress', progress);
      if (!this.up) armOutage();
      check();
    });
  }

  /**
   * Removes every job of a flow that has not started (running ones finish; BullMQ refuses to
   * remove a parent while one of its children is locked), then the parent if it can.
   */
  async removeFlow(queueName: string, parentId: string): Promise<void> {
    const queue = this.queue(queueName);
    const job = await this.guard('read a job', () => queue.getJob(parentId));
    if (!job) return;
    await this.guard('remove a render from the queue', () => job.removeUnprocessedChildren());
    // A child still running holds its parent back: the parent alone goes, so nothing runs after the child.
    await this.guard('remove a render from the queue', () => job.remove({ removeChildren: true }))
      .catch(() => this.guard('remove a render from the queue', () => job.remove({ removeChildren: false })))
      .catch(() => undefined);
  }

  /**
   * Starts one worker per queue; every job of the kind must have its handler. A job this
   * process hands back when it shuts down goes back to its queue without using an attempt.
   */
  startWorkers<K extends QueueKind>(kind: K, queues: string[], handlers: JobHandlers<K>, options: WorkerOptions): void {
    const table = handlers as Partial<Record<JobName, (payload: unknown, ctx: unknown) => Promise<unknown>>>;
    for (const name of Object.values(JobName)) {
      if (JOB_QUEUE_KIND[name] === kind && typeof table[name] !== 'function') throw new Error(`no handler for job "${name}"`);
    }
    for (const queue of queues) {
      const worker = new Worker(
        queue,
        async (job: Job, token?: string) => {
          const handler = JOB_QUEUE_KIND[job.name as JobName] === kind ? table[job.name as JobName] : undefined;
          if (!handler) throw new Error(`job "${job.name}" is not taken from ${queue}`);
          this.running++;
          try {
            return await handler(job.data, {
              // Every start counts (a stalled re-run, a hand-back): pieces of an older start are told apart.
              attempt: Math.max(job.attemptsStarted ?? 0, job.attemptsMade + 1),
              progress: (v: number) => job.updateProgress(v),
              lastAttempt: job.attemptsMade + 1 >= (job.opts.attempts ?? 1),
              signal: this.handBack.signal,
            });
          } catch (err) {
            if (this.handBack.signal.aborted && token) {
              // Stopping: back to the queue for another node, without spending an attempt. The
              // promise BullMQ gets never settles: it would otherwise take the job again at once,
              // even from a closing worker; the worker is force-closed next.
              const back = await this.guard('hand a job back', () => job.moveToWait(token)).then(() => true, () => false);
              if (back) {
                this.logger.log(`handed job ${job.id} back to ${queue}`);
                return new Promise<never>(() => undefined);
              }
            }
            if (err instanceof RetryLater && token) {
              // Later, without spending an attempt: BullMQ's own way (moveToDelayed, then DelayedError).
              await this.guard('delay a job', () => job.moveToDelayed(Date.now() + err.delayMs, token));
              throw new DelayedError();
            }
            // Bad input stays bad: fail the job now rather than retry it.
            if (isPermanent(err)) throw new UnrecoverableError((err as Error).message);
            if (err instanceof MontageError) {
              if (err.internal) this.logger.warn(`job ${job.id} (${job.name}) failed: ${err.message} — ${err.internal}`);
              throw err;
            }
            // Anything else is this machine's business: logged here, a plain reason for the API.
            this.logger.error(`job ${job.id} (${job.name}) failed: ${(err as Error).stack ?? err}`);
            throw new Error(JOB_QUEUE_KIND[job.name as JobName] === 'render' || JOB_QUEUE_KIND[job.name as JobName] === 'assembly' ? UNEXPECTED_NODE_FAILURE : UNEXPECTED_JOB_FAILURE);
          } finally {
            this.running--;
            this.idle();
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
      worker.on('error', (err) => this.noteError(`worker ${queue}`, err));
      this.workers.push(worker);
    }
  }

  /** Jobs this process's workers are running now. */
  private running = 0;
  private idleWaiters: Array<() => void> = [];

  private idle(): void {
    if (this.running > 0) return;
    for (const wake of this.idleWaiters.splice(0)) wake();
  }

  private whenIdle(): Promise<void> {
    return this.running === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Shutdown, step one: workers take no new job (running ones go on); after `graceMs`, jobs
   * still running are asked to stop (their signal aborts) and go back to their queue. Then the
   * workers close without waiting for Redis. Resolves when no job of this process runs.
   */
  async drainWorkers(graceMs: number): Promise<void> {
    if (this.workers.length === 0) return;
    await Promise.allSettled(this.workers.map((w) => w.pause(true)));
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([this.whenIdle().then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs)))]);
    clearTimeout(timer);
    if (!finished) {
      // Within the shutdown's last second: encoders are killed at once, a hand-back is one Redis call.
      this.handBack.abort();
      await Promise.race([this.whenIdle(), new Promise((r) => (timer = setTimeout(r, 200)))]);
      clearTimeout(timer);
    }
    await Promise.race([Promise.allSettled(this.workers.map((w) => w.close(true))), new Promise((r) => (timer = setTimeout(r, 100)))]);
    clearTimeout(timer);
  }

  /** Jobs waiting in a queue, prioritised ones included (for metrics and warnings). */
  async waiting(queue: string): Promise<number> {
    const counts = await this.guard('count jobs', () => this.queue(queue).getJobCounts('wait', 'prioritized'));
    return (counts.wait ?? 0) + (counts.prioritized ?? 0);
  }

  async publishHeartbeat(beat: NodeHeartbeat): Promise<void> {
    await this.guard('publish a heartbeat', () => this.redis.set(`${HEARTBEAT_PREFIX}${beat.id}`, JSON.stringify(beat), 'EX', HEARTBEAT_TTL_SEC));
  }

  async liveNodes(): Promise<NodeHeartbeat[]> {
    return this.guard('list render nodes', async () => {
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
    });
  }

  /**
   * A render job failed on `node` (Flamenco's rules): remembered for the job (it goes to
   * another node next) and counted for the run (a node that failed three of its jobs gets no more).
   */
  async noteRenderFailure(runKey: string, jobKey: string, node: string): Promise<void> {
    await this.guard('note a render failure', async () => {
      const jobSet = `montage:failures:job:${runKey}:${jobKey}`;
      const runHash = `montage:failures:run:${runKey}`;
      await this.redis.multi().sadd(jobSet, node).expire(jobSet, FAILURES_TTL_SEC).hincrby(runHash, node, 1).expire(runHash, FAILURES_TTL_SEC).exec();
    });
  }

  /** The nodes that failed this job, and how many jobs of the run each node failed. */
  async renderFailures(runKey: string, jobKey: string): Promise<{ jobNodes: string[]; runFailures: Record<string, number> }> {
    return this.guard('read render failures', async () => {
      const [jobNodes, run] = await Promise.all([this.redis.smembers(`montage:failures:job:${runKey}:${jobKey}`), this.redis.hgetall(`montage:failures:run:${runKey}`)]);
      return { jobNodes, runFailures: Object.fromEntries(Object.entries(run).map(([k, v]) => [k, Number(v)])) };
    });
  }

  /** When a job was first handed on (the first call sets it): a job handed on for too long runs where it is. */
  async handedOnSince(runKey: string, jobKey: string): Promise<number> {
    return this.guard('read a hand-on time', async () => {
      const key = `montage:failures:handed-on:${runKey}`;
      const [, , since] = (await this.redis.multi().hsetnx(key, jobKey, String(Date.now())).expire(key, FAILURES_TTL_SEC).hget(key, jobKey).exec()) ?? [];
      return Number(since?.[1]) || Date.now();
    });
  }

  /** Observed seconds per frame of a scene and its settings (adaptive chunks); a running average. */
  async recordTiming(key: string, secondsPerFrame: number): Promise<void> {
    await this.guard('record a timing', async () => {
      const previous = Number(await this.redis.hget(TIMINGS_KEY, key));
      const next = Number.isFinite(previous) && previous > 0 ? previous * 0.5 + secondsPerFrame * 0.5 : secondsPerFrame;
      await this.redis.hset(TIMINGS_KEY, key, next.toFixed(4));
    });
  }

  async timing(key: string): Promise<number | undefined> {
    return this.guard('read a timing', async () => {
      const value = Number(await this.redis.hget(TIMINGS_KEY, key));
      return Number.isFinite(value) && value > 0 ? value : undefined;
    });
  }

  /** A farm job's frame states (Redis keeps them while it runs; the API copies them to the store once it settles). */
  async farmFrameStates(job: string): Promise<Record<number, FrameState>> {
    return this.guard('read frame states', async () => {
      const all = await this.redis.hgetall(frameStatesKey(job));
      return Object.fromEntries(Object.entries(all).map(([frame, v]) => [Number(frame), JSON.parse(v) as FrameState]));
    });
  }

  /** One frame's state, written by the node that renders it. */
  async setFarmFrameState(job: string, frame: number, state: FrameState): Promise<void> {
    await this.guard('write a frame state', async () => {
      await this.redis.multi().hset(frameStatesKey(job), String(frame), JSON.stringify(state)).expire(frameStatesKey(job), FARM_STATE_TTL_SEC).exec();
    });
  }

  /** A stopped job: a chunk that starts after this renders nothing (the API also removes its waiting chunks). */
  async stopFarmJob(job: string): Promise<void> {
    await this.guard('stop a farm job', async () => {
      await this.redis.set(`montage:farm:${job}:stopped`, '1', 'EX', FARM_STATE_TTL_SEC);
    });
  }

  async farmJobStopped(job: string): Promise<boolean> {
    return this.guard('read a farm job stop', async () => (await this.redis.exists(`montage:farm:${job}:stopped`)) === 1);
  }

  /** A deleted job: a running chunk checks this before storing each frame, and stops. */
  async removeFarmJob(job: string): Promise<void> {
    await this.guard('remove a farm job', async () => {
      await this.redis.set(`montage:farm:${job}:removed`, '1', 'EX', FARM_STATE_TTL_SEC);
    });
  }

  async farmJobRemoved(job: string): Promise<boolean> {
    return this.guard('read a farm job removal', async () => (await this.redis.exists(`montage:farm:${job}:removed`)) === 1);
  }

  /** A retry of a settled, stopped job: its new chunks must run (no chunk of before is left to wake up). */
  async resumeFarmJob(job: string): Promise<void> {
    await this.guard('resume a farm job', async () => {
      await this.redis.del(`montage:farm:${job}:stopped`);
    });
  }

  /**
   * A settled or removed job's frame states go. Its stop and removal flags stay until they
   * expire: a chunk that wakes up later (delayed, retried by BullMQ) must still see them.
   */
  async removeFarmJobState(job: string): Promise<void> {
    await this.guard('remove farm job state', async () => {
      await this.redis.del(frameStatesKey(job));
    });
  }

  async removeHeartbeat(id: string): Promise<void> {
    await this.guard('remove a heartbeat', () => this.redis.del(`${HEARTBEAT_PREFIX}${id}`));
  }

  /** Throws (at once) when Redis does not answer. */
  async ping(): Promise<void> {
    await this.guard('reach Redis', () => this.redis.ping());
  }

  /**
   * Closes every connection, within `timeoutMs`: gracefully while Redis answers; if it does
   * not (it may be gone already), connections are dropped, so a shutdown never hangs on it.
   */
  async close(timeoutMs = 2000): Promise<void> {
    this.closed = true;
    this.handBack.abort();
    const graceful = (async () => {
      await Promise.allSettled(this.workers.map((w) => w.close()));
      await Promise.allSettled([
        this.flows?.close(),
        ...[...this.events.values()].map((e) => e.close()),
        ...[...this.queues.values()].map((q) => q.close()),
      ]);
      if (this.up) await this.redis.quit().catch(() => undefined);
    })();
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([graceful.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
    clearTimeout(timer);
    if (!finished) {
      for (const w of this.workers) void w.close(true).catch(() => undefined);
      for (const closable of [this.flows, ...this.events.values(), ...this.queues.values(), ...this.workers]) {
        void closable?.disconnect().catch(() => undefined);
      }
    }
    this.redis.disconnect();
  }

  private queueEvents(name: string): QueueEvents {
    let events = this.events.get(name);
    if (!events) {
      events = new QueueEvents(name, { connection: this.connection as ConnectionOptions });
      events.on('error', (err) => this.noteError(`events of ${name}`, err));
      this.events.set(name, events);
    }
    return events;
  }
}
