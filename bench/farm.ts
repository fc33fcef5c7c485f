/**
 * The farm benchmark (`BENCH_ONLY=farm`): every render runs on render nodes, so these figures
 * are measured with real processes as they are deployed — `node dist/src/main.js` with
 * EMBEDDED_RENDER_NODE=0, `node dist/render-nodes/main.js`, a redis-server of the bench's own,
 * and (for two API processes) CongoDB as the MongoDB they share. Every render has params of
 * its own, so nothing is served from storage unless that is what is measured.
 *
 * 1. parallel 1 through a node: first byte of GET /v2/get/<t>.mp4;
 * 2. Chromium: first picture playing after page.goto (parallel 1 on one node; parallel 2 on two
 *    nodes pinned to cores 0 and 1; the stored file for reference);
 * 3. WebM, parallel 2, in Chromium: playing before the render is done; first byte / render time;
 * 4. parallel 1 through a node against RenderService.render in this process: total time;
 * 6. API CPU seconds / node CPU seconds (with its ffmpeg children) during a parallel-1 render;
 * 7. 100 viewers of one token over two API processes: one render, each API's peak RSS.
 * (5, scaling, and 8, the renderer against hand-written ffmpeg, are bench.ts's own parts.)
 *
 * Every process started here is stopped by its pid (and its process group, for the ffmpeg
 * children of a node), also when a measurement fails.
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../src/config/config';
import { ConfigModule } from '../src/config/config.module';
import { RenderModule } from '../src/render/render.module';
import { RenderService } from '../src/render/render.service';
import { MongoDocumentStore } from '../src/repositories/document-store/mongo';

const root = path.resolve(__dirname, '..', '..');
const API_MAIN = path.join(root, 'dist', 'src', 'main.js');
const NODE_MAIN = path.join(root, 'dist', 'render-nodes', 'main.js');
const CONGO = path.join(root, 'test', 'helpers', 'congo-server.mjs');
const PARAMS = { company: 'Acme Studios', brand: '#e94e1b' };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The median (the mean of the middle two for an even count: the farm part runs twice by default). */
const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const round = (x: number, digits = 0) => Number(x.toFixed(digits));
let unique = 0;
/** A name no render has had: the output is rendered, never served from storage. */
const uniqueName = (what: string) => `${what} ${process.pid}-${Date.now().toString(36)}-${++unique}`;

/** An error `until` does not wait out: the thing waited for will not come. */
export class Fatal extends Error {}

