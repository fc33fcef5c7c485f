import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { apiKeyOf } from '../delivery/http-delivery';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { ProjectsService } from '../projects/projects.service';
import { JOB_QUEUE } from '../jobs/queue.module';
import { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { MediaRepository } from '../repositories/media.repository';
import { OUTPUT_STORAGE, type OutputStorage } from '../repositories/output-storage/port';
import { DOCUMENT_STORE, type DocumentStore } from '../repositories/document-store/port';

/** A dependency check never takes longer than this: a probe must answer even when a dependency hangs. */
const CHECK_TIMEOUT_MS = 2000;

interface Check {
  ok: boolean;
  error?: string;
}

/** `work`'s value, or `fallback` once CHECK_TIMEOUT_MS has passed. */
async function within<T>(work: Promise<T>, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work, new Promise<T>((resolve) => (timer = setTimeout(() => resolve(fallback), CHECK_TIMEOUT_MS)))]);
  } finally {
    clearTimeout(timer);
  }
}

function check(fn: () => Promise<unknown>): Promise<Check> {
  const attempt = fn().then(
    (): Check => ({ ok: true }),
    (err: Error): Check => ({ ok: false, error: (err.message || String(err)).slice(0, 300) }),
  );
  return within(attempt, { ok: false, error: `no answer within ${CHECK_TIMEOUT_MS} ms` });
}

/**
 * - `/health/live`: the process answers (liveness: restart it when this fails).
 * - `/health/ready`: it can do its work: the store, the storage and Redis answer, and it is
 *   not shutting down (readiness: send it traffic only while this is 200).
 * - `/health`: all of it, 200 `ok` or 503 `degraded` naming what does not answer. Locations
 *   and error texts (paths, hosts) only for a caller with an API key.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly media: MediaRepository,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
    @Inject(DOCUMENT_STORE) private readonly store: DocumentStore,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    private readonly lifecycle: LifecycleService,
    private readonly projects: ProjectsService,
  ) {}

  private async dependencies() {
    const [store, storage, queue] = await Promise.all([
      check(() => this.store.ping()),
      check(() => this.storage.ping()),
      check(() => this.queue.ping()),
    ]);
    return { store, storage, queue };
  }

  @Get('live')
  live() {
    return { status: 'alive', uptimeSec: Math.round(process.uptime()) };
  }

  @Get('ready')
  async ready(@Res({ passthrough: true }) res: Response) {
    const deps = await this.dependencies();
    const waiting = Object.entries(deps)
      .filter(([, c]) => !c.ok)
      .map(([name]) => name);
    const ok = waiting.length === 0 && !this.lifecycle.draining;
    res.status(ok ? 200 : 503);
    if (!ok) res.setHeader('Retry-After', '5');
    return { status: ok ? 'ready' : this.lifecycle.draining ? 'stopping' : 'not ready', ...(waiting.length ? { unavailable: waiting } : {}) };
  }

  /** ffmpeg's version, asked once a minute at most: a probe must not start a process per request. */
  private ffmpeg?: { at: number; version: Promise<string | undefined> };

  private ffmpegVersion(): Promise<string | undefined> {
    // An API without the embedded node runs no encoder: ffmpeg is the nodes' business.
    if (!this.config.embeddedRenderNode) return Promise.resolve('not used by this process (EMBEDDED_RENDER_NODE=0)');
    if (!this.ffmpeg || Date.now() - this.ffmpeg.at > 60_000) this.ffmpeg = { at: Date.now(), version: this.media.version() };
    return within(this.ffmpeg.version, undefined);
  }

  @Get()
  async health(@Req() req: Request, @Res({ passthrough: true }) res: Response) {
    const key = apiKeyOf(req);
    const [ffmpeg, deps, detailed] = await Promise.all([
      this.ffmpegVersion(),
      this.dependencies(),
      key ? within(this.projects.isValidKey(key), false) : false,
    ]);
    const unavailable = [...(ffmpeg ? [] : ['ffmpeg']), ...Object.entries(deps).filter(([, c]) => !c.ok).map(([name]) => name)];
    const ok = unavailable.length === 0;
    res.status(ok ? 200 : 503);
    // Without a key: what works and what does not; with one: where things are, and why not.
    const show = (c: Check) => (detailed ? c : { ok: c.ok });
    return {
      status: ok ? 'ok' : 'degraded',
      ...(ok ? {} : { unavailable }),
      ...(this.lifecycle.draining ? { stopping: true } : {}),
      ffmpeg: ffmpeg ?? null,
      store: { kind: this.store.kind, ...show(deps.store) },
      storage: { kind: this.storage.kind, ...(detailed ? { location: this.storage.description } : {}), ...show(deps.storage) },
      queue: { kind: this.config.redisUrl ? 'redis' : 'embedded redis', ...(detailed ? { location: this.queue.where } : {}), ...show(deps.queue) },
      ...(detailed ? { templatesDir: this.config.templatesDir, dataDir: this.config.dataDir } : {}),
      version: this.config.version,
    };
  }
}
