import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type ApiProc, eventually, killGroup, type RedisProc, startApiProcess, startRedis } from '../helpers/processes';

// Rate limits and quotas live in Redis, so two API processes on one Redis share them. Each
// API here has its own data dir; the project (and so its API key) is copied from the first to
// the second, as a shared MongoDB would hold it.

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-limits-'));
const stop: Array<() => unknown> = [];
afterAll(async () => {
  for (const fn of stop.reverse()) await fn();
  fs.rmSync(work, { recursive: true, force: true });
});

/** Two API processes on one Redis, sharing project `t` and its key. */
async function twoApis(env: Record<string, string>): Promise<{ a: ApiProc; b: ApiProc; redis: RedisProc }> {
  const redis = await startRedis(fs.mkdtempSync(path.join(work, 'redis-')));
  stop.push(() => redis.stop());
  const shared = { REDIS_URL: redis.url, ...env };
  const a = await startApiProcess(shared);
  stop.push(() => killGroup(a.pid));
  const dirB = fs.mkdtempSync(path.join(work, 'b-'));
  fs.mkdirSync(path.join(dirB, 'projects'), { recursive: true });
  fs.copyFileSync(path.join(a.dataDir, 'projects', 't.json'), path.join(dirB, 'projects', 't.json'));
  fs.copyFileSync(path.join(a.dataDir, 't-api-key'), path.join(dirB, 't-api-key'));
  const b = await startApiProcess(shared, dirB);
  stop.push(() => killGroup(b.pid));
  expect(b.key()).toBe(a.key());
  return { a, b, redis };
}

