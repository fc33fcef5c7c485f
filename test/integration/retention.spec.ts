import * as fs from 'node:fs';
import { LiveFilesRepository } from '../../src/repositories/live-files.repository';
import * as path from 'node:path';
import request from 'supertest';
import { ProjectsService } from '../../src/projects/projects.service';
import type { RenderDoc, TokenDoc } from '../../src/renders/render.types';
import { CacheSweeper } from '../../src/retention/cache-sweeper';
import { StoreSweeper } from '../../src/retention/store-sweeper';
import { DOCUMENT_STORE, type DocumentStore } from '../../src/repositories/document-store/port';
import { type ApiApp, startApi } from '../helpers/api-app';

// Retention with real files and the real store: the sweepers are run by hand here (their
// timers are set far apart), and what they leave is looked at on disk.

const DAY = 24 * 3600 * 1000;
let api: ApiApp;
let renders: ReturnType<DocumentStore['collection']>;
let tokens: ReturnType<DocumentStore['collection']>;

beforeAll(async () => {
  api = await startApi({ env: { SWEEP_INTERVAL_MS: '3600000', CACHE_MAX_BYTES: '1000000', ORPHAN_GRACE_MS: '60000', OUTPUT_TTL_DAYS: '30' } });
  const store = api.app.get<DocumentStore>(DOCUMENT_STORE);
  renders = store.collection('renders');
  tokens = store.collection('tokens');
});
afterAll(async () => {
  await api.close();
  Object.assign(process.env, { SWEEP_INTERVAL_MS: '60000', CACHE_MAX_BYTES: String(10 * 1024 ** 3), ORPHAN_GRACE_MS: '120000' });
});

const auth = () => ({ 'X-Api-Key': api.key });
const post = async (body: object) => (await request(api.url).post('/v2/render/t').set(auth()).send(body).expect(200)).body as { token: string; expiresAt?: string; pin?: boolean };
const storeSweep = () => api.app.get(StoreSweeper).sweep();
const cacheSweep = () => api.app.get(CacheSweeper).sweep();
const outputsDir = () => path.join(api.dataDir, 'outputs');
const ageFile = (file: string, ms: number) => fs.utimesSync(file, new Date(Date.now() - ms), new Date(Date.now() - ms));

async function renderKeyOf(token: string): Promise<string> {
  const doc = (await tokens.findOne({ _id: token })) as TokenDoc | null;
  return doc!.renderKeys[0];
}