export async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      if (err instanceof Fatal) throw err;
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`farm bench: timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// /proc

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Fields of /proc/<pid>/stat after the command name; undefined once the process is gone. */
function statFields(pid: number | 'self'): string[] | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** CPU seconds of a process and of its children that have exited (utime + stime + cutime + cstime). */
export function cpuSeconds(pid: number | 'self'): number {
  const f = statFields(pid);
  if (!f) return NaN;
  // stat fields 14–17 (utime, stime, cutime, cstime) are 11–14 here (counted from the state, field 3)
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
}

/** Live (not zombie) children of `pid`, and theirs. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    if (!f || f[0] === 'Z') continue;
    const ppid = Number(f[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length > 0) {
    const next = queue.shift()!;
    found.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return found;
}

/** VmRSS of a process in MB (MiB), or NaN once it is gone. */
export function rssMb(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * CPU time of the whole machine and of this process with its children, to say how much of
 * the machine other work (other people's tests on a shared machine) took while measuring.
 */
export interface LoadMark {
  at: number;
  busy: number;
  total: number;
  own: number;
}

export function loadMark(): LoadMark {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = cpu[3] + (cpu[4] ?? 0);
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  return { at: Date.now(), busy: (total - idle) / CLK_TCK, total: total / CLK_TCK, own: cpuSeconds('self') };
}

/**
 * Between two marks: the share of the machine's CPU time used by processes that are not this
 * bench's (its children count as its own once they have exited, which every one has by a part's end).
 */
export function foreignLoad(from: LoadMark, to: LoadMark): { seconds: number; foreignCpuShare: number; loadavg1: number } {
  const busy = to.busy - from.busy;
  const own = to.own - from.own;
  const total = to.total - from.total;
  return { seconds: round((to.at - from.at) / 1000, 1), foreignCpuShare: round(Math.max(0, busy - own) / Math.max(total, 1e-9), 3), loadavg1: os.loadavg()[0] };
}

// ---------------------------------------------------------------------------------------------
// Processes

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  log: string;
  exited: Promise<void>;
  running(): boolean;
  /** The end of what it printed (its log file). */
  tail(chars?: number): string;
}

/** Every process this part starts, so each is stopped (by its pid and group) whatever happens. */
class Processes {
  private readonly all: Proc[] = [];
  private readonly onExit = () => this.killAllNow();

  constructor(private readonly logDir: string) {
    fs.mkdirSync(logDir, { recursive: true });
    process.once('exit', this.onExit);
  }

  /** In a process group of its own (detached), so that a node's ffmpeg children can be stopped with it. */
  start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv, stdout: 'log' | 'pipe' = 'log'): Proc {
    const log = path.join(this.logDir, `${name}.log`);
    const fd = fs.openSync(log, 'a');
    const child = spawn(command, args, { env, detached: true, stdio: [stdout === 'pipe' ? 'pipe' : 'ignore', stdout === 'pipe' ? 'pipe' : fd, fd] });
    fs.closeSync(fd);
    if (!child.pid) throw new Error(`farm bench: could not start ${name} (${command})`);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const proc: Proc = {
      name,
      child,
      pid: child.pid,
      log,
      exited,
      running: () => child.exitCode === null && child.signalCode === null,
      tail: (chars = 2000) => {
        try {
          return fs.readFileSync(log, 'utf8').slice(-chars);
        } catch {
          return '';
        }
      },
    };
    this.all.push(proc);
    return proc;
  }

  /** SIGTERM, then SIGKILL to it and its group after `graceMs`; whatever is left of its group goes too. */
  async stop(proc: Proc, graceMs = 5000): Promise<void> {
    if (proc.running()) {
      signal(proc.pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([proc.exited, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    signal(-proc.pid, 'SIGKILL'); // the group: encoders a killed node left behind
    if (proc.running()) {
      signal(proc.pid, 'SIGKILL');
      await proc.exited;
    }
    proc.child.stdin?.destroy();
    proc.child.stdout?.destroy();
  }

  /** Nodes first (they finish or hand back their jobs), then APIs, then Redis and the store. */
  async stopAll(): Promise<void> {
    const order = (p: Proc) => (p.name.startsWith('node') ? 0 : p.name.startsWith('api') ? 1 : 2);
    const procs = [...this.all].sort((a, b) => order(a) - order(b));
    for (const group of [0, 1, 2]) await Promise.all(procs.filter((p) => order(p) === group).map((p) => this.stop(p)));
    process.removeListener('exit', this.onExit);
  }

  /** On the way out of the bench (an exception past every finally): SIGKILL, synchronously. */
  private killAllNow(): void {
    for (const p of this.all) {
      signal(-p.pid, 'SIGKILL');
      signal(p.pid, 'SIGKILL');
    }
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

/** Settings the other parts of the bench leave in process.env, and those given here explicitly. */
const OWN_SETTINGS = ['MONTAGE_DATA_DIR', 'EMBEDDED_RENDER_NODE', 'REDIS_URL', 'MONGODB_URI', 'STORAGE_URL', 'ROUTING_KEYS', 'CONCURRENCY', 'PORT', 'CACHE_MAX_BYTES', 'SWEEP_INTERVAL_MS', 'SHUTDOWN_GRACE_MS'];

function envWith(settings: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of OWN_SETTINGS) delete env[name];
  for (const [k, v] of Object.entries(settings)) if (v !== undefined) env[k] = v;
  env.MONTAGE_TEMPLATES_DIR ??= path.join(root, 'templates');
  env.SHUTDOWN_GRACE_MS ??= '2000';
  return env;
}

interface Api {
  proc: Proc;
  url: string;
  dataDir: string;
}

/** Everything one setup runs: Redis, maybe CongoDB, API processes and nodes, on one shared storage directory. */
export class Farm {
  readonly procs: Processes;
  readonly storage: string;
  readonly nodeData: string;
  redisUrl = '';
  mongoUri?: string;
  readonly apis: Api[] = [];
  readonly nodes: Proc[] = [];
  key = '';

  constructor(readonly dir: string) {
    this.procs = new Processes(path.join(dir, 'logs'));
    this.storage = path.join(dir, 'storage');
    // Nodes may share a data dir (their caches and live files): rasters made once serve both.
    this.nodeData = path.join(dir, 'node-data');
    fs.mkdirSync(this.storage, { recursive: true });
  }

  async startRedis(): Promise<void> {
    const redisDir = path.join(this.dir, 'redis');
    fs.mkdirSync(redisDir, { recursive: true });
    const socket = path.join(redisDir, 'redis.sock');
    const proc = this.procs.start('redis', 'redis-server', ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--dir', redisDir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], process.env);
    await until('redis-server', () => {
      if (!proc.running()) throw new Fatal(`redis-server exited: ${proc.tail()}`);
      return fs.existsSync(socket) ? true : undefined;
    }, 10_000);
    this.redisUrl = `unix://${socket}`;
  }

  /** CongoDB (test/helpers/congo-server.mjs), in memory: the MongoDB two API processes share. */
  async startCongo(): Promise<void> {
    const proc = this.procs.start('congo', process.execPath, [CONGO], process.env, 'pipe');
    let out = '';
    proc.child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    this.mongoUri = await until('CongoDB to print its URI', () => {
      if (!proc.running()) throw new Fatal(`CongoDB exited: ${proc.tail()}`);
      return out.includes('\n') ? out.split('\n')[0].trim() : undefined;
    }, 20_000);
  }

  async startApi(name: string): Promise<Api> {
    const port = await freePort();
    const dataDir = path.join(this.dir, name);
    const proc = this.procs.start(
      name,
      process.execPath,
      [API_MAIN],
      envWith({ PORT: String(port), MONTAGE_DATA_DIR: dataDir, EMBEDDED_RENDER_NODE: '0', REDIS_URL: this.redisUrl, STORAGE_URL: this.storage, MONGODB_URI: this.mongoUri }),
    );
    const url = `http://127.0.0.1:${port}`;
    await until(`${name} to be ready`, async () => {
      if (!proc.running()) throw new Fatal(`${name} exited: ${proc.tail()}`);
      if (!proc.tail(100_000).includes('Montage listening on')) return undefined;
      return (await request(`${url}/health/ready`)).status === 200 ? true : undefined;
    });
    // The first API process makes the demo project and writes its key; the others find it in the store.
    const keyFile = path.join(dataDir, 'demo-api-key');
    if (!this.key) this.key = fs.readFileSync(keyFile, 'utf8').trim();
    const api = { proc, url, dataDir };
    this.apis.push(api);
    return api;
  }

  /** A render node, pinned to `core` with taskset when given. */
  async startNode(core?: number): Promise<Proc> {
    const name = `node-${this.nodes.length}${core === undefined ? '' : `-core${core}`}`;
    const args = core === undefined ? [NODE_MAIN] : ['-c', String(core), process.execPath, NODE_MAIN];
    const env = envWith({ REDIS_URL: this.redisUrl, STORAGE_URL: this.storage, MONTAGE_DATA_DIR: this.nodeData, CONCURRENCY: '1' });
    const proc = this.procs.start(name, core === undefined ? process.execPath : 'taskset', args, env);
    this.nodes.push(proc);
    const want = this.nodes.length;
    await until(`${want} render node(s)`, async () => {
      if (!proc.running()) throw new Fatal(`${name} exited: ${proc.tail()}`);
      const { nodes } = await getJson<{ nodes: Array<{ pid: number }> }>(`${this.apis[0].url}/v2/nodes`);
      return nodes.some((n) => n.pid === proc.pid) && nodes.length === want ? true : undefined;
    }, 30_000);
    return proc;
  }

  async token(name: string, parallel: number, api = this.apis[0]): Promise<string> {
    const res = await request(`${api.url}/v2/render/demo`, { method: 'POST', headers: { 'X-Api-Key': this.key }, body: { movie: 'welcome', params: { ...PARAMS, name }, parallel }, keep: true });
    if (res.status !== 200) throw new Error(`farm bench: POST /v2/render/demo answered ${res.status}: ${res.body.toString('utf8').slice(0, 300)}`);
    return (JSON.parse(res.body.toString('utf8')) as { token: string }).token;
  }

  async progress(token: string, api = this.apis[0]): Promise<{ status: string; error?: string; formats: Record<string, { status: string; bytes: number }> }> {
    return getJson(`${api.url}/v2/progress/${token}`);
  }

  /** Until the output of `ext` is stored, and no node has an encoder left running. */
  async settled(token: string, ext: string, timeoutMs = 120_000): Promise<void> {
    await until(`the ${ext} of ${token} to be stored`, async () => {
      const p = await this.progress(token);
      const f = p.formats[ext];
      if (f?.status === 'failed') throw new Fatal(`the ${ext} of ${token} failed: ${p.error ?? 'no reason given'}`);
      return f?.status === 'done' ? true : undefined;
    }, timeoutMs, 100);
    await until('the nodes to be idle (no ffmpeg left)', () => (this.nodes.every((n) => descendants(n.pid).length === 0) ? true : undefined), 30_000);
  }

  /** What the processes printed, for a failure report. */
  logs(): string {
    return [...this.apis.map((a) => a.proc), ...this.nodes].map((p) => `--- ${p.name} (pid ${p.pid}) ---\n${p.tail(1500)}`).join('\n');
  }

  async stop(): Promise<void> {
    await this.procs.stopAll();
  }
}

