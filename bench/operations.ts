/**
 * The operations benchmark (issue 8's targets), run by `npm run bench`:
 * - shutdown: time from SIGTERM to exit of an API with a render in flight; of a render node with
 *   a segment in flight; then, Redis killed while the distributed render goes on, of that API
 *   and of the node rendering its next segment — against SHUTDOWN_GRACE_MS + 1 s;
 * - sweeper: one pass over 10,000 cached files (evicting part of them), and the p99 latency
 *   of a stored output while it runs, against the same figure idle (≤ 2×).
 * Real processes throughout; the load comes from a separate client process.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../src/config/config';
import { createApp } from '../src/main';
import { CacheSweeper } from '../src/retention/cache-sweeper';

const root = path.resolve(__dirname, '..', '..');
const API_MAIN = path.join(root, 'dist', 'src', 'main.js');
const NODE_MAIN = path.join(root, 'dist', 'render-nodes', 'main.js');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await Promise.resolve(fn()).catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`bench: timed out waiting for ${what}`);
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

async function startRedis(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const socket = path.join(dir, 'redis.sock');
  const child = spawn('redis-server', ['--port', '0', '--unixsocket', socket, '--dir', dir, '--save', '', '--loglevel', 'warning'], { stdio: 'ignore' });
  await until('redis-server', () => fs.existsSync(socket), 10_000);
  return { url: `unix://${socket}`, child };
}

async function startApi(env: Record<string, string>, dataDir: string): Promise<{ url: string; child: ChildProcess; key: string }> {
  const port = await freePort();
  const child = spawn(process.execPath, [API_MAIN], { env: { ...process.env, PORT: String(port), MONTAGE_DATA_DIR: dataDir, ...env }, stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  // Past the start-up probe: the service itself answers (it writes the demo key as it starts).
  await until('the API', async () => fs.existsSync(path.join(dataDir, 'demo-api-key')) && ((await (await fetch(`${url}/health/live`)).json()) as { status: string }).status === 'alive');
  return { url, child, key: fs.readFileSync(path.join(dataDir, 'demo-api-key'), 'utf8').trim() };
}

/** Starts a long render and waits until its first bytes stream. */
async function renderInFlight(api: { url: string; key: string }, request: Record<string, unknown> = {}): Promise<void> {
  const res = await fetch(`${api.url}/v2/render/demo`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${api.key}` },
    body: JSON.stringify({ movie: 'welcome', params: { name: `Shutdown ${Math.random().toFixed(6)}` }, ...request }),
  });
  const { token } = (await res.json()) as { token: string };
  const stream = await fetch(`${api.url}/v2/get/${token}.mp4`);
  const reader = stream.body!.getReader();
  await reader.read(); // first bytes: the render is under way
  void (async () => {
    try {
      for (;;) if ((await reader.read()).done) break;
    } catch {
      // cut off by the shutdown: expected
    }
  })();
}

async function timeToExit(child: ChildProcess): Promise<number> {
  const start = process.hrtime.bigint();
  child.kill('SIGTERM');
  await exited(child);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export async function benchShutdown(runs: number, graceMs = 3000) {
  const inFlight: number[] = [];
  const nodeInFlight: number[] = [];
  const apiRedisGone: number[] = [];
  const nodeRedisGone: number[] = [];
  for (let i = 0; i < runs; i++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-bench-shutdown-'));
    try {
      // The embedded default, a 1080p render streaming, longer than the grace period.
      const api = await startApi({ SHUTDOWN_GRACE_MS: String(graceMs), EMBEDDED_RENDER_NODE: '1' }, path.join(dir, 'embedded'));
      await renderInFlight(api);
      inFlight.push(await timeToExit(api.child));

      // REDIS_URL, a separate node, then Redis dies: both are stopped.
      const redis = await startRedis(fs.mkdtempSync(path.join(dir, 'redis-')));
      const data = path.join(dir, 'farm');
      const farm = await startApi({ SHUTDOWN_GRACE_MS: String(graceMs), REDIS_URL: redis.url, EMBEDDED_RENDER_NODE: '0' }, data);
      const startNode = () => spawn(process.execPath, [NODE_MAIN], { env: { ...process.env, REDIS_URL: redis.url, MONTAGE_DATA_DIR: data, SHUTDOWN_GRACE_MS: String(graceMs) }, stdio: 'ignore' });
      const nodes = async () => ((await (await fetch(`${farm.url}/v2/nodes`)).json()) as { nodes: unknown[] }).nodes.length;
      // A node stopped while it renders a segment of a distributed render: it finishes or hands it back.
      const busy = startNode();
      await until('the node', async () => (await nodes()) === 1);
      await renderInFlight(farm, { parallel: 2 });
      nodeInFlight.push(await timeToExit(busy));
      await until('the node to leave', async () => (await nodes()) === 0, 20_000);
      const node = startNode();
      await until('the node', async () => (await nodes()) === 1);
      redis.child.kill('SIGKILL');
      await exited(redis.child);
      await sleep(500);
      apiRedisGone.push(await timeToExit(farm.child));
      nodeRedisGone.push(await timeToExit(node));
      process.stderr.write(
        `shutdown run ${i + 1}/${runs}: API, render in flight ${inFlight[i].toFixed(0)} ms; node, segment in flight ${nodeInFlight[i].toFixed(0)} ms; API without Redis ${apiRedisGone[i].toFixed(0)} ms; node without Redis ${nodeRedisGone[i].toFixed(0)} ms (grace ${graceMs} ms)\n`,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const target = graceMs + 1000;
  return {
    graceMs,
    targetMs: target,
    renderInFlightMs: Math.round(median(inFlight)),
    nodeSegmentInFlightMs: Math.round(median(nodeInFlight)),
    apiRedisGoneMs: Math.round(median(apiRedisGone)),
    nodeRedisGoneMs: Math.round(median(nodeRedisGone)),
    worstMs: Math.round(Math.max(...inFlight, ...nodeInFlight, ...apiRedisGone, ...nodeRedisGone)),
  };
}

/** A client in its own process: GETs `url` back to back on `connections` keep-alive connections for `ms`; prints latencies with their start times. */
const CLIENT = `
const http = require('node:http');
const [url, ms, connections] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
const samples = [];
const end = Date.now() + ms;
const one = () => new Promise((resolve) => {
  const start = Date.now(); const t = process.hrtime.bigint();
  http.get(url, { agent }, (res) => { res.resume(); res.on('end', () => { samples.push([start, Number(process.hrtime.bigint() - t) / 1e6]); resolve(); }); }).on('error', resolve);
});
(async () => {
  await Promise.all(Array.from({ length: connections }, async () => { while (Date.now() < end) await one(); }));
  process.send(samples, () => process.exit(0));
})();
`;

async function load(url: string, ms: number, connections: number): Promise<Array<[number, number]>> {
  const file = path.join(os.tmpdir(), `montage-bench-client-${process.pid}.js`);
  fs.writeFileSync(file, CLIENT);
  const child = fork(file, [url, String(ms), String(connections)], { stdio: 'ignore' });
  return new Promise((resolve) => child.once('message', (samples) => resolve(samples as Array<[number, number]>)));
}

/** 10,000 cache files: 4,000 raster pairs and 2,000 asset blobs, all unused for an hour, 40 MiB. */
function fillCache(dataDir: string): number {
  const rasters = path.join(dataDir, 'cache', 'rasters');
  const assets = path.join(dataDir, 'cache', 'assets');
  fs.mkdirSync(rasters, { recursive: true });
  fs.mkdirSync(assets, { recursive: true });
  const body = Buffer.alloc(4096, 7);
  const old = new Date(Date.now() - 3600_000);
  let n = 0;
  const write = (file: string) => {
    fs.writeFileSync(file, body);
    fs.utimesSync(file, old, new Date(old.getTime() + n++));
  };
  for (let i = 0; i < 4000; i++) {
    const name = `bench${String(i).padStart(27, '0')}.png`;
    write(path.join(rasters, name));
    write(path.join(rasters, `${name}.json`));
  }
  for (let i = 0; i < 2000; i++) write(path.join(assets, `${'b'.repeat(56)}${String(i).padStart(8, '0')}`));
  return n;
}

export async function benchSweeper(runs: number) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-bench-sweeper-'));
  // Half of the 40 MiB fits: every pass lists 10,000 files and removes about half of them.
  Object.assign(process.env, { MONTAGE_DATA_DIR: dataDir, CACHE_MAX_BYTES: String(20 * 1024 * 1024), SWEEP_INTERVAL_MS: String(3600_000) });
  const app = await createApp(loadConfig(process.env), ['error']);
  await app.listen(0, '127.0.0.1');
  const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  const key = fs.readFileSync(path.join(dataDir, 'demo-api-key'), 'utf8').trim();
  const created = (await (
    await fetch(`${base}/v2/render/demo`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${key}` },
      body: JSON.stringify({ movie: 'welcome', params: { name: 'Sweeper' } }),
    })
  ).json()) as { token: string };
  const url = `${base}/v2/get/${created.token}.jpg`;
  await fetch(`${base}/v2/render/${created.token}.jpg`).then((r) => r.arrayBuffer()); // stored
  const sweeper = app.get(CacheSweeper);
  const passes: number[] = [];
  const idleP99: number[] = [];
  const duringP99: number[] = [];
  let files = 0;
  let removed = 0;
  for (let i = 0; i < runs; i++) {
    files = fillCache(dataDir);
    const idle = await load(url, 2000, 4);
    idleP99.push(percentile(idle.map((s) => s[1]), 99));
    const loaded = load(url, 3000, 4);
    await sleep(500);
    const from = Date.now();
    const report = await sweeper.sweep();
    const to = Date.now();
    passes.push(to - from);
    removed = report.removedFiles;
    const during = (await loaded).filter(([start]) => start >= from && start <= to).map((s) => s[1]);
    duringP99.push(percentile(during.length ? during : [0], 99));
    process.stderr.write(
      `sweeper run ${i + 1}/${runs}: a pass over ${report.scannedFiles} files (${report.removedFiles} removed) took ${passes[i]} ms; stored output p99 ${idleP99[i].toFixed(1)} ms idle, ${duringP99[i].toFixed(1)} ms during the pass (${during.length} requests)\n`,
    );
  }
  await app.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
  const idle = median(idleP99);
  const during = median(duringP99);
  return {
    files,
    removedPerPass: removed,
    passMs: median(passes),
    idleP99Ms: Number(idle.toFixed(2)),
    duringP99Ms: Number(during.toFixed(2)),
    p99Ratio: Number((during / idle).toFixed(2)),
  };
}
