/**
 * What the sweeper removes, decided from listings alone (pure): least recently used cache
 * entries beyond the cap, temporary files nobody will finish, segments and staging files of
 * renders that no longer run.
 */

/** Temporary files (downloads, rasters being written) older than this were abandoned. */
export const STALE_TEMP_MS = 10 * 60_000;
/** Cached files used this recently are kept whatever the cap: a render may be about to read them. */
export const CACHE_MIN_AGE_MS = 5 * 60_000;
/** Files in a leftover area whose names say nothing about their render go after this long. */
export const UNKNOWN_LEFTOVER_MS = 60 * 60_000;
/** A staging file of a writer that still runs is kept this long at most. */
export const MAX_STAGING_MS = 6 * 60 * 60_000;
/** Eviction goes below the cap by this much, so that the next renders do not evict again at once. */
export const CACHE_HEADROOM = 0.9;

export interface FileEntry {
  name: string;
  path: string;
  bytes: number;
  mtimeMs: number;
}

/** Files that live and die together (a raster and its metadata), last used at `lastUsedMs`. */
export interface CacheEntry {
  id: string;
  files: FileEntry[];
  bytes: number;
  lastUsedMs: number;
}

const isTemp = (name: string) => name.endsWith('.part') || /\.part(\.[A-Za-z0-9]+)?$/.test(name) || /\.tmp$/.test(name);

/**
 * A cache directory's files as entries: `<id>` and `<id>.json` together (rasters and their
 * metadata), everything else on its own; temporary files apart.
 */
export function groupCacheFiles(files: FileEntry[]): { entries: CacheEntry[]; temp: FileEntry[] } {
  const entries = new Map<string, CacheEntry>();
  const temp: FileEntry[] = [];
  for (const file of files) {
    if (isTemp(file.name)) {
      temp.push(file);
      continue;
    }
    const id = file.name.endsWith('.json') ? file.name.slice(0, -'.json'.length) : file.name;
    const entry = entries.get(id) ?? { id, files: [], bytes: 0, lastUsedMs: 0 };
    entry.files.push(file);
    entry.bytes += file.bytes;
    entry.lastUsedMs = Math.max(entry.lastUsedMs, file.mtimeMs);
    entries.set(id, entry);
  }
  return { entries: [...entries.values()], temp };
}

/**
 * Least recently used first, until the total is under the cap with some headroom; entries
 * used within `minAgeMs` are never evicted. A cap of 0 means no cap.
 */
export function planCacheEviction(entries: CacheEntry[], capBytes: number, nowMs: number, minAgeMs = CACHE_MIN_AGE_MS): CacheEntry[] {
  if (!capBytes) return [];
  let total = entries.reduce((sum, e) => sum + e.bytes, 0);
  if (total <= capBytes) return [];
  const target = capBytes * CACHE_HEADROOM;
  const evict: CacheEntry[] = [];
  for (const entry of [...entries].sort((a, b) => a.lastUsedMs - b.lastUsedMs || a.id.localeCompare(b.id))) {
    if (total <= target) break;
    if (nowMs - entry.lastUsedMs < minAgeMs) break; // sorted: every later entry is newer still
    evict.push(entry);
    total -= entry.bytes;
  }
  return evict;
}

/** Temporary files no writer will finish. */
export function staleTemps(temp: FileEntry[], nowMs: number, staleMs = STALE_TEMP_MS): FileEntry[] {
  return temp.filter((f) => nowMs - f.mtimeMs > staleMs);
}

const SEGMENT = /^(.+-a\d+[0-9a-f]{6})-\d+-\d+$/;

/**
 * The render run (`<key>-a<attempt><nonce>`, the id of its flow) that a segment belongs to,
 * from its name `<run>-<from>-<to>.<ext>` or its staging name `.<run>-<from>-<to>.<hex>.part.<ext>`.
 */
export function segmentRun(name: string): string | undefined {
  const base = name.startsWith('.') ? name.slice(1).replace(/\.[0-9a-f]+\.part(\.[A-Za-z0-9]+)?$/, '') : name.replace(/\.[A-Za-z0-9]+$/, '');
  return SEGMENT.exec(base)?.[1];
}