export interface Answer {
  status: number;
  /** The body, when asked for (`keep`); otherwise only counted. */
  body: Buffer;
  bytes: number;
  /** From the request to the first byte of the body, and to its end. */
  ttfbMs: number;
  totalMs: number;
  /** Date.now() at the last byte. */
  lastByteAt: number;
}

/**
 * One HTTP request on a connection of its own (no keep-alive: a pooled socket that the server
 * closed while this process was busy rendering would fail the next request), timed from the
 * request to the first and the last byte of its body. Rejects when the body is cut short.
 */
export function request(url: string, opts: { method?: string; body?: unknown; headers?: Record<string, string>; keep?: boolean } = {}): Promise<Answer> {
  const data = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const req = http.request(
      url,
      { method: opts.method ?? 'GET', agent: false, headers: { ...(data ? { 'Content-Type': 'application/json', 'Content-Length': String(data.length) } : {}), ...opts.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        let ttfbMs = 0;
        res.on('data', (chunk: Buffer) => {
          if (bytes === 0) ttfbMs = ms(start);
          bytes += chunk.length;
          if (opts.keep) chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), bytes, ttfbMs, totalMs: ms(start), lastByteAt: Date.now() }));
        res.on('aborted', () => reject(new Error(`${opts.method ?? 'GET'} ${url}: the response was cut off after ${bytes} bytes`)));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await request(url, { keep: true });
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${res.body.toString('utf8').slice(0, 300)}`);
  return JSON.parse(res.body.toString('utf8')) as T;
}

/** A GET of a whole video: its first and last byte; fails on anything but a complete 200. */
async function fetchTimed(url: string): Promise<Answer> {
  const res = await request(url);
  if (res.status !== 200 || res.bytes === 0) throw new Error(`GET ${url} answered ${res.status} with ${res.bytes} bytes`);
  return res;
}

// ---------------------------------------------------------------------------------------------
// The figures

type Browser = import('playwright-core').Browser;
type BrowserKit = typeof import('./browser');

export async function withFarm<T>(name: string, work: string, fn: (farm: Farm) => Promise<T>): Promise<T> {
  const farm = new Farm(fs.mkdtempSync(path.join(work, `${name}-`)));
  try {
    return await fn(farm);
  } catch (err) {
    process.stderr.write(`farm bench (${name}) failed; what the processes printed:\n${farm.logs()}\n`);
    throw err;
  } finally {
    await farm.stop();
  }
}

/**
 * One API (EMBEDDED_RENDER_NODE=0) and one node: parallel-1 renders through the node,
 * interleaved with the same movie rendered by RenderService in this process; each node render
 * with the CPU seconds of the API and of the node (its ffmpeg children included). Then Chromium
 * on a fresh parallel-1 render, and on the stored file.
 */
async function onePerNode(work: string, runs: number, kit: BrowserKit | undefined, browser: Browser | undefined) {
  return withFarm('one-node', work, async (farm) => {
    await farm.startRedis();
    const api = await farm.startApi('api');
    const node = await farm.startNode();

    // The renderer in this process, with caches of its own (warmed like the node's).
    const directData = path.join(farm.dir, 'direct-data');
    const ctx = await NestFactory.createApplicationContext(
      { module: class FarmDirectRenderer {}, imports: [ConfigModule.forRoot(loadConfig(envWith({ MONTAGE_DATA_DIR: directData }))), RenderModule] },
      { logger: ['error'] },
    );
    const renderer = ctx.get(RenderService);
    const direct = async (name: string) => {
      const out = path.join(farm.dir, `direct-${unique}.mp4`);
      const start = process.hrtime.bigint();
      // As the node renders it (and as the API used to): streamable mp4 written in place.
      await renderer.render({ project: 'demo', movie: 'welcome', params: { ...PARAMS, name }, profile: { format: 'mp4', streamable: true } }, out, undefined, { inPlace: true });
      const took = ms(start);
      fs.rmSync(out, { force: true });
      return took;
    };
    const viaNode = async (name: string) => {
      const before = { api: cpuSeconds(api.proc.pid), node: cpuSeconds(node.pid) };
      const start = process.hrtime.bigint();
      const token = await farm.token(name, 1);
      const get = await fetchTimed(`${api.url}/v2/get/${token}.mp4`);
      const totalMs = ms(start);
      await farm.settled(token, 'mp4');
      const storedMs = ms(start);
      await sleep(300); // the API records the end; a heartbeat or two
      const after = { api: cpuSeconds(api.proc.pid), node: cpuSeconds(node.pid) };
      return { ttfbMs: get.ttfbMs, totalMs, storedMs, apiCpu: after.api - before.api, nodeCpu: after.node - before.node };
    };

    try {
      await viaNode(uniqueName('Warm node')); // rasters, template caches, ffmpeg pages: every side alike
      await direct(uniqueName('Warm direct'));
      const node1: Array<Awaited<ReturnType<typeof viaNode>>> = [];
      const direct1: number[] = [];
      for (let i = 0; i < runs; i++) {
        node1.push(await viaNode(uniqueName(`Node ${i}`)));
        direct1.push(await direct(uniqueName(`Direct ${i}`)));
        const n = node1[i];
        process.stderr.write(
          `farm run ${i + 1}/${runs}: parallel 1 via a node: first byte ${n.ttfbMs.toFixed(0)} ms, last byte ${n.totalMs.toFixed(0)} ms (stored ${n.storedMs.toFixed(0)} ms); in-process render ${direct1[i].toFixed(0)} ms; CPU API ${n.apiCpu.toFixed(2)} s, node ${n.nodeCpu.toFixed(2)} s\n`,
        );
      }

      const playing: number[] = [];
      const stored: number[] = [];
      if (kit && browser) {
        for (let i = 0; i < runs; i++) {
          const token = await farm.token(uniqueName(`Play 1 ${i}`), 1);
          const url = `${api.url}/v2/get/${token}.mp4`;
          playing.push((await kit.measurePlayback(browser, url, { start: 'play', timeoutMs: 60_000 })).firstPlayingMs);
          await farm.settled(token, 'mp4');
          stored.push((await kit.measurePlayback(browser, url, { start: 'play', timeoutMs: 60_000 })).firstPlayingMs);
          process.stderr.write(`farm run ${i + 1}/${runs}: Chromium, parallel 1 on one node: playing after ${playing[i].toFixed(0)} ms; the stored file after ${stored[i].toFixed(0)} ms\n`);
        }
      }
      // Each node render against the in-process render right after it: a busy moment on this shared machine hits both.
      const ratio = median(node1.map((n, i) => n.totalMs / direct1[i]));
      return {
        runs,
        firstByteMs: Math.round(median(node1.map((n) => n.ttfbMs))),
        viaNodeMs: node1.map((n) => Math.round(n.totalMs)),
        viaNodeStoredMs: node1.map((n) => Math.round(n.storedMs)),
        directMs: direct1.map(Math.round),
        viaNodeMedianMs: Math.round(median(node1.map((n) => n.totalMs))),
        directMedianMs: Math.round(median(direct1)),
        viaNodeOverDirect: round(ratio, 3),
        apiCpuSeconds: node1.map((n) => round(n.apiCpu, 2)),
        nodeCpuSeconds: node1.map((n) => round(n.nodeCpu, 2)),
        apiOverNodeCpu: round(median(node1.map((n) => n.apiCpu / n.nodeCpu)), 4),
        chromium: browser ? { playingMs: playing.map(Math.round), medianPlayingMs: Math.round(median(playing)), storedPlayingMs: stored.map(Math.round), medianStoredMs: Math.round(median(stored)) } : undefined,
      };
    } finally {
      await ctx.close();
    }
  });
}

/**
 * One API and two nodes pinned to cores 0 and 1: Chromium on parallel-2 mp4 renders; then
 * parallel-2 WebM renders, each watched at once by Chromium and by a plain HTTP viewer (its
 * first and last byte: the render's stream from start to end).
 */
async function twoPinnedNodes(work: string, runs: number, kit: BrowserKit | undefined, browser: Browser | undefined) {
  return withFarm('two-nodes', work, async (farm) => {
    await farm.startRedis();
    const api = await farm.startApi('api');
    await farm.startNode(0);
    await farm.startNode(1);
    const warm = await farm.token(uniqueName('Warm two'), 2);
    await fetchTimed(`${api.url}/v2/get/${warm}.mp4`);
    await farm.settled(warm, 'mp4');

    const mp4Playing: number[] = [];
    const webm: Array<{ playingMs: number | null; playedWhileRendering: boolean; playingShareOfRender: number | null; ttfbMs: number; totalMs: number; failure?: string }> = [];
    for (let i = 0; i < runs; i++) {
      if (kit && browser) {
        const token = await farm.token(uniqueName(`Play 2 ${i}`), 2);
        mp4Playing.push((await kit.measurePlayback(browser, `${api.url}/v2/get/${token}.mp4`, { start: 'play', timeoutMs: 60_000 })).firstPlayingMs);
        await farm.settled(token, 'mp4');
      }
      const token = await farm.token(uniqueName(`WebM 2 ${i}`), 2);
      const url = `${api.url}/v2/get/${token}.webm`;
      const viewerStart = Date.now();
      const viewer = fetchTimed(url);
      let playingMs: number | null = null;
      let playingAt = Infinity;
      let failure: string | undefined;
      if (kit && browser) {
        try {
          const played = await kit.measurePlayback(browser, url, { start: 'play', timeoutMs: 90_000 });
          playingMs = played.firstPlayingMs;
          playingAt = played.firstPlayingAtEpochMs;
        } catch (err) {
          failure = (err as Error).message.slice(0, 300);
        }
      }
      const got = await viewer;
      await farm.settled(token, 'webm');
      // The render is done when its stream has sent its last byte (the stored file follows).
      const playingShareOfRender = playingMs === null ? null : round((playingAt - viewerStart) / (got.lastByteAt - viewerStart), 3);
      webm.push({ playingMs, playedWhileRendering: playingAt < got.lastByteAt, playingShareOfRender, ttfbMs: got.ttfbMs, totalMs: got.totalMs, ...(failure ? { failure } : {}) });
      process.stderr.write(
        `farm run ${i + 1}/${runs}: Chromium, parallel 2 on two pinned nodes: mp4 playing after ${mp4Playing[i]?.toFixed(0) ?? '–'} ms; webm playing after ${playingMs?.toFixed(0) ?? `never (${failure ?? 'no browser'})`} ms, ${playingAt < got.lastByteAt ? 'before' : 'not before'} the stream's last byte; webm first byte ${got.ttfbMs.toFixed(0)} ms of ${got.totalMs.toFixed(0)} ms\n`,
      );
    }
    const share = median(webm.map((w) => w.ttfbMs / w.totalMs));
    return {
      runs,
      mp4PlayingMs: browser ? mp4Playing.map(Math.round) : undefined,
      medianMp4PlayingMs: browser ? Math.round(median(mp4Playing)) : undefined,
      webm: webm.map((w) => ({ ...w, playingMs: w.playingMs === null ? null : Math.round(w.playingMs), ttfbMs: Math.round(w.ttfbMs), totalMs: Math.round(w.totalMs) })),
      webmPlayedWhileRendering: browser ? webm.every((w) => w.playedWhileRendering) : undefined,
      webmPlayingShareOfRender: browser && webm.every((w) => w.playingShareOfRender !== null) ? round(median(webm.map((w) => w.playingShareOfRender!)), 3) : null,
      webmFirstByteMs: Math.round(median(webm.map((w) => w.ttfbMs))),
      webmTotalMs: Math.round(median(webm.map((w) => w.totalMs))),
      webmFirstByteShare: round(share, 3),
    };
  });
}