describe('stored outputs', () => {
  it('expire after OUTPUT_TTL_DAYS without a fetch, unless a pinned token holds them or a fetch renews them; a later GET renders again', async () => {
    const plain = await post({ movie: 'colors', params: { label: 'ttl plain' } });
    const pinned = await post({ movie: 'colors', params: { label: 'ttl pinned' }, pin: true });
    const fetched = await post({ movie: 'colors', params: { label: 'ttl fetched' } });
    expect(pinned.pin).toBe(true);
    for (const t of [plain, pinned, fetched]) await request(api.url).get(`/v2/render/${t.token}.png`).expect(200);
    const keys = await Promise.all([plain, pinned, fetched].map((t) => renderKeyOf(t.token)));
    for (const key of keys) await renders.findOneAndUpdate({ _id: key }, { $set: { lastAccessAt: new Date(Date.now() - 40 * DAY).toISOString() } });
    // A fetch marks the output used again.
    await request(api.url).get(`/v2/get/${fetched.token}.png`).expect(200);
    await new Promise((r) => setTimeout(r, 100));

    const report = await storeSweep();
    expect(report.outputsExpired).toBe(1);
    expect(fs.existsSync(path.join(outputsDir(), `${keys[0]}.png`))).toBe(false);
    expect(await renders.findOne({ _id: keys[0] })).toBeNull();
    expect(fs.existsSync(path.join(outputsDir(), `${keys[1]}.png`))).toBe(true);
    expect(fs.existsSync(path.join(outputsDir(), `${keys[2]}.png`))).toBe(true);

    const before = api.renders.counters.started;
    const again = await request(api.url).get(`/v2/get/${plain.token}.png`).buffer(true).expect(200);
    expect(again.headers['content-type']).toBe('image/png');
    expect(api.renders.counters.started).toBe(before + 1);
  });

  it('outputs stored before access was recorded count as fetched at the first sweep, not as old as their render', async () => {
    const old = await post({ movie: 'colors', params: { label: 'from an older release' } });
    await request(api.url).get(`/v2/render/${old.token}.png`).expect(200);
    const key = await renderKeyOf(old.token);
    const longAgo = new Date(Date.now() - 400 * DAY).toISOString();
    await renders.findOneAndUpdate({ _id: key }, { $unset: { lastAccessAt: 1 }, $set: { updatedAt: longAgo, createdAt: longAgo } });
    await storeSweep();
    const doc = (await renders.findOne({ _id: key })) as RenderDoc;
    expect(doc.status).toBe('done');
    expect(Date.parse(doc.lastAccessAt!)).toBeGreaterThan(Date.now() - 60_000);
    expect(fs.existsSync(path.join(outputsDir(), `${key}.png`))).toBe(true);
  });

  it('beyond a project\'s maxStoredBytes, the least recently fetched go first', async () => {
    const projects = api.app.get(ProjectsService);
    const repo = (projects as unknown as { projects: { save(d: unknown): Promise<void> } }).projects;
    const t = await projects.get('t');
    const made = [];
    for (const label of ['cap 1', 'cap 2', 'cap 3']) {
      const created = await post({ movie: 'colors', params: { label } });
      await request(api.url).get(`/v2/render/${created.token}.png`).expect(200);
      made.push(await renderKeyOf(created.token));
    }
    const all = (await renders.find({ project: 't', status: 'done' })) as RenderDoc[];
    const total = all.reduce((s, d) => s + d.bytes, 0);
    const sizes = Object.fromEntries(all.map((d) => [d._id, d.bytes]));
    // The three newest are the most recently used; everything older goes before them.
    for (const [i, key] of made.entries()) await renders.findOneAndUpdate({ _id: key }, { $set: { lastAccessAt: new Date(Date.now() + i * 1000).toISOString() } });
    // Pinned outputs count towards the limit but are never the ones to go: the cap leaves room for them and the two newest.
    const pinnedKeys = ((await tokens.find({ pin: true })) as TokenDoc[]).flatMap((p) => p.renderKeys);
    const pinnedBytes = pinnedKeys.reduce((s, k) => s + (sizes[k] ?? 0), 0);
    expect(pinnedBytes).toBeGreaterThan(0);
    await repo.save({ ...t, limits: { ...t.limits, maxStoredBytes: pinnedBytes + sizes[made[1]] + sizes[made[2]] } });
    try {
      await storeSweep();
      const left = ((await renders.find({ project: 't', status: 'done' })) as RenderDoc[]).map((d) => d._id);
      expect(total).toBeGreaterThan(sizes[made[1]] + sizes[made[2]]);
      expect(left.sort()).toEqual([...pinnedKeys, made[1], made[2]].sort());
      expect(left).not.toContain(made[0]);
    } finally {
      await repo.save(t);
    }
  });
});

describe('tokens', () => {
  it('with a ttl expire: 410 once past it, then removed by the sweeper with the outputs no other token shares', async () => {
    const created = await post({ movie: 'colors', params: { label: 'short-lived' }, ttl: 60 });
    expect(Date.parse(created.expiresAt!)).toBeGreaterThan(Date.now() + 55_000);
    await request(api.url).get(`/v2/render/${created.token}.png`).expect(200);
    const key = await renderKeyOf(created.token);
    await tokens.findOneAndUpdate({ _id: created.token }, { $set: { expiresAt: new Date(Date.now() - 1000).toISOString() } });
    const gone = await request(api.url).get(`/v2/get/${created.token}.png`).expect(410);
    expect(gone.body.message).toMatch(/this token expired at/);
    await request(api.url).get(`/v2/progress/${created.token}`).expect(410);

    const report = await storeSweep();
    expect(report.tokensExpired).toBe(1);
    expect(await tokens.findOne({ _id: created.token })).toBeNull();
    expect(fs.existsSync(path.join(outputsDir(), `${key}.png`))).toBe(false);
    await request(api.url).get(`/v2/get/${created.token}.png`).expect(404);
  });
});