/** The render key of a local output being written: `.<key>.<hex>.part.<ext>`. */
export function stagingOutputKey(name: string): string | undefined {
  return /^\.([0-9a-f]{40})\.[0-9a-f]+\.part(\.[A-Za-z0-9]+)?$/.exec(name)?.[1];
}

/** A leftover in the output storage: a segment, or a staging file of a segment or an output. */
export interface Leftover {
  name: string;
  area: 'segments' | 'outputs';
  bytes: number;
  modifiedMs: number;
}

/**
 * Leftovers of renders that no longer run, older than `graceMs`: segments (and their staging
 * files) whose run is not active, outputs being written whose render is not active. Names that
 * say nothing go after UNKNOWN_LEFTOVER_MS.
 */
export function deadLeftovers(leftovers: Leftover[], active: { runs: Set<string>; keys: Set<string> }, nowMs: number, graceMs: number): Leftover[] {
  return leftovers.filter((item) => {
    const age = nowMs - item.modifiedMs;
    if (item.area === 'segments') {
      const run = segmentRun(item.name);
      if (!run) return age > UNKNOWN_LEFTOVER_MS;
      return !active.runs.has(run) && age > graceMs;
    }
    const key = stagingOutputKey(item.name);
    if (!key) return age > UNKNOWN_LEFTOVER_MS;
    return !active.keys.has(key) && age > graceMs;
  });
}

/** `<pid>-<hex>.<ext>`: a staging file written for S3 by process `pid` of this machine. */
export function stagingWriter(name: string): number | undefined {
  const m = /^(\d+)-[0-9a-f]+\.[A-Za-z0-9]+$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Staging files whose writer is gone (after `graceMs`), or that are too old to be anyone's. */
export function deadStaging(files: FileEntry[], writerAlive: (pid: number) => boolean, nowMs: number, graceMs: number): FileEntry[] {
  return files.filter((f) => {
    const age = nowMs - f.mtimeMs;
    if (age > MAX_STAGING_MS) return true;
    const pid = stagingWriter(f.name);
    if (pid === undefined) return age > UNKNOWN_LEFTOVER_MS;
    return age > graceMs && !writerAlive(pid);
  });
}

/**
 * Reusable segments and sound tracks to remove: those stored more than `ttlDays` ago (0: kept).
 * By age since stored, not since last used: a piece still in use is rendered again once, at worst.
 */
export function expiredReusable<T extends { storedMs: number }>(pieces: T[], ttlDays: number, nowMs: number): T[] {
  if (ttlDays <= 0) return [];
  const cutoff = nowMs - ttlDays * 24 * 3600 * 1000;
  return pieces.filter((p) => p.storedMs < cutoff);
}

export interface StoredOutput {
  key: string;
  bytes: number;
  /** Last fetched (or stored), ms since epoch. */
  lastAccessMs: number;
  pinned: boolean;
}

/**
 * A project's outputs to remove: unpinned ones not fetched for `ttlDays`, then, while the
 * project keeps more than `maxBytes`, the least recently fetched unpinned ones.
 */
export function planOutputExpiry(outputs: StoredOutput[], limits: { outputTtlDays: number; maxStoredBytes: number }, nowMs: number): StoredOutput[] {
  const remove = new Set<StoredOutput>();
  if (limits.outputTtlDays > 0) {
    const cutoff = nowMs - limits.outputTtlDays * 24 * 3600 * 1000;
    for (const o of outputs) if (!o.pinned && o.lastAccessMs < cutoff) remove.add(o);
  }
  if (limits.maxStoredBytes > 0) {
    let total = outputs.filter((o) => !remove.has(o)).reduce((sum, o) => sum + o.bytes, 0);
    for (const o of [...outputs].sort((a, b) => a.lastAccessMs - b.lastAccessMs || a.key.localeCompare(b.key))) {
      if (total <= limits.maxStoredBytes) break;
      if (o.pinned || remove.has(o)) continue;
      remove.add(o);
      total -= o.bytes;
    }
  }
  return [...remove];
}
