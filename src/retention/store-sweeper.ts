import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { effectiveLimits } from '../projects/project.types';
import { ProjectsService } from '../projects/projects.service';
import type { RenderDoc, TokenDoc } from '../renders/render.types';
import { TokenRemoval } from '../renders/token-removal';
import { LiveFilesRepository } from '../repositories/live-files.repository';
import { OUTPUT_STORAGE, type OutputStorage } from '../repositories/output-storage/port';
import { type Collection, DOCUMENT_STORE, type DocumentStore } from '../repositories/document-store/port';
import { DiskUsage } from './disk-usage';
import { PeriodicPass } from './periodic-pass';
import { deadLeftovers, expiredReusable, planOutputExpiry } from './retention-plan';

export interface StoreSweepReport {
  tokensExpired: number;
  outputsExpired: number;
  leftoversRemoved: number;
  /** Reusable segments and sound tracks older than OUTPUT_TTL_DAYS. */
  reusableExpired: number;
  liveFilesRemoved: number;
  durationMs: number;
}

/**
 * The API's share of retention, every SWEEP_INTERVAL_MS:
 * - tokens past their expiry go, with the outputs no other token shares (as DELETE does);
 * - per project, stored outputs not fetched for `outputTtlDays`, then the least recently
 *   fetched beyond `maxStoredBytes`, go unless a pinned token holds them (a later GET of a
 *   token that asks for one renders it again);
 * - segments and staging files of renders that no longer run, and live files that no render
 *   of this process uses, go once ORPHAN_GRACE_MS old: minutes after a crash, not at the next start.
 */
@Injectable()
export class StoreSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Sweeper');
  private readonly passes: PeriodicPass<StoreSweepReport>;
  private readonly tokens: Collection<TokenDoc>;
  private readonly renders: Collection<RenderDoc>;

  constructor(
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    @Inject(DOCUMENT_STORE) store: DocumentStore,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
    private readonly projects: ProjectsService,
    private readonly liveFiles: LiveFilesRepository,
    private readonly removal: TokenRemoval,
    private readonly usage: DiskUsage,
  ) {
    this.tokens = store.collection<TokenDoc>('tokens');
    this.renders = store.collection<RenderDoc>('renders');
    this.passes = new PeriodicPass(() => this.run(), config.retention.sweepIntervalMs, (err) => this.logger.warn(`sweep failed: ${err.message}`));
  }


  onApplicationBootstrap(): void {
    this.passes.start();
  }

  onApplicationShutdown(): void {
    this.passes.stop();
  }

  /** One pass now (or the one under way). */
  sweep(): Promise<StoreSweepReport> {
    return this.passes.now();
  }

  private async run(): Promise<StoreSweepReport> {
    const started = Date.now();
    const report: StoreSweepReport = { tokensExpired: 0, outputsExpired: 0, leftoversRemoved: 0, reusableExpired: 0, liveFilesRemoved: 0, durationMs: 0 };
    const now = new Date();

    for (const token of await this.tokens.find({ expiresAt: { $lt: now.toISOString() } }, { limit: 1000 })) {
      await this.removal.removeToken(token).catch((err: Error) => this.logger.warn(`expired token not removed: ${err.message}`));
      report.tokensExpired++;
    }

    // Outputs stored before access was recorded count as fetched now: their age is unknown,
    // and an upgrade must not remove everything older than the TTL at its first sweep.
    await this.renders.updateMany({ status: 'done', lastAccessAt: { $exists: false } }, { $set: { lastAccessAt: now.toISOString() } });
    const pinned = new Set((await this.tokens.find({ pin: true })).flatMap((t) => t.renderKeys));
    let storedBytes = 0;
    let storedFiles = 0;
    for (const project of await this.projects.list()) {
      const done = await this.renders.find({ project: project._id, status: 'done' });
      const outputs = done.map((d) => ({
        key: d._id,
        bytes: d.bytes,
        lastAccessMs: Date.parse(d.lastAccessAt!) || now.getTime(),
        pinned: pinned.has(d._id),
      }));
      const expired = new Set(planOutputExpiry(outputs, effectiveLimits(project, this.config), now.getTime()).map((o) => o.key));
      for (const doc of done) {
        if (expired.has(doc._id) && (await this.removal.removeOutput(doc).catch(() => false))) {
          report.outputsExpired++;
          this.usage.noteRemoved('outputs', doc.bytes);
        } else {
          storedBytes += doc.bytes;
          storedFiles++;
        }
      }
    }
    this.usage.set('outputs', storedBytes, storedFiles);

    // Segments and sound tracks shared by content: kept as long as an output would be.
    for (const piece of expiredReusable(await this.storage.listReusable(), this.config.retention.outputTtlDays, now.getTime())) {
      await this.storage.remove(piece.key, piece.ext).then(
        () => void report.reusableExpired++,
        (err: Error) => this.logger.warn(`reusable ${piece.key}.${piece.ext} not removed: ${err.message}`),
      );
    }

    const active = await this.renders.find({ status: { $in: ['queued', 'rendering'] } });
    const leftovers = await this.storage.listLeftovers();
    const dead = new Set(
      deadLeftovers(leftovers, { runs: new Set(active.filter((r) => r.run).map((r) => `${r._id}-a${r.run}`)), keys: new Set(active.map((r) => r._id)) }, now.getTime(), this.config.retention.orphanGraceMs),
    );
    for (const item of dead) {
      await this.storage.removeLeftover(item).then(
        () => {
          report.leftoversRemoved++;
          this.usage.noteRemoved('segments', item.bytes);
        },
        (err: Error) => this.logger.warn(`leftover ${item.name} not removed: ${err.message}`),
      );
    }
    const kept = leftovers.filter((l) => !dead.has(l));
    this.usage.set('segments', kept.reduce((s, l) => s + l.bytes, 0), kept.length);

    const liveFiles = await this.liveFiles.list();
    let liveBytes = 0;
    let liveCount = 0;
    for (const file of liveFiles) {
      if (!this.liveFiles.writerAlive(file) && now.getTime() - file.mtimeMs > this.config.retention.orphanGraceMs) {
        await this.liveFiles.remove(file.path);
        report.liveFilesRemoved++;
        this.usage.noteRemoved('live', file.bytes);
      } else {
        liveBytes += file.bytes;
        liveCount++;
      }
    }
    this.usage.set('live', liveBytes, liveCount);

    report.durationMs = Date.now() - started;
    this.usage.lastSweepDurationMs = report.durationMs;
    const removed = report.tokensExpired + report.outputsExpired + report.leftoversRemoved + report.liveFilesRemoved;
    if (removed > 0) {
      this.logger.log(
        `removed ${report.tokensExpired} expired token(s), ${report.outputsExpired} expired output(s), ${report.leftoversRemoved} leftover(s) of dead renders, ${report.liveFilesRemoved} live file(s)`,
      );
    }
    return report;
  }
}
