import { Injectable } from '@nestjs/common';

export type DiskArea = 'outputs' | 'segments' | 'live' | 'staging' | 'cache_assets' | 'cache_rasters';

/** Bytes and files per area as the last sweep found them, and what sweeps removed: for /metrics. */
@Injectable()
export class DiskUsage {
  readonly areas = new Map<DiskArea, { bytes: number; files: number }>();
  readonly removed = new Map<DiskArea, { bytes: number; files: number }>();
  lastSweepDurationMs = 0;

  set(area: DiskArea, bytes: number, files: number): void {
    this.areas.set(area, { bytes, files });
  }

  noteRemoved(area: DiskArea, bytes: number, files = 1): void {
    const r = this.removed.get(area) ?? { bytes: 0, files: 0 };
    this.removed.set(area, { bytes: r.bytes + bytes, files: r.files + files });
  }
}
