import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import * as os from 'node:os';
import {
  ASSEMBLY_QUEUE,
  type EngineCapabilities,
  EngineName,
  EngineRegistry,
  JOB_QUEUE,
  type JobHandlers,
  JobName,
  type JobQueueRepository,
  LiveFilesRepository,
  MediaRepository,
  MONTAGE_CONFIG,
  type MontageConfig,
  type NodeHeartbeat,
  QueueKind,
  queueName,
} from '../src/render-node-kit';
import { AssemblyJob } from './assembly.job';
import { FarmJob } from './farm.job';
import { NodeJobs } from './node-jobs';
import { OutputJob } from './output.job';
import { SegmentJob } from './segment.job';
import { SoundJob } from './sound.job';

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
    private readonly node: NodeJobs,
    private readonly engines: EngineRegistry,
    private readonly outputs: OutputJob,
    private readonly segments: SegmentJob,
    private readonly sounds: SoundJob,
    private readonly assembly: AssemblyJob,
    private readonly farm: FarmJob,
    private readonly media: MediaRepository,
    private readonly files: LiveFilesRepository,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.files.init();
    const render: JobHandlers<QueueKind.Render> = {
      [JobName.RenderOutput]: (payload, ctx) => this.outputs.run(payload, ctx),
      [JobName.RenderSegment]: (payload, ctx) => this.segments.run(payload, ctx),
      [JobName.RenderSound]: (payload, ctx) => this.sounds.run(payload, ctx),
      [JobName.RenderFarmFrames]: (payload, ctx) => this.farm.renderFrames(payload, ctx),
      [JobName.InspectScene]: (payload, ctx) => this.farm.inspect(payload, ctx),
      [JobName.EncodeTurntable]: (payload, ctx) => this.farm.encodeTurntable(payload, ctx),
    };
    // One queue per routing key, engine and device this node has: it never takes a job it cannot run
    // (a Blender job for a GPU waits in its own queue for a node that sees that GPU).
    const capabilities = new Map<EngineName, EngineCapabilities>();
    for (const engine of this.engines.names()) {
      const found = await this.engines.get(engine).capabilities();
      capabilities.set(engine, found);
      if (found.devices.length === 0) this.logger.warn(`no ${engine} engine on this node: ${found.error ?? 'not available'}`);
    }
    const usable = this.engines.names().filter((engine) => capabilities.get(engine)!.devices.length > 0);
    const queues = usable.flatMap((engine) => capabilities.get(engine)!.devices.flatMap((device) => this.config.routingKeys.map((key) => queueName(key, engine, device))));
    const blender = capabilities.get(EngineName.Blender);
    // Before any farm job is taken: a node that must sandbox them and cannot does not start.
    if (blender && blender.devices.length > 0) await this.farm.checkSandbox();
    this.queue.startWorkers(QueueKind.Render, queues, render, {
      concurrency: this.config.concurrency,
      lockDurationMs: this.config.segmentLockMs,
      stalledIntervalMs: this.config.stalledCheckMs,
    });
    const assemble: JobHandlers<QueueKind.Assembly> = { [JobName.AssembleRender]: (payload, ctx) => this.assembly.run(payload, ctx) };
    this.queue.startWorkers(QueueKind.Assembly, [ASSEMBLY_QUEUE], assemble, {
      concurrency: this.config.assemblyConcurrency,
      lockDurationMs: this.config.segmentLockMs,
      stalledIntervalMs: this.config.stalledCheckMs,
    });
    const all = await this.media.encoders().catch(() => [] as string[]);
    // A hardware encoder compiled into ffmpeg is only usable where its device exists.
    const gpu = await this.media.hasVideoDevice();
    const encoders = all.filter((e) => ['libx264', 'libvpx-vp9', 'libaom-av1'].includes(e) || (gpu && HARDWARE_ENCODERS.includes(e)));
    const beat = async () => {
      const heartbeat: NodeHeartbeat = {
        id: this.node.nodeId,
        host: os.hostname(),
        pid: process.pid,
        version: this.config.version,
        routingKeys: this.config.routingKeys,
        concurrency: this.config.concurrency,
        engines: usable,
        ...(blender && blender.devices.length > 0 ? { blender: { version: blender.version, devices: blender.devices } } : {}),
        encoders,
        cpus: os.cpus().length,
        load: os.loadavg(),
        running: this.node.running,
        startedAt: this.startedAt,
        seenAt: new Date().toISOString(),
      };
      // Redis away: the queue logs the outage once; a heartbeat is simply skipped.
      await this.queue.publishHeartbeat(heartbeat).catch(() => undefined);
    };
    await beat();
    this.timer = setInterval(() => void beat(), 3000);
    this.logger.log(`render node ${this.node.nodeId} (${usable.join(', ')}${blender?.version ? ` — Blender ${blender.version} on ${blender.devices.join(', ')}` : ''}) takes ${queues.join(', ')} (concurrency ${this.config.concurrency}) and ${ASSEMBLY_QUEUE}`);
  }

  async onModuleDestroy(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.queue.removeHeartbeat(this.node.nodeId).catch(() => undefined); // fails at once when Redis is gone
  }
}
