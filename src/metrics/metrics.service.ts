import { Inject, Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { JOB_QUEUE } from '../jobs/queue.module';
import { queueName } from '../jobs/job.types';
import { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { DiskUsage } from '../retention/disk-usage';

/** Prometheus metrics of this API process, scraped at GET /metrics. */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  readonly rendersFinished = new Counter({
    name: 'montage_renders_total',
    help: 'Renders finished, by status (done, failed) and format',
    labelNames: ['status', 'format'] as const,
    registers: [this.registry],
  });
  readonly rendersRunning = new Gauge({ name: 'montage_renders_running', help: 'Renders this API process started that are still running on the farm', registers: [this.registry] });
  readonly renderSeconds = new Histogram({
    name: 'montage_render_duration_seconds',
    help: 'From enqueueing a render on the farm to its stored output, by routing key and format',
    labelNames: ['routing_key', 'format'] as const,
    buckets: [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64],
    registers: [this.registry],
  });
  readonly firstByteSeconds = new Histogram({
    name: 'montage_time_to_first_byte_seconds',
    help: 'From a progressive GET to its first byte, for renders that were not stored yet',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 4, 8],
    registers: [this.registry],
  });
  /** Queue name → its routing key. */
  private readonly queues = new Map<string, string>();

  constructor(
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    @Inject(MONTAGE_CONFIG) config: MontageConfig,
    disk: DiskUsage,
  ) {
    for (const key of config.routingKeys) this.queues.set(queueName(key), key);
    const queues = this.queues;
    const jobs = this.queue;
    new Gauge({
      name: 'montage_queue_waiting_jobs',
      help: 'Render jobs waiting for a render node, by routing key and queue (render.<key> composites, render.<key>.blender[.<gpu>] Blender)',
      labelNames: ['routing_key', 'queue'] as const,
      registers: [this.registry],
      async collect() {
        for (const [queue, key] of queues) this.set({ routing_key: key, queue }, await jobs.waiting(queue).catch(() => 0));
      },
    });
    // What each area of the disk and storage holds, as the last sweep found it, and what sweeps removed.
    const perArea = (name: string, help: string, values: () => Iterable<[string, number]>) =>
      new Gauge({
        name,
        help,
        labelNames: ['area'] as const,
        registers: [this.registry],
        collect() {
          for (const [area, value] of values()) this.set({ area }, value);
        },
      });
    const pick = (map: Map<string, { bytes: number; files: number }>, field: 'bytes' | 'files') => () => [...map].map(([a, v]) => [a, v[field]] as [string, number]);
    perArea('montage_disk_bytes', 'Bytes per area (outputs, segments, live, staging, cache_assets, cache_rasters), as of the last sweep', pick(disk.areas, 'bytes'));
    perArea('montage_disk_files', 'Files per area, as of the last sweep', pick(disk.areas, 'files'));
    perArea('montage_swept_bytes', 'Bytes the sweeper removed since start, per area', pick(disk.removed, 'bytes'));
    new Gauge({
      name: 'montage_sweep_duration_seconds',
      help: 'How long the last sweep of the store and storage took',
      registers: [this.registry],
      collect() {
        this.set(disk.lastSweepDurationMs / 1000);
      },
    });
    new Gauge({
      name: 'montage_queue_available',
      help: '1 while Redis (the job queue) answers, 0 during an outage',
      registers: [this.registry],
      collect() {
        this.set(jobs.available ? 1 : 0);
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'montage_' });
  }

  /** Queues that requests have used (routing keys, engines, devices), so they are reported too. */
  seenQueue(routingKey: string, queue: string): void {
    this.queues.set(queue, routingKey);
  }
}