const post = (api: ApiProc, body: object) =>
  fetch(`${api.url}/v2/render/t`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Api-Key': api.key() }, body: JSON.stringify(body) });

it('requests per minute per key hold across API processes: the next one is 429 with Retry-After', async () => {
  const { a, b } = await twoApis({ RATE_LIMIT_REQUESTS_PER_MINUTE: '4' });
  // A window of a minute: not across its end, or the count would start again.
  await eventually('the start of a minute', () => (new Date().getSeconds() < 50 ? true : undefined), 15_000);
  const statuses = [];
  for (const api of [a, b, a, b]) statuses.push((await post(api, { movie: 'colors' })).status);
  expect(statuses).toEqual([200, 200, 200, 200]);
  const refused = await post(b, { movie: 'colors' });
  expect(refused.status).toBe(429);
  const retryAfter = Number(refused.headers.get('retry-after'));
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(60);
  expect(((await refused.json()) as { message: string }).message).toMatch(/more than 4 requests this minute/);
  expect((await post(a, { movie: 'colors' })).status).toBe(429);
  // A wrong key is 401, not counted and not limited.
  const wrong = await fetch(`${a.url}/v2/render/t`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Api-Key': 'mk_nope' }, body: '{"movie":"colors"}' });
  expect(wrong.status).toBe(401);
});

it('farm and product requests pay into the same requests per minute: the next one is 429, whichever API it goes to', async () => {
  const { a, b } = await twoApis({ RATE_LIMIT_REQUESTS_PER_MINUTE: '3' });
  await eventually('the start of a minute', () => (new Date().getSeconds() < 50 ? true : undefined), 15_000);
  const farm = (api: ApiProc, route: string, body: object) =>
    fetch(`${api.url}/v1/farm/${route}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ api_key: api.key(), ...body }) });
  const statuses = [
    (await farm(a, 'upload', { filename: 'a.png' })).status,
    (await post(b, { movie: 'colors' })).status,
    (await fetch(`${a.url}/v1/products`, { headers: { 'X-AUTH-TOKEN': `Bearer ${a.key()}` } })).status,
  ];
  expect(statuses).toEqual([200, 200, 200]);
  const refused = await farm(b, 'progress', { job_id: 'job_x' });
  expect(refused.status).toBe(429);
  expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
  expect((await fetch(`${b.url}/v1/products`, { headers: { 'X-AUTH-TOKEN': `Bearer ${b.key()}` } })).status).toBe(429);
});

it('renders running per key hold across API processes; a slot frees when its render ends', async () => {
  const { a, b } = await twoApis({ RATE_LIMIT_RENDERS_RUNNING: '1' });
  const first = (await (await post(a, { movie: 'long' })).json()) as { token: string }; // still rendering throughout
  const second = (await (await post(b, { movie: 'colors', params: { label: 'second' } })).json()) as { token: string };
  const watching = fetch(`${a.url}/v2/get/${first.token}.mp4`).then((r) => r.arrayBuffer());
  watching.catch(() => undefined); // awaited below
  await eventually('the first to render', async () => (((await (await fetch(`${a.url}/v2/progress/${first.token}`)).json()) as { status: string }).status === 'rendering' ? true : undefined));
  const refused = await fetch(`${b.url}/v2/get/${second.token}.mp4`);
  expect(refused.status).toBe(429);
  expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
  expect(((await refused.json()) as { message: string }).message).toMatch(/has 1 renders running, the most project "t" allows at once/);
  // Watching a render already running is no new render: allowed, while it still runs.
  const another = await fetch(`${a.url}/v2/get/${first.token}.mp4`);
  expect(another.status).toBe(200);
  expect(another.headers.get('x-montage-status')).toBe('rendering');
  await another.arrayBuffer();
  await watching;
  await eventually('the slot to be free', async () => ((await fetch(`${b.url}/v2/render/${second.token}.mp4`)).status === 200 ? true : undefined), 20_000);
});

it('pixel-seconds per day, shared: a render that would pass the quota is 429 with Retry-After until midnight UTC; a still still fits', async () => {
  // colors is 320×180 for 2 s: 115,200 pixel-seconds; two do not fit in 200,000. A frame is 1/30 of a second of it.
  const { a, b } = await twoApis({ QUOTA_PIXEL_SECONDS_PER_DAY: '200000' });
  const first = (await (await post(a, { movie: 'colors', params: { label: 'quota 1' } })).json()) as { token: string };
  expect((await fetch(`${a.url}/v2/render/${first.token}.mp4`)).status).toBe(200);
  const second = (await (await post(b, { movie: 'colors', params: { label: 'quota 2' } })).json()) as { token: string };
  const refused = await fetch(`${b.url}/v2/get/${second.token}.mp4`);
  expect(refused.status).toBe(429);
  const retryAfter = Number(refused.headers.get('retry-after'));
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(24 * 3600);
  expect(((await refused.json()) as { message: string }).message).toMatch(/daily quota of 200000 pixel-seconds/);
  expect((await fetch(`${b.url}/v2/progress/${second.token}`)).status).toBe(200); // the token itself is fine
  expect((await fetch(`${b.url}/v2/get/${second.token}.png`)).status).toBe(200);
});

it('play mode pays the same way: segment by segment, each its own seconds, until the daily quota is spent', async () => {
  // colors is 320×180: 57,600 pixel-seconds a second. 100,000 holds the first segments, not the whole 2 s.
  const api = await startApiProcess({ QUOTA_PIXEL_SECONDS_PER_DAY: '100000' });
  stop.push(() => killGroup(api.pid));
  const { token } = (await (await post(api, { movie: 'colors', params: { label: 'play quota' } })).json()) as { token: string };
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) {
    const res = await fetch(`${api.url}/v2/play/${token}/seg-${i}.m4s`);
    statuses.push(res.status);
    if (res.status === 429) expect(((await res.json()) as { message: string }).message).toMatch(/daily quota of 100000 pixel-seconds/);
    else await res.arrayBuffer();
    if (res.status !== 200) break;
  }
  expect(statuses[0]).toBe(200);
  expect(statuses[statuses.length - 1]).toBe(429);
});