/**
 * Two API processes (one Redis, CongoDB as their MongoDB, one storage directory) and two
 * nodes; 100 viewers of one fresh parallel-2 token at once, 50 on each API. Each API's VmRSS
 * is sampled every 100 ms while they watch; the render record says how many runs there were.
 */
async function manyViewers(work: string, viewers = 100) {
  return withFarm('two-apis', work, async (farm) => {
    await farm.startRedis();
    await farm.startCongo();
    const [a, b] = [await farm.startApi('api-a'), await farm.startApi('api-b')];
    await farm.startNode();
    await farm.startNode();
    // Warm: both APIs have served a stream (code paths, buffers), the nodes have the rasters.
    const warm = await farm.token(uniqueName('Warm viewers'), 2);
    await Promise.all([fetchTimed(`${a.url}/v2/get/${warm}.mp4`), fetchTimed(`${b.url}/v2/get/${warm}.mp4`)]);
    await farm.settled(warm, 'mp4');
    await sleep(500);
    const idleRss = [rssMb(a.proc.pid), rssMb(b.proc.pid)];

    const token = await farm.token(uniqueName('Viewers'), 2, a);
    const peak = [...idleRss];
    const sampler = setInterval(() => {
      [a, b].forEach((api, i) => (peak[i] = Math.max(peak[i], rssMb(api.proc.pid) || 0)));
    }, 100);
    let settled: Array<PromiseSettledResult<Answer>>;
    const start = process.hrtime.bigint();
    try {
      settled = await Promise.allSettled(Array.from({ length: viewers }, (_, i) => request(`${(i % 2 === 0 ? a : b).url}/v2/get/${token}.mp4`)));
    } finally {
      clearInterval(sampler);
    }
    const results = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failures = settled.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error).message ?? r.reason).slice(0, 200)] : []));
    const wallMs = ms(start);
    await farm.settled(token, 'mp4');

    const store = await MongoDocumentStore.create(farm.mongoUri!, { serverSelectionTimeoutMS: 5000 });
    let attempts: number | undefined;
    let renderDocs = 0;
    try {
      const doc = await store.collection<{ _id: string; renders: Record<string, string> }>('tokens').findOne({ _id: token });
      const key = doc?.renders.mp4;
      const render = key ? await store.collection<{ _id: string; attempts: number }>('renders').findOne({ _id: key }) : null;
      attempts = render?.attempts;
      renderDocs = key ? await store.collection('renders').countDocuments({ _id: key }) : 0;
    } finally {
      await store.close();
    }
    const sizes = new Set(results.filter((r) => r.status === 200).map((r) => r.bytes));
    const complete = results.filter((r) => r.status === 200 && r.bytes > 0 && sizes.size === 1).length;
    process.stderr.write(
      `farm: ${viewers} viewers over two APIs: ${complete} complete streams (sizes ${[...sizes].join(', ')}), in ${wallMs.toFixed(0)} ms; render attempts ${attempts}; peak RSS API a ${peak[0].toFixed(0)} MB, API b ${peak[1].toFixed(0)} MB (idle ${idleRss.map((r) => r.toFixed(0)).join(' / ')} MB)\n`,
    );
    return {
      viewers,
      completeStreams: complete,
      failures: failures.slice(0, 5),
      bytesPerStream: [...sizes],
      wallMs: Math.round(wallMs),
      renderAttempts: attempts ?? null,
      renderRecords: renderDocs,
      idleRssMb: idleRss.map((r) => round(r, 1)),
      peakRssMb: peak.map((r) => round(r, 1)),
    };
  });
}

