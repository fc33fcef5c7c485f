import {
  CACHE_MIN_AGE_MS,
  deadLeftovers,
  expiredReusable,
  deadStaging,
  type FileEntry,
  groupCacheFiles,
  MAX_STAGING_MS,
  planCacheEviction,
  planOutputExpiry,
  segmentRun,
  STALE_TEMP_MS,
  staleTemps,
  stagingOutputKey,
  UNKNOWN_LEFTOVER_MS,
} from '../../src/retention/retention-plan';

const NOW = 1_800_000_000_000;
const MIN = 60_000;
const file = (name: string, bytes: number, ageMs: number): FileEntry => ({ name, path: `/c/${name}`, bytes, mtimeMs: NOW - ageMs });

describe('groupCacheFiles', () => {
  it('keeps a raster with its metadata, and temporary files apart', () => {
    const { entries, temp } = groupCacheFiles([
      file('abc.png', 100, 10 * MIN),
      file('abc.png.json', 5, 20 * MIN),
      file('def.png', 50, 30 * MIN),
      file('.abc.png.1234abcd.part.png', 7, MIN),
      file('download-0011.part', 9, MIN),
      file('abc.json.77ab.tmp', 3, MIN),
    ]);
    expect(entries.map((e) => [e.id, e.bytes, NOW - e.lastUsedMs, e.files.length])).toEqual([
      ['abc.png', 105, 10 * MIN, 2],
      ['def.png', 50, 30 * MIN, 1],
    ]);
    expect(temp.map((t) => t.name)).toEqual(['.abc.png.1234abcd.part.png', 'download-0011.part', 'abc.json.77ab.tmp']);
  });
});

describe('planCacheEviction', () => {
  const entries = [
    { id: 'old', files: [], bytes: 400, lastUsedMs: NOW - 60 * MIN },
    { id: 'older', files: [], bytes: 300, lastUsedMs: NOW - 120 * MIN },
    { id: 'recent', files: [], bytes: 500, lastUsedMs: NOW - MIN },
    { id: 'mid', files: [], bytes: 200, lastUsedMs: NOW - 30 * MIN },
  ];

  it('evicts least recently used first, until 90% of the cap', () => {
    // total 1400, cap 1000 → down to ≤ 900: older (300) then old (400) → 700
    expect(planCacheEviction(entries, 1000, NOW).map((e) => e.id)).toEqual(['older', 'old']);
  });

  it('never evicts what was used within the minimum age, even over the cap', () => {
    expect(planCacheEviction(entries, 100, NOW).map((e) => e.id)).toEqual(['older', 'old', 'mid']);
    expect(planCacheEviction(entries, 100, NOW, 0).map((e) => e.id)).toEqual(['older', 'old', 'mid', 'recent']);
    expect(CACHE_MIN_AGE_MS).toBe(5 * MIN);
  });

  it('does nothing under the cap, or without one', () => {
    expect(planCacheEviction(entries, 2000, NOW)).toEqual([]);
    expect(planCacheEviction(entries, 0, NOW)).toEqual([]);
  });
});

it('staleTemps: temporary files older than their writers could take', () => {
  expect(staleTemps([file('a.part', 1, STALE_TEMP_MS + 1), file('b.part', 1, STALE_TEMP_MS - 1)], NOW).map((f) => f.name)).toEqual(['a.part']);
});

describe('segment and staging names', () => {
  const key = 'a'.repeat(40);
  it.each([
    [`${key}-a1f3e2d1-0-3.mp4`, `${key}-a1f3e2d1`],
    [`${key}-a12123456-120-240.ivf`, `${key}-a12123456`],
    [`.${key}-a1f3e2d1-3-123.1a2b3c4d5e6f.part.mp4`, `${key}-a1f3e2d1`],
    ['k-30-60.mp4', undefined],
    ['storage-id', undefined],
  ])('segmentRun(%s)', (name, run) => {
    expect(segmentRun(name)).toBe(run);
  });

  it('stagingOutputKey', () => {
    expect(stagingOutputKey(`.${key}.0a1b2c3d4e5f.part.mp4`)).toBe(key);
    expect(stagingOutputKey(`${key}.mp4`)).toBeUndefined();
  });
});