describe('leftovers of renders that no longer run', () => {
  it('segments, staging and live files are removed once older than the grace period; those of running renders stay', async () => {
    const segments = path.join(api.dataDir, 'segments');
    const live = path.join(api.dataDir, 'live');
    fs.mkdirSync(segments, { recursive: true });
    const key = 'd'.repeat(40);
    const activeRun = `${key}-a1abcdef`;
    await renders.findOneAndUpdate(
      { _id: key },
      { $set: { status: 'rendering', run: '1abcdef', project: 't', movie: 'slow', format: 'mp4', framesDone: 0, totalFrames: 240, bytes: 0, attempts: 1, createdAt: new Date().toISOString(), updatedAt: new Date().toISOString() } },
      { upsert: true },
    );
    const files = {
      active: path.join(segments, `${activeRun}-0-3.mp4`),
      deadDone: path.join(segments, `${'e'.repeat(40)}-a2123456-0-3.mp4`),
      deadStaging: path.join(segments, `.${'e'.repeat(40)}-a2123456-3-120.0123456789ab.part.mp4`),
      young: path.join(segments, `${'f'.repeat(40)}-a1654321-0-3.mp4`),
      liveOrphan: path.join(live, `${'9'.repeat(40)}.abcd1234.mp4`),
      // A file this (live) process writes, quiet for long (an encoder still buffering): kept.
      liveWriting: api.app.get(LiveFilesRepository).livePath('8'.repeat(40), 'mp4'),
    };
    for (const f of Object.values(files)) fs.writeFileSync(f, Buffer.alloc(1000));
    for (const f of [files.active, files.deadDone, files.deadStaging, files.liveOrphan, files.liveWriting]) ageFile(f, 10 * 60_000);
    const report = await storeSweep();
    expect(report.leftoversRemoved).toBe(2);
    expect(report.liveFilesRemoved).toBe(1);
    expect(fs.existsSync(files.active)).toBe(true);
    expect(fs.existsSync(files.young)).toBe(true);
    expect(fs.existsSync(files.deadDone)).toBe(false);
    expect(fs.existsSync(files.deadStaging)).toBe(false);
    expect(fs.existsSync(files.liveOrphan)).toBe(false);
    expect(fs.existsSync(files.liveWriting)).toBe(true);
    await renders.deleteOne({ _id: key });
    for (const f of Object.values(files)) fs.rmSync(f, { force: true });
  });
});

describe('caches', () => {
  it('stay under CACHE_MAX_BYTES, least recently used first; recently used files, temporary files being written and live staging stay', async () => {
    // Real rasters from renders, then filler entries, some long unused.
    const created = await post({ movie: 'colors', params: { label: 'cache me' } });
    await request(api.url).get(`/v2/render/${created.token}.png`).expect(200);
    const rasters = path.join(api.dataDir, 'cache', 'rasters');
    const assets = path.join(api.dataDir, 'cache', 'assets');
    fs.mkdirSync(path.join(assets, 'urls'), { recursive: true });
    const real = fs.readdirSync(rasters).filter((n) => n.endsWith('.png'));
    expect(real.length).toBeGreaterThan(0);
    const filler = (dir: string, name: string, bytes: number, ageMin: number) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, Buffer.alloc(bytes));
      ageFile(f, ageMin * 60_000);
      return f;
    };
    const oldest = [filler(rasters, `${'1'.repeat(32)}.png`, 300_000, 300), filler(rasters, `${'1'.repeat(32)}.png.json`, 100, 300)];
    const old = filler(assets, '2'.repeat(64), 300_000, 200);
    const middle = filler(rasters, `${'3'.repeat(32)}.png`, 300_000, 100);
    const recent = filler(assets, '4'.repeat(64), 300_000, 1); // used a minute ago: kept whatever the cap
    const staleTemp = filler(rasters, `.${'5'.repeat(32)}.png.0011aabbccdd.part.png`, 5000, 30);
    const freshTemp = filler(assets, 'download-aabbccdd.part', 5000, 1);
    const staging = path.join(api.dataDir, 'staging');
    fs.mkdirSync(staging, { recursive: true });
    const deadWriter = filler(staging, '4194300-aabb.mp4', 5000, 10); // a pid no process has
    const liveWriter = filler(staging, `${process.pid}-ccdd.mp4`, 5000, 10);

    const report = await cacheSweep();
    // 1.2 MB over a 1 MB cap: the two least recently used entries go (down to ≤ 0.9 MB).
    for (const f of [...oldest, old, staleTemp, deadWriter]) expect([f, fs.existsSync(f)]).toEqual([f, false]);
    for (const f of [middle, recent, freshTemp, liveWriter]) expect([f, fs.existsSync(f)]).toEqual([f, true]);
    expect(report.cacheBytes).toBeLessThanOrEqual(1_000_000);
    for (const name of real) expect(fs.existsSync(path.join(rasters, name))).toBe(true); // just used by the render above

    // An evicted raster is simply made again.
    fs.rmSync(rasters, { recursive: true, force: true });
    const again = await post({ movie: 'colors', params: { label: 'cache me' }, ttl: 3600 });
    await request(api.url).get(`/v2/render/${again.token}.jpg`).expect(200);
  });

  it('/metrics shows bytes per area and what the sweeper removed', async () => {
    await storeSweep();
    await cacheSweep();
    const text = (await request(api.url).get('/metrics').expect(200)).text;
    expect(text).toMatch(/^montage_disk_bytes\{area="outputs"\} [1-9]\d*$/m);
    expect(text).toMatch(/^montage_disk_bytes\{area="cache_rasters"\} [1-9]\d*$/m);
    expect(text).toMatch(/^montage_disk_files\{area="segments"\} \d+$/m);
    expect(text).toMatch(/^montage_swept_bytes\{area="cache_assets"\} [1-9]\d*$/m);
    expect(text).toMatch(/^montage_queue_available 1$/m);
  });
});