export interface FarmRow {
  figure: string;
  value: string;
  target: string;
  met: boolean | null;
}

export async function benchFarm(runs: number) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-bench-farm-'));
  const mark = loadMark();
  let kit: BrowserKit | undefined;
  let browser: Browser | undefined;
  let noBrowser: string | undefined;
  try {
    kit = await import('./browser');
    if (!kit.chromiumPath()) throw new Error('Chromium is not installed (apt-get install chromium, or set CHROMIUM_PATH)');
    browser = await kit.launchChromium();
  } catch (err) {
    noBrowser = (err as Error).message;
    kit = undefined;
    process.stderr.write(`farm bench: no browser figures: ${noBrowser}\n`);
  }
  try {
    const one = await onePerNode(work, runs, kit, browser);
    const two = await twoPinnedNodes(work, runs, kit, browser);
    const many = await manyViewers(work);
    return { runs, one, two, many, noBrowser, load: foreignLoad(mark, loadMark()) };
  } finally {
    await browser?.close().catch(() => undefined);
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export type FarmResult = Awaited<ReturnType<typeof benchFarm>>;

/** The farm's figures, one row each: what was measured, against which target. */
export function farmRows(r: FarmResult): FarmRow[] {
  const rows: FarmRow[] = [];
  const s = (x: number) => `${(x / 1000).toFixed(2)} s`;
  rows.push({ figure: '1. parallel 1 via a node: /v2/get first byte', value: `${r.one.firstByteMs} ms`, target: '≤ 0.5 s', met: r.one.firstByteMs <= 500 });
  if (r.one.chromium && r.two.medianMp4PlayingMs !== undefined) {
    rows.push(
      { figure: '2. Chromium first picture, parallel 1, one node', value: s(r.one.chromium.medianPlayingMs), target: '≤ 1.5 s', met: r.one.chromium.medianPlayingMs <= 1500 },
      { figure: '2. Chromium first picture, parallel 2, 2 pinned nodes', value: s(r.two.medianMp4PlayingMs), target: '≤ 1.5 s', met: r.two.medianMp4PlayingMs <= 1500 },
      { figure: '2. Chromium first picture, stored file (reference)', value: s(r.one.chromium.medianStoredMs), target: '–', met: null },
      { figure: '3. webm parallel 2: plays before the render is done', value: `${r.two.webmPlayedWhileRendering ? 'yes' : 'no'}${r.two.webmPlayingShareOfRender !== null ? ` (playing at ${(r.two.webmPlayingShareOfRender * 100).toFixed(0)} % of the render)` : ''}`,
        target: 'yes', met: !!r.two.webmPlayedWhileRendering },
    );
  } else {
    rows.push({ figure: '2./3. Chromium figures', value: `not measured: ${r.noBrowser}`, target: '', met: null });
  }
  rows.push(
    { figure: '3. webm parallel 2: first byte / render time', value: `${(r.two.webmFirstByteShare * 100).toFixed(1)} % (${r.two.webmFirstByteMs} of ${r.two.webmTotalMs} ms)`, target: '≤ 10 %', met: r.two.webmFirstByteShare <= 0.1 },
    { figure: '4. parallel 1 via a node / in-process render', value: `${r.one.viaNodeOverDirect}× (${r.one.viaNodeMedianMs} / ${r.one.directMedianMs} ms)`, target: '≤ 1.05×', met: r.one.viaNodeOverDirect <= 1.05 },
    {
      figure: '6. API CPU / node CPU, parallel-1 render',
      value: `${r.one.apiOverNodeCpu} (${median(r.one.apiCpuSeconds)} / ${median(r.one.nodeCpuSeconds)} s)`,
      target: '≤ 0.1',
      met: r.one.apiOverNodeCpu <= 0.1,
    },
    { figure: '7. 100 viewers, 2 APIs: renders (attempts)', value: `${r.many.renderAttempts} (${r.many.completeStreams}/${r.many.viewers} streams complete)`, target: '= 1', met: r.many.renderAttempts === 1 && r.many.completeStreams === r.many.viewers },
    { figure: '7. 100 viewers, 2 APIs: peak RSS per API', value: `${r.many.peakRssMb.map((x) => x.toFixed(0)).join(' / ')} MB`, target: '≤ 300 MB each', met: r.many.peakRssMb.every((x) => x <= 300) },
  );
  return rows;
}