describe('deadLeftovers', () => {
  const key = 'b'.repeat(40);
  const live = `${key}-a1aaaaaa`;
  const dead = `${key}-a2bbbbbb`;
  const items = [
    { name: `${live}-0-3.mp4`, area: 'segments' as const, bytes: 10, modifiedMs: NOW - 10 * MIN },
    { name: `.${dead}-3-60.0123456789ab.part.mp4`, area: 'segments' as const, bytes: 20, modifiedMs: NOW - 10 * MIN },
    { name: `${dead}-60-120.mp4`, area: 'segments' as const, bytes: 30, modifiedMs: NOW - 10_000 },
    { name: 'mystery.bin', area: 'segments' as const, bytes: 40, modifiedMs: NOW - UNKNOWN_LEFTOVER_MS - 1 },
    { name: `.${key}.0a1b2c3d4e5f.part.gif`, area: 'outputs' as const, bytes: 50, modifiedMs: NOW - 10 * MIN },
    { name: `.${'c'.repeat(40)}.0a1b2c3d4e5f.part.gif`, area: 'outputs' as const, bytes: 60, modifiedMs: NOW - 10 * MIN },
  ];

  it('keeps what active renders use and what is younger than the grace period', () => {
    const removed = deadLeftovers(items, { runs: new Set([live]), keys: new Set([key]) }, NOW, 2 * MIN).map((i) => i.bytes);
    expect(removed).toEqual([20, 40, 60]);
  });
});

describe('deadStaging', () => {
  it('removes files of writers that died (after the grace period), and anything past the longest write', () => {
    const files = [file('111-aa.mp4', 1, 10 * MIN), file('222-bb.mp4', 2, 10 * MIN), file('111-cc.mp4', 3, MIN / 2), file('222-dd.mp4', 4, MAX_STAGING_MS + 1), file('junk', 5, UNKNOWN_LEFTOVER_MS + 1)];
    const alive = (pid: number) => pid === 222;
    expect(deadStaging(files, alive, NOW, MIN).map((f) => f.bytes)).toEqual([1, 4, 5]);
  });
});

describe('planOutputExpiry', () => {
  const DAY = 24 * 3600 * 1000;
  const outputs = [
    { key: 'a', bytes: 100, lastAccessMs: NOW - 40 * DAY, pinned: false },
    { key: 'b', bytes: 100, lastAccessMs: NOW - 40 * DAY, pinned: true },
    { key: 'c', bytes: 300, lastAccessMs: NOW - 2 * DAY, pinned: false },
    { key: 'd', bytes: 300, lastAccessMs: NOW - DAY, pinned: false },
  ];

  it('removes outputs not fetched for the TTL, unless pinned', () => {
    expect(planOutputExpiry(outputs, { outputTtlDays: 30, maxStoredBytes: 0 }, NOW).map((o) => o.key)).toEqual(['a']);
  });

  it('then the least recently fetched unpinned ones beyond the byte limit', () => {
    expect(planOutputExpiry(outputs, { outputTtlDays: 30, maxStoredBytes: 450 }, NOW).map((o) => o.key)).toEqual(['a', 'c']);
    expect(planOutputExpiry(outputs, { outputTtlDays: 0, maxStoredBytes: 150 }, NOW).map((o) => o.key)).toEqual(['a', 'c', 'd']);
  });

  it('keeps everything without limits', () => {
    expect(planOutputExpiry(outputs, { outputTtlDays: 0, maxStoredBytes: 0 }, NOW)).toEqual([]);
  });
});

describe('expiredReusable', () => {
  const day = 24 * 3600 * 1000;
  const now = 100 * day;
  it('removes reusable pieces stored more than the TTL ago; a TTL of 0 keeps them', () => {
    const pieces = [{ key: 'old', storedMs: now - 31 * day }, { key: 'young', storedMs: now - 29 * day }];
    expect(expiredReusable(pieces, 30, now).map((p) => p.key)).toEqual(['old']);
    expect(expiredReusable(pieces, 0, now)).toEqual([]);
  });
});
