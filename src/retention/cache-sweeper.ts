import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import * as path from 'node:path';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { DiskAreasRepository } from '../repositories/disk-areas.repository';
import { isRunning } from '../repositories/processes.repository';
import { type DiskArea, DiskUsage } from './disk-usage';
import { PeriodicPass } from './periodic-pass';
import { type CacheEntry, deadStaging, type FileEntry, groupCacheFiles, planCacheEviction, staleTemps } from './retention-plan';

export interface CacheSweepReport {
  removedFiles: number;
  removedBytes: number;
  cacheBytes: number;
  scannedFiles: number;
  durationMs: number;
}

/**
 * The data dir's own areas, in every process that has one (API and render nodes): the asset
 * and raster caches are kept under CACHE_MAX_BYTES together, least recently used first (a
 * cache hit marks a file used); temporary files that nobody will finish and staging files of
 * writers that died are removed. Runs every SWEEP_INTERVAL_MS; one pass at a time.
 */
@Injectable()
export class CacheSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Sweeper');
  private readonly passes: PeriodicPass<CacheSweepReport>;
  private readonly dirs: { assets: string; index: string; rasters: string; staging: string };

  constructor(
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    private readonly disk: DiskAreasRepository,
    private readonly usage: DiskUsage,
  ) {
    const cache = path.join(config.dataDir, 'cache');
    this.dirs = { assets: path.join(cache, 'assets'), index: path.join(cache, 'assets', 'urls'), rasters: path.join(cache, 'rasters'), staging: path.join(config.dataDir, 'staging') };
    this.passes = new PeriodicPass(() => this.run(), config.retention.sweepIntervalMs, (err) => this.logger.warn(`cache sweep failed: ${err.message}`));
  }


  onApplicationBootstrap(): void {
    this.passes.start();
  }

  onApplicationShutdown(): void {
    this.passes.stop();
  }

  /** One pass now (or the one under way). */
  sweep(): Promise<CacheSweepReport> {
    return this.passes.now();
  }

  private async run(): Promise<CacheSweepReport> {
    const started = Date.now();
    const [assets, index, rasters, staging] = [
      await this.disk.list(this.dirs.assets),
      await this.disk.list(this.dirs.index),
      await this.disk.list(this.dirs.rasters),
      await this.disk.list(this.dirs.staging),
    ];
    const now = Date.now();
    let removedFiles = 0;
    let removedBytes = 0;
    const remove = async (area: DiskArea, files: FileEntry[]) => {
      for (const f of await this.disk.removeAll(files)) {
        removedFiles++;
        removedBytes += f.bytes;
        this.usage.noteRemoved(area, f.bytes);
      }
    };

    const groups = { assets: groupCacheFiles(assets), index: groupCacheFiles(index), rasters: groupCacheFiles(rasters) };
    await remove('cache_assets', staleTemps([...groups.assets.temp, ...groups.index.temp], now));
    await remove('cache_rasters', staleTemps(groups.rasters.temp, now));

    // One cap for both caches: whichever holds the least recently used bytes gives them up.
    const area = new Map<CacheEntry, DiskArea>();
    for (const e of [...groups.assets.entries, ...groups.index.entries]) area.set(e, 'cache_assets');
    for (const e of groups.rasters.entries) area.set(e, 'cache_rasters');
    const evicted = planCacheEviction([...area.keys()], this.config.retention.cacheMaxBytes, now);
    await remove('cache_rasters', evicted.filter((e) => area.get(e) === 'cache_rasters').flatMap((e) => e.files));
    await remove('cache_assets', evicted.filter((e) => area.get(e) === 'cache_assets').flatMap((e) => e.files));
    const gone = new Set(evicted);
    const bytesOf = (which: DiskArea) => [...area].filter(([e, a]) => a === which && !gone.has(e)).reduce((sum, [e]) => sum + e.bytes, 0);
    const filesOf = (which: DiskArea) => [...area].filter(([e, a]) => a === which && !gone.has(e)).reduce((sum, [e]) => sum + e.files.length, 0);

    // Staging files of S3 writes: `<pid>-…` of a process of this machine that no longer runs.
    const writers = new Map<number, boolean>();
    for (const f of staging) {
      const pid = Number(/^(\d+)-/.exec(f.name)?.[1]);
      if (pid && !writers.has(pid)) writers.set(pid, pid === process.pid || (await isRunning({ pid })));
    }
    const deadStage = deadStaging(staging, (pid) => writers.get(pid) ?? false, now, this.config.retention.orphanGraceMs);
    await remove('staging', deadStage);
    const keptStaging = staging.filter((f) => !deadStage.includes(f));

    this.usage.set('cache_assets', bytesOf('cache_assets'), filesOf('cache_assets'));
    this.usage.set('cache_rasters', bytesOf('cache_rasters'), filesOf('cache_rasters'));
    this.usage.set('staging', keptStaging.reduce((s, f) => s + f.bytes, 0), keptStaging.length);
    const report: CacheSweepReport = {
      removedFiles,
      removedBytes,
      cacheBytes: bytesOf('cache_assets') + bytesOf('cache_rasters'),
      scannedFiles: assets.length + index.length + rasters.length + staging.length,
      durationMs: Date.now() - started,
    };
    if (removedFiles > 0) {
      this.logger.log(`removed ${removedFiles} cached or abandoned file(s), ${(removedBytes / 1024 / 1024).toFixed(1)} MiB; caches hold ${(report.cacheBytes / 1024 / 1024).toFixed(1)} MiB`);
    }
    return report;
  }
}
