import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import * as os from 'node:os';
import { MONTAGE_CONFIG, type MontageConfig } from '../src/config/config';
import { JOB_QUEUE } from '../src/jobs/queue.module';
import { type JobHandlers, JobName, type NodeHeartbeat, QueueKind, queueName } from '../src/jobs/job.types';
import { JobQueueRepository } from '../src/repositories/job-queue/job-queue.repository';
import { MediaRepository } from '../src/repositories/media.repository';
import { SegmentRenderer } from './segment-renderer';

const HARDWARE_ENCODERS = ['h264_nvenc', 'hevc_nvenc', 'h264_qsv', 'h264_vaapi'];

/** Starts the workers and publishes what this node can do, every few seconds, while it lives. */
@Injectable()
export class RenderNodeRunner implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('RenderNode');
  private timer?: NodeJS.Timeout;
  private readonly startedAt = new Date().toISOString();

  constructor(
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    private readonly segments: SegmentRenderer,
    private readonly media: MediaRepository,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const handlers: JobHandlers<QueueKind.Render> = { [JobName.RenderSegment]: (payload, ctx) => this.segments.render(payload, ctx) };
    this.queue.startWorkers(QueueKind.Render, this.config.routingKeys.map(queueName), handlers, {
      concurrency: this.config.concurrency,
      lockDurationMs: this.config.segmentLockMs,
      stalledIntervalMs: this.config.stalledCheckMs,
    });
    const all = await this.media.encoders().catch(() => [] as string[]);
    // A hardware encoder compiled into ffmpeg is only usable where its device exists.
    const gpu = await this.media.hasVideoDevice();
    const encoders = all.filter((e) => ['libx264', 'libvpx-vp9', 'libaom-av1'].includes(e) || (gpu && HARDWARE_ENCODERS.includes(e)));
    const beat = async () => {
      const heartbeat: NodeHeartbeat = {
        id: this.segments.nodeId,
        host: os.hostname(),
        pid: process.pid,
        version: process.env.npm_package_version ?? '0.1.0',
        routingKeys: this.config.routingKeys,
        concurrency: this.config.concurrency,
        engines: ['ffmpeg-composite'],
        encoders,
        cpus: os.cpus().length,
        load: os.loadavg(),
        running: this.segments.running,
        startedAt: this.startedAt,
        seenAt: new Date().toISOString(),
      };
      // Redis away: the queue logs the outage once; a heartbeat is simply skipped.
      await this.queue.publishHeartbeat(heartbeat).catch(() => undefined);
    };
    await beat();
    this.timer = setInterval(() => void beat(), 3000);
    this.logger.log(`render node ${this.segments.nodeId} takes ${this.config.routingKeys.map((k) => `render.${k}`).join(', ')} (concurrency ${this.config.concurrency})`);
  }

  async onModuleDestroy(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.queue.removeHeartbeat(this.segments.nodeId).catch(() => undefined); // fails at once when Redis is gone
  }
}
