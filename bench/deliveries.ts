/**
 * The deliveries benchmark (`BENCH_ONLY=deliveries`), issue 10's targets measured with real
 * processes as they are deployed: `node dist/src/main.js` (EMBEDDED_RENDER_NODE=0, the delivery
 * workers in it), `node dist/render-nodes/main.js`, a redis-server of the bench's own, radosgw
 * for S3 (scripts/s3-radosgw), and loopback receivers written here.
 *
 * 1. A batch of BENCH_BATCH_ITEMS (1,000) items of bench/card (640×360, 30 fps, 3 s, each item
 *    with params of its own) on one node with CONCURRENCY=2; a webhook receiver that verifies
 *    every message with `standardwebhooks` and counts a message (webhook-id) once however often
 *    it is retried: items per minute, every key exactly once, the API's peak RSS (VmRSS every
 *    200 ms, VmHWM at the end) < 300 MB.
 * 2. A 200 MiB output uploaded to S3 (radosgw) and to HTTP (a PUT receiver here that hashes the
 *    body and keeps nothing), BENCH_UPLOAD_RUNS (3) times each: RSS growth of the API that runs
 *    the upload (VmRSS every 100 ms, over its idle RSS right before) ≤ 64 MB; the object's size
 *    and sha256 equal the stored file's. The output is seeded: one small render (first uploaded
 *    once to each destination, small: what a driver's first use costs), whose stored file is
 *    then replaced by 200 MiB (its own bytes, then random ones); uploads are tasks of new
 *    tokens with the same movie and params, so they find that file.
 * 3. The API killed (SIGKILL) during an S3 upload that goes through a throttling TCP proxy
 *    (20 MB/s) once more than 30 % is sent; a second API on the same data dir and Redis
 *    finishes it: how long after the kill (the job waits for the dead process's lock to expire
 *    and for BullMQ's stalled checks), one whole object with the right sha256, nothing under
 *    the key before, no multipart upload left in the bucket.
 *
 * BENCH_DELIVERIES=batch,upload,killed picks sub-parts (all by default; `killed` runs the
 * upload setup without the RSS runs). BENCH_BATCH_TIMEOUT_S bounds the batch (default 60 s +
 * 2 s per item); a batch where no item finishes for 3 minutes is reported as stuck. A sub-part
 * that fails is reported as not measured, with its reason, and the others still run.
 * Every process started here is stopped by its pid (and process group) whatever happens, and
 * every wait has a timeout that says what it waited for.
 */
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { cpuSeconds, foreignLoad, loadMark } from './farm';

const root = path.resolve(__dirname, '..', '..');
const API_MAIN = path.join(root, 'dist', 'src', 'main.js');
const NODE_MAIN = path.join(root, 'dist', 'render-nodes', 'main.js');
const TEMPLATES = path.join(root, 'bench', 'templates');
const RGW_SCRIPTS = path.join(root, 'scripts', 's3-radosgw');
const PROJECT = 'bench';
const MOVIE = 'card';

const ITEMS = Math.max(1, Number(process.env.BENCH_BATCH_ITEMS ?? 1000));
const BATCH_TIMEOUT_MS = Number(process.env.BENCH_BATCH_TIMEOUT_S ?? 60 + 2 * ITEMS) * 1000;
/** No item finished for this long: the batch is stuck, say so rather than wait out the timeout. */
const BATCH_STALL_MS = 180_000;
const BIG_BYTES = 200 * 1024 * 1024;
const THROTTLE_BYTES_PER_S = 20 * 1000 * 1000;
const KILL_AT = 0.3;
/** 200 MB uploads of each kind (the RSS peak depends on when the garbage collector runs). */
const UPLOAD_RUNS = Math.max(1, Number(process.env.BENCH_UPLOAD_RUNS ?? 3));
const RSS_TARGET_MB = 300;
const GROWTH_TARGET_MB = 64;
const BUCKET = 'montage-bench';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, digits = 0) => Number(x.toFixed(digits));
const mb = (bytes: number) => bytes / (1024 * 1024);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const errorText = (err: unknown) => ((err as Error)?.message ?? String(err)).split('\n').slice(0, 3).join(' ').slice(0, 400);
const log = (line: string) => process.stderr.write(`deliveries: ${line}\n`);

/** An error `until` does not wait out: the thing waited for will not come. */
class Fatal extends Error {}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000, everyMs = 100): Promise<T> {
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
  throw new Error(`deliveries bench: timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${last ? ` (last error: ${errorText(last)})` : ''}`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// /proc

/** VmRSS and VmHWM of a process in MiB; NaN once it is gone. */
function memoryOf(pid: number): { rssMb: number; hwmMb: number } {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return { rssMb: NaN, hwmMb: NaN };
  }
}

/** VmRSS of one process every `everyMs` (200 ms): the peak, and every sample. */
class RssSampler {
  readonly samples: number[] = [];
  peakMb = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number, everyMs = 200) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample(): void {
    const { rssMb } = memoryOf(this.pid);
    if (Number.isNaN(rssMb)) return;
    this.samples.push(rssMb);
    this.peakMb = Math.max(this.peakMb, rssMb);
  }

  stop(): { peakMb: number; samples: number } {
    clearInterval(this.timer);
    this.sample();
    return { peakMb: this.peakMb, samples: this.samples.length };
  }
}

/** The RSS of an idle process: the median of a few samples, after a pause. */
async function idleRss(pid: number, settleMs = 1500): Promise<number> {
  await sleep(settleMs);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(memoryOf(pid).rssMb);
    await sleep(200);
  }
  return median(samples);
}

// ---------------------------------------------------------------------------------------------
// Processes

interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  exited: Promise<void>;
  running(): boolean;
  tail(chars?: number): string;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

/** Every process a setup starts, each in a group of its own, so each is stopped (pid and group) whatever happens. */
class Processes {
  private readonly all: Proc[] = [];
  /** radosgw directories: their daemons' pid files, for the synchronous kill on the way out. */
  readonly rgwDirs: string[] = [];
  private readonly onExit = () => this.killAllNow();

  constructor(private readonly logDir: string) {
    fs.mkdirSync(logDir, { recursive: true });
    process.once('exit', this.onExit);
  }

  start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): Proc {
    const logFile = path.join(this.logDir, `${name}.log`);
    const fd = fs.openSync(logFile, 'a');
    const child = spawn(command, args, { env, detached: true, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    if (!child.pid) throw new Error(`deliveries bench: could not start ${name} (${command})`);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const proc: Proc = {
      name,
      child,
      pid: child.pid,
      exited,
      running: () => child.exitCode === null && child.signalCode === null,
      tail: (chars = 2000) => {
        try {
          return fs.readFileSync(logFile, 'utf8').slice(-chars);
        } catch {
          return '';
        }
      },
    };
    this.all.push(proc);
    return proc;
  }

  /** SIGTERM, then SIGKILL to it and its group after `graceMs`. */
  async stop(proc: Proc, graceMs = 5000): Promise<void> {
    if (proc.running()) {
      signal(proc.pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([proc.exited, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    signal(-proc.pid, 'SIGKILL');
    if (proc.running()) {
      signal(proc.pid, 'SIGKILL');
      await proc.exited;
    }
  }

  /** SIGKILL to a process and its group, now (what the kill test does to an API). */
  async kill(proc: Proc): Promise<void> {
    signal(-proc.pid, 'SIGKILL');
    signal(proc.pid, 'SIGKILL');
    await proc.exited;
  }

  /** Nodes first, then APIs, then Redis; radosgw last. */
  async stopAll(): Promise<void> {
    const order = (p: Proc) => (p.name.startsWith('node') ? 0 : p.name.startsWith('api') ? 1 : 2);
    const procs = [...this.all].sort((a, b) => order(a) - order(b));
    for (const group of [0, 1, 2]) await Promise.all(procs.filter((p) => order(p) === group).map((p) => this.stop(p)));
    for (const dir of this.rgwDirs) await promisify(execFile)('bash', [path.join(RGW_SCRIPTS, 'stop.sh'), dir], { timeout: 60_000 }).catch(() => undefined);
    for (const pid of this.rgwPids()) signal(pid, 'SIGKILL');
    process.removeListener('exit', this.onExit);
  }

  private rgwPids(): number[] {
    return this.rgwDirs.flatMap((dir) =>
      ['client.rgw', 'osd.0', 'mon.a'].flatMap((name) => {
        try {
          return [Number(fs.readFileSync(path.join(dir, 'run', `${name}.pid`), 'utf8').trim())].filter((p) => p > 0);
        } catch {
          return [];
        }
      }),
    );
  }

  /** On the way out of the bench (an exception past every finally): SIGKILL, synchronously. */
  private killAllNow(): void {
    for (const p of this.all) {
      signal(-p.pid, 'SIGKILL');
      signal(p.pid, 'SIGKILL');
    }
    for (const pid of this.rgwPids()) signal(pid, 'SIGKILL');
  }
}

/** Settings other parts of the bench leave in process.env, and those given here explicitly. */
const OWN_SETTINGS = ['MONTAGE_DATA_DIR', 'MONTAGE_TEMPLATES_DIR', 'EMBEDDED_RENDER_NODE', 'REDIS_URL', 'MONGODB_URI', 'STORAGE_URL', 'CONCURRENCY', 'PORT'];

function envWith(settings: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of OWN_SETTINGS) delete env[name];
  Object.assign(env, { MONTAGE_TEMPLATES_DIR: TEMPLATES, SHUTDOWN_GRACE_MS: '2000' });
  for (const [k, v] of Object.entries(settings)) if (v !== undefined) env[k] = v;
  return env;
}

// ---------------------------------------------------------------------------------------------
// HTTP

interface Answer {
  status: number;
  body: Buffer;
}

/** One request on a connection of its own (no keep-alive), with a timeout. */
function request(url: string, opts: { method?: string; body?: unknown; headers?: Record<string, string>; timeoutMs?: number; discard?: boolean } = {}): Promise<Answer> {
  const data = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: opts.method ?? 'GET',
        agent: false,
        timeout: opts.timeoutMs ?? 30_000,
        headers: { ...(data ? { 'Content-Type': 'application/json', 'Content-Length': String(data.length) } : {}), ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => {
          if (!opts.discard) chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('aborted', () => reject(new Error(`${opts.method ?? 'GET'} ${url}: the response was cut off`)));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${opts.method ?? 'GET'} ${url}: no answer within ${opts.timeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

async function json<T>(url: string, opts: Parameters<typeof request>[1] = {}, expect = [200]): Promise<T> {
  const res = await request(url, opts);
  if (!expect.includes(res.status)) throw new Error(`${opts.method ?? 'GET'} ${url} answered ${res.status}: ${res.body.toString('utf8').slice(0, 500)}`);
  return JSON.parse(res.body.toString('utf8')) as T;
}

interface WebhookSeen {
  id: string;
  headers: Record<string, string>;
  body: string;
  /** Requests with this webhook-id (a retried message arrives more than once). */
  arrivals: number;
  /** A retry whose body differed from the first arrival's. */
  bodyChanged: boolean;
  verified?: boolean;
  verifyError?: string;
  firstAt: number;
  payload?: { type: string; data: { uuid?: string; output?: Array<{ key: string; public_url?: string; error?: string }> } };
}

/** A loopback webhook receiver: records every request by webhook-id and verifies it with `standardwebhooks`. */
class WebhookSink {
  readonly messages = new Map<string, WebhookSeen>();
  requests = 0;
  malformed = 0;
  private secret?: string;
  private readonly server: http.Server;
  url = '';

  private constructor() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests++;
        const body = Buffer.concat(chunks).toString('utf8');
        const header = (name: string) => String(req.headers[name] ?? '');
        const id = header('webhook-id');
        if (!id) {
          this.malformed++;
          res.writeHead(400).end();
          return;
        }
        const headers = { 'webhook-id': id, 'webhook-timestamp': header('webhook-timestamp'), 'webhook-signature': header('webhook-signature') };
        const seen = this.messages.get(id);
        if (seen) {
          seen.arrivals++;
          if (seen.body !== body) seen.bodyChanged = true;
        } else {
          let payload: WebhookSeen['payload'];
          try {
            payload = JSON.parse(body) as WebhookSeen['payload'];
          } catch {
            this.malformed++;
          }
          const message: WebhookSeen = { id, headers, body, arrivals: 1, bodyChanged: false, firstAt: Date.now(), payload };
          this.messages.set(id, message);
          if (this.secret) this.verify(message);
        }
        res.writeHead(204).end();
      });
    });
  }

  static async start(): Promise<WebhookSink> {
    const sink = new WebhookSink();
    await new Promise<void>((resolve) => sink.server.listen(0, '127.0.0.1', resolve));
    sink.url = `http://127.0.0.1:${(sink.server.address() as net.AddressInfo).port}/hook`;
    return sink;
  }

  /** The batch's secret (known once POST answers): what came before it is verified now, the rest as it arrives. */
  setSecret(secret: string): void {
    this.secret = secret;
    for (const m of this.messages.values()) if (m.verified === undefined) this.verify(m);
  }

  private verify(m: WebhookSeen): void {
    try {
      new Webhook(this.secret!).verify(m.body, m.headers);
      m.verified = true;
    } catch (err) {
      m.verified = false;
      m.verifyError = errorText(err);
    }
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A PUT receiver that hashes each body as it streams in and keeps none of it. */
class HashingSink {
  readonly files = new Map<string, { bytes: number; sha256: string; complete: boolean }>();
  private readonly server: http.Server;
  url = '';

  private constructor() {
    this.server = http.createServer((req, res) => {
      const where = new URL(req.url ?? '/', 'http://x').pathname;
      if (req.method !== 'PUT') {
        res.writeHead(405).end();
        return;
      }
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      req.on('end', () => {
        this.files.set(where, { bytes, sha256: hash.digest('hex'), complete: true });
        res.writeHead(201, { location: where }).end();
      });
      req.on('aborted', () => this.files.set(where, { bytes, sha256: '', complete: false }));
    });
  }

  static async start(): Promise<HashingSink> {
    const sink = new HashingSink();
    await new Promise<void>((resolve) => sink.server.listen(0, '127.0.0.1', resolve));
    sink.url = `http://127.0.0.1:${(sink.server.address() as net.AddressInfo).port}`;
    return sink;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A loopback TCP proxy that passes client → server bytes at `bytesPerSecond` (all connections
 * together) and server → client bytes as they come: a slow uplink to S3.
 */
class ThrottlingProxy {
  private nextFree = 0;
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;
  port = 0;

  private constructor(private readonly target: { host: string; port: number }, private readonly bytesPerSecond: number) {
    this.server = net.createServer((client) => this.relay(client));
  }

  static async start(target: { host: string; port: number }, bytesPerSecond: number): Promise<ThrottlingProxy> {
    const proxy = new ThrottlingProxy(target, bytesPerSecond);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    proxy.port = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  private relay(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    this.sockets.add(client).add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', close);
    upstream.on('error', close);
    upstream.on('close', close);
    upstream.pipe(client);
    let chain = Promise.resolve();
    client.on('data', (chunk: Buffer) => {
      client.pause();
      const now = Date.now();
      this.nextFree = Math.max(now, this.nextFree) + (chunk.length / this.bytesPerSecond) * 1000;
      const delay = this.nextFree - now;
      chain = chain
        .then(() => sleep(delay))
        .then(
          () =>
            new Promise<void>((resolve) => {
              if (upstream.destroyed) return resolve();
              if (upstream.write(chunk)) resolve();
              else upstream.once('drain', () => resolve());
            }),
        )
        .then(() => {
          if (!client.destroyed) client.resume();
        });
    });
    client.on('end', () => void chain.then(() => upstream.end()));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------
// A setup: Redis, an API, a node (and radosgw for the uploads)

interface Api {
  proc: Proc;
  url: string;
}

class Setup {
  readonly procs: Processes;
  readonly storage: string;
  readonly apiData: string;
  readonly nodeData: string;
  redisUrl = '';
  key = '';
  api?: Api;
  readonly nodes: Proc[] = [];
  private apis = 0;

  constructor(readonly dir: string, private readonly apiEnv: Record<string, string> = {}) {
    this.procs = new Processes(path.join(dir, 'logs'));
    this.storage = path.join(dir, 'storage');
    this.apiData = path.join(dir, 'api-data');
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

  /** An API process on the setup's data dir (a second one after a kill takes the same dir). */
  async startApi(): Promise<Api> {
    const port = await freePort();
    const name = `api-${++this.apis}`;
    const proc = this.procs.start(
      name,
      process.execPath,
      [API_MAIN],
      envWith({
        PORT: String(port),
        MONTAGE_DATA_DIR: this.apiData,
        EMBEDDED_RENDER_NODE: '0',
        REDIS_URL: this.redisUrl,
        STORAGE_URL: this.storage,
        DELIVERY_ALLOW_PRIVATE: '1',
        ...this.apiEnv,
      }),
    );
    const url = `http://127.0.0.1:${port}`;
    await until(`${name} to be ready`, async () => {
      if (!proc.running()) throw new Fatal(`${name} exited: ${proc.tail()}`);
      if (!proc.tail(200_000).includes('Montage listening on')) return undefined;
      return (await request(`${url}/health/ready`, { timeoutMs: 5000 })).status === 200 ? true : undefined;
    }, 90_000);
    this.key = fs.readFileSync(path.join(this.apiData, `${PROJECT}-api-key`), 'utf8').trim();
    this.api = { proc, url };
    return this.api;
  }

  /** The API stopped (SIGTERM) and a fresh one started on the same data dir. */
  async restartApi(): Promise<Api> {
    if (this.api) await this.procs.stop(this.api.proc);
    return this.startApi();
  }

  async startNode(concurrency: number): Promise<Proc> {
    const name = `node-${this.nodes.length}`;
    const proc = this.procs.start(name, process.execPath, [NODE_MAIN], envWith({ REDIS_URL: this.redisUrl, STORAGE_URL: this.storage, MONTAGE_DATA_DIR: this.nodeData, CONCURRENCY: String(concurrency) }));
    this.nodes.push(proc);
    await until(`${name} to join`, async () => {
      if (!proc.running()) throw new Fatal(`${name} exited: ${proc.tail()}`);
      const { nodes } = await json<{ nodes: Array<{ pid: number }> }>(`${this.api!.url}/v2/nodes`);
      return nodes.some((n) => n.pid === proc.pid) ? true : undefined;
    }, 60_000);
    return proc;
  }

  headers(): Record<string, string> {
    return { 'X-Api-Key': this.key };
  }

  async token(body: Record<string, unknown>): Promise<{ token: string; urls: Record<string, string>; uploads?: Array<{ id: string }> }> {
    return json(`${this.api!.url}/v2/render/${PROJECT}`, { method: 'POST', headers: this.headers(), body });
  }

  async progress(token: string): Promise<Progress> {
    return json<Progress>(`${this.api!.url}/v2/progress/${token}`, { timeoutMs: 10_000 });
  }

  logs(): string {
    return [...(this.api ? [this.api.proc] : []), ...this.nodes].map((p) => `--- ${p.name} (pid ${p.pid}) ---\n${p.tail(3000)}`).join('\n');
  }

  async stop(): Promise<void> {
    await this.procs.stopAll();
  }
}

interface UploadView {
  id: string;
  status: string;
  bytesSent: number;
  size?: number;
  attempts: number;
  error?: string;
  result?: { url?: string };
}

interface Progress {
  status: string;
  formats: Record<string, { status: string; bytes: number }>;
  error?: string;
  uploads?: UploadView[];
}

// ---------------------------------------------------------------------------------------------
// 1. The batch

async function benchBatch(work: string) {
  const setup = new Setup(fs.mkdtempSync(path.join(work, 'batch-')));
  const hooks = await WebhookSink.start();
  let sampler: RssSampler | undefined;
  try {
    await setup.startRedis();
    const api = await setup.startApi();
    const node = await setup.startNode(2);
    // Warm: fonts, rasters of the fixed layers, the node's first ffmpeg; then the idle API.
    const warm = await setup.token({ movie: MOVIE, params: { name: 'Warm-up' } });
    const got = await request(warm.urls.mp4, { discard: true, timeoutMs: 120_000 });
    if (got.status !== 200) throw new Error(`the warm-up render answered ${got.status}`);
    const idleMb = await idleRss(api.proc.pid);

    const requests = Array.from({ length: ITEMS }, (_, i) => ({ key: `item-${String(i).padStart(5, '0')}`, params: { name: `Person ${i} ${randomBytes(3).toString('hex')}` } }));
    const expected = new Set(requests.map((r) => r.key));
    sampler = new RssSampler(api.proc.pid, 200);
    const cpuBefore = { api: cpuSeconds(api.proc.pid), node: cpuSeconds(node.pid), mark: loadMark() };
    const start = Date.now();
    const created = await json<{ uuid: string; total: number; queued: number; failed: unknown[]; webhook_secret?: string }>(
      `${api.url}/v2/batch/${PROJECT}`,
      { method: 'POST', headers: setup.headers(), body: { movie: MOVIE, requests, formats: ['mp4'], webhook_url: hooks.url }, timeoutMs: 120_000 },
      [201],
    );
    const postMs = Date.now() - start;
    if (!created.webhook_secret) throw new Error('the batch answer has no webhook_secret');
    hooks.setSecret(created.webhook_secret);
    log(`batch ${created.uuid}: ${created.total} items, ${created.queued} queued, ${created.failed.length} refused (POST took ${postMs} ms)`);

    const outputs = () => [...hooks.messages.values()].filter((m) => m.payload?.type === 'batch.output' && m.payload.data.uuid === created.uuid);
    const keysNow = () => new Set(outputs().flatMap((m) => (m.payload!.data.output ?? []).map((o) => o.key)));
    let lastFinished = -1;
    let lastChange = Date.now();
    let lastReport = 0;
    let status: { status: string; counts: { queued: number; done: number; failed: number; sent: number } } | undefined;
    const deadline = start + BATCH_TIMEOUT_MS;
    let lastKeyAt = 0;
    let seenKeys = 0;
    /** When GET /v2/batch first said every item was finished (to within its 10 s polling). */
    let allFinishedAt = 0;
    for (;;) {
      const keys = keysNow();
      if (keys.size > seenKeys) {
        seenKeys = keys.size;
        lastKeyAt = Date.now();
      }
      if (Date.now() - lastReport >= 10_000 || keys.size >= expected.size) {
        lastReport = Date.now();
        status = await json(`${api.url}/v2/batch/${created.uuid}?limit=1`, { headers: setup.headers(), timeoutMs: 30_000 });
        const finished = status!.counts.done + status!.counts.failed;
        if (!allFinishedAt && finished + created.failed.length >= ITEMS) allFinishedAt = Date.now();
        if (finished !== lastFinished) {
          lastFinished = finished;
          lastChange = Date.now();
        }
        log(
          `batch after ${((Date.now() - start) / 1000).toFixed(0)} s: ${status!.counts.done} done, ${status!.counts.failed} failed, ${status!.counts.sent} sent; ${keys.size} keys received in ${outputs().length} messages; API RSS ${memoryOf(api.proc.pid).rssMb.toFixed(0)} MB (peak ${sampler.peakMb.toFixed(0)})`,
        );
        if (keys.size >= expected.size && status!.status === 'completed') break;
      }
      if (!api.proc.running()) throw new Error(`the API exited during the batch: ${api.proc.tail()}`);
      if (Date.now() - lastChange > BATCH_STALL_MS) throw new Error(`the batch is stuck: no item finished for ${BATCH_STALL_MS / 1000} s (${lastFinished}/${ITEMS} finished, ${keys.size} keys received)`);
      if (Date.now() > deadline) {
        log(`batch: timed out after ${BATCH_TIMEOUT_MS / 1000} s (BENCH_BATCH_TIMEOUT_S); reporting what arrived`);
        break;
      }
      await sleep(250);
    }
    const timedOut = Date.now() > deadline;
    // Late or repeated messages would still come now.
    await sleep(5000);
    const peak = sampler.stop();
    const { hwmMb } = memoryOf(api.proc.pid);
    const cpu = { api: cpuSeconds(api.proc.pid) - cpuBefore.api, node: cpuSeconds(node.pid) - cpuBefore.node };
    // The API and the node still run: their CPU is this bench's own, not other processes'.
    const markNow = loadMark();
    const machineTotal = markNow.total - cpuBefore.mark.total;
    const othersCpu = Math.max(0, markNow.busy - cpuBefore.mark.busy - (markNow.own - cpuBefore.mark.own) - cpu.api - cpu.node);
    const seconds = ((lastKeyAt || Date.now()) - start) / 1000;

    // Per key: the messages (webhook-ids, each counted once however often it was retried) that carried it.
    const byKey = new Map<string, string[]>();
    const failedItems: Array<{ key: string; error?: string }> = [];
    for (const m of outputs()) {
      for (const o of m.payload!.data.output ?? []) {
        byKey.set(o.key, [...(byKey.get(o.key) ?? []), m.id]);
        if (o.error || !o.public_url) failedItems.push({ key: o.key, error: o.error });
      }
    }
    const duplicates = [...byKey.entries()].filter(([, ids]) => ids.length > 1).map(([k]) => k);
    const unexpected = [...byKey.keys()].filter((k) => !expected.has(k));
    const missing = [...expected].filter((k) => !byKey.has(k));
    const all = outputs();
    const unverified = all.filter((m) => m.verified !== true);
    const arrivals = all.map((m) => m.firstAt).sort((x, y) => x - y);
    const keysBy = (t: number) => all.filter((m) => m.firstAt <= t).reduce((n, m) => n + (m.payload!.data.output?.length ?? 0), 0);
    const result = {
      items: ITEMS,
      movie: `${PROJECT}/${MOVIE}: 640×360, 30 fps, 3 s, mp4; distinct params per item`,
      nodes: '1 render node, CONCURRENCY=2',
      webhookGroup: `BATCH_WEBHOOK_SIZE ${process.env.BATCH_WEBHOOK_SIZE ?? 50}, BATCH_WEBHOOK_DELAY_MS ${process.env.BATCH_WEBHOOK_DELAY_MS ?? 5000}`,
      postMs,
      seconds: round(seconds, 1),
      itemsPerMinute: round((byKey.size / Math.max(seconds, 1e-3)) * 60, 1),
      keysExpected: expected.size,
      keysReceived: [...byKey.keys()].filter((k) => expected.has(k)).length,
      duplicates: duplicates.length,
      duplicateKeys: duplicates.slice(0, 10),
      unexpectedKeys: unexpected.slice(0, 10),
      missing: missing.length,
      missingKeys: missing.slice(0, 10),
      failedItems: failedItems.length,
      failedExamples: failedItems.slice(0, 3),
      webhookMessages: all.length,
      webhookCalls: hooks.requests,
      retriedMessages: all.filter((m) => m.arrivals > 1).length,
      retriesWithAnotherBody: all.filter((m) => m.bodyChanged).length,
      unverifiedMessages: unverified.length,
      verifyErrors: unverified.slice(0, 3).map((m) => m.verifyError ?? 'not verified (no secret)'),
      largestGroup: Math.max(0, ...all.map((m) => m.payload!.data.output?.length ?? 0)),
      /** Results are meant to go out as items finish: when the first and the median message came, against when every item was finished. */
      firstMessageAfterS: arrivals.length ? round((arrivals[0] - start) / 1000, 1) : null,
      medianMessageAfterS: arrivals.length ? round((median(arrivals) - start) / 1000, 1) : null,
      allItemsFinishedAfterS: allFinishedAt ? round((allFinishedAt - start) / 1000, 1) : null,
      keysAtHalfTime: keysBy(start + (seconds * 1000) / 2),
      batchStatus: status?.status ?? 'unknown',
      counts: status?.counts,
      timedOut,
      /** CPU seconds during the batch (the node's with its ffmpeg children), and how much of the machine others used meanwhile. */
      apiCpuSeconds: round(cpu.api, 1),
      nodeCpuSeconds: round(cpu.node, 1),
      otherProcessesCpuShare: round(othersCpu / Math.max(machineTotal, 1e-9), 3),
      apiIdleRssMb: round(idleMb, 1),
      apiPeakRssMb: round(peak.peakMb, 1),
      apiHwmMb: round(hwmMb, 1),
      rssSamples: peak.samples,
    };
    log(`batch: ${result.keysReceived}/${result.keysExpected} keys in ${result.seconds} s (${result.itemsPerMinute} items/min), ${result.duplicates} duplicates, ${result.missing} missing; API peak RSS ${result.apiPeakRssMb} MB, VmHWM ${result.apiHwmMb} MB`);
    return result;
  } catch (err) {
    sampler?.stop();
    log(`batch failed; what the processes printed:\n${setup.logs()}`);
    throw err;
  } finally {
    await setup.stop();
    await hooks.close();
  }
}

// ---------------------------------------------------------------------------------------------
// 2. and 3. A 200 MiB output to S3 and HTTP; the API killed mid-upload

interface Rgw {
  dir: string;
  port: number;
  endpoint: string;
}

async function startRadosgw(setup: Setup): Promise<Rgw> {
  for (const bin of ['radosgw', 'ceph-mon', 'ceph-osd', 'ceph']) {
    await promisify(execFile)('sh', ['-c', `command -v ${bin}`]).catch(() => {
      throw new Fatal(`${bin} is missing: the upload figures need radosgw (apt-get install ceph-mon ceph-osd radosgw ceph-common)`);
    });
  }
  let lastError = '';
  for (let attempt = 0; attempt < 2; attempt++) {
    const dir = fs.mkdtempSync(path.join(setup.dir, 'rgw-'));
    setup.procs.rgwDirs.push(dir);
    const port = await freePort();
    let monPort = await freePort();
    while (monPort === port) monPort = await freePort();
    try {
      await promisify(execFile)('bash', [path.join(RGW_SCRIPTS, 'start.sh'), dir, String(port), String(monPort)], { timeout: 150_000 });
      return { dir, port, endpoint: `http://127.0.0.1:${port}` };
    } catch (err) {
      lastError = `${errorText(err)} ${fs.existsSync(path.join(dir, 'log', 'rgw.log')) ? fs.readFileSync(path.join(dir, 'log', 'rgw.log'), 'utf8').slice(-1000) : ''}`;
      await promisify(execFile)('bash', [path.join(RGW_SCRIPTS, 'stop.sh'), dir], { timeout: 60_000 }).catch(() => undefined);
    }
  }
  throw new Error(`radosgw did not start: ${lastError}`);
}

function s3Client(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'TESTKEY', secretAccessKey: 'TESTSECRET' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

async function sha256Of(stream: Readable): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** The object under `key`: its size and sha256 as S3 serves it, and how many objects the key (as a prefix) lists. */
async function s3Object(s3: S3Client, key: string) {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: key }));
  const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
  const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  const { sha256, bytes } = await sha256Of(got.Body as Readable);
  return { objectsUnderKey: (listed.Contents ?? []).length, size: head.ContentLength ?? -1, streamedBytes: bytes, sha256 };
}

async function multipartUploads(s3: S3Client): Promise<number> {
  const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
  return (listed.Uploads ?? []).length;
}

/** Until upload `index` of a token is done or failed (a failure is thrown, with its reason). */
async function uploadFinished(setup: Setup, token: string, timeoutMs: number, onPoll?: (u: UploadView) => void): Promise<UploadView> {
  return until(`the upload of ${token} to finish`, async () => {
    if (!setup.api!.proc.running()) throw new Fatal(`the API exited during the upload: ${setup.api!.proc.tail()}`);
    const u = (await setup.progress(token)).uploads?.[0];
    if (!u) throw new Fatal(`progress of ${token} shows no upload`);
    onPoll?.(u);
    if (u.status === 'failed') throw new Fatal(`the upload failed: ${u.error ?? 'no reason given'}`);
    return u.status === 'done' ? u : undefined;
  }, timeoutMs, 200);
}

interface Seeded {
  params: Record<string, string>;
  file: string;
  size: number;
  sha256: string;
}

/** One small render (its stored file: the one mp4 that was not in storage before). */
async function renderSmall(setup: Setup): Promise<Seeded> {
  const outputs = path.join(setup.storage, 'outputs');
  const stored = () => (fs.existsSync(outputs) ? fs.readdirSync(outputs).filter((f) => f.endsWith('.mp4') && !f.startsWith('.')) : []);
  const before = new Set(stored());
  const params = { name: `Upload ${randomBytes(4).toString('hex')}` };
  const { token, urls } = await setup.token({ movie: MOVIE, params });
  const got = await request(urls.mp4, { discard: true, timeoutMs: 120_000 });
  if (got.status !== 200) throw new Error(`the seed render answered ${got.status}`);
  await until('the seed output to be stored', async () => ((await setup.progress(token)).formats.mp4?.status === 'done' ? true : undefined), 60_000, 200);
  const files = stored().filter((f) => !before.has(f));
  if (files.length !== 1) throw new Error(`expected one new stored mp4 in ${outputs}, found ${files.length}: ${files.join(', ')}`);
  const file = path.join(outputs, files[0]);
  const real = fs.readFileSync(file);
  return { params, file, size: real.length, sha256: createHash('sha256').update(real).digest('hex') };
}

/** The small output's stored file replaced by 200 MiB: its own bytes, then random ones (renamed into place, as storage does). */
function inflate(small: Seeded): Seeded {
  const { file, params } = small;
  const real = fs.readFileSync(file);
  const staging = path.join(path.dirname(file), `.${path.basename(file)}.seed.part`);
  const hash = createHash('sha256');
  const fd = fs.openSync(staging, 'w');
  try {
    const write = (b: Buffer) => {
      fs.writeSync(fd, b);
      hash.update(b);
    };
    write(real);
    for (let left = BIG_BYTES - real.length; left > 0; ) {
      const chunk = randomBytes(Math.min(left, 1024 * 1024));
      write(chunk);
      left -= chunk.length;
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(staging, file);
  return { params, file, size: fs.statSync(file).size, sha256: hash.digest('hex') };
}

/** A new token with the seeded params and one async upload task: the API's RSS from idle to its peak while it uploads. */
async function measureUpload(setup: Setup, seeded: Seeded, destination: Record<string, unknown>, check: () => Promise<{ size: number; sha256: string; objectsUnderKey?: number }>) {
  const pid = setup.api!.proc.pid;
  const baselineMb = await idleRss(pid, 2000);
  const sampler = new RssSampler(pid, 100);
  const start = Date.now();
  let upload: UploadView;
  try {
    const { token } = await setup.token({ movie: MOVIE, params: seeded.params, upload: { async: true, destination } });
    upload = await uploadFinished(setup, token, 300_000);
  } finally {
    sampler.stop();
  }
  const seconds = (Date.now() - start) / 1000;
  const got = await check();
  const growthMb = sampler.peakMb - baselineMb;
  return {
    bytes: seeded.size,
    seconds: round(seconds, 2),
    MBps: round(mb(seeded.size) / seconds, 1),
    attempts: upload.attempts,
    url: upload.result?.url,
    baselineRssMb: round(baselineMb, 1),
    peakRssMb: round(sampler.peakMb, 1),
    growthMb: round(growthMb, 1),
    rssSamples: sampler.samples.length,
    receivedBytes: got.size,
    sizeMatches: got.size === seeded.size,
    sha256Matches: got.sha256 === seeded.sha256,
    ...(got.objectsUnderKey !== undefined ? { objectsUnderKey: got.objectsUnderKey } : {}),
  };
}

type UploadRun = Awaited<ReturnType<typeof measureUpload>>;

/**
 * Runs of one kind: the worst growth of a run over the idle RSS just before it (the figure
 * judged), and the peak of all runs over the idle RSS before the first (what the process kept
 * from one upload to the next, shown beside it).
 */
function summarizeUploads(runs: UploadRun[]) {
  const worstRunGrowthMb = Math.max(...runs.map((r) => r.growthMb));
  const overFirstIdleMb = round(Math.max(...runs.map((r) => r.peakRssMb)) - runs[0].baselineRssMb, 1);
  return {
    runs: runs.length,
    bytes: runs[0].bytes,
    /** The figure judged: the worst growth of one upload over the idle RSS right before it. */
    growthMb: worstRunGrowthMb,
    worstRunGrowthMb,
    overFirstIdleMb,
    medianRunGrowthMb: median(runs.map((r) => r.growthMb)),
    firstIdleRssMb: runs[0].baselineRssMb,
    peakRssMb: Math.max(...runs.map((r) => r.peakRssMb)),
    medianSeconds: median(runs.map((r) => r.seconds)),
    medianMBps: median(runs.map((r) => r.MBps)),
    allMatch: runs.every((r) => r.sizeMatches && r.sha256Matches && (r.objectsUnderKey ?? 1) === 1 && r.attempts === 1),
    each: runs,
  };
}

async function benchUploads(work: string, parts: { upload: boolean; killed: boolean }) {
  // Uploads need no delay between retries here; the job lock stays at its default (30 s).
  const setup = new Setup(fs.mkdtempSync(path.join(work, 'uploads-')), { UPLOAD_BACKOFF_MS: '1000' });
  const sink = await HashingSink.start();
  let proxy: ThrottlingProxy | undefined;
  let s3: S3Client | undefined;
  const out: {
    bytes?: number;
    seeded?: string;
    firstSmallS3?: Awaited<ReturnType<typeof measureUpload>>;
    firstSmallHttp?: Awaited<ReturnType<typeof measureUpload>>;
    s3?: ReturnType<typeof summarizeUploads> | { error: string };
    http?: ReturnType<typeof summarizeUploads> | { error: string };
    killed?: Awaited<ReturnType<typeof killDuringUpload>> | { error: string };
  } = {};
  try {
    await setup.startRedis();
    const rgw = await startRadosgw(setup);
    s3 = s3Client(rgw.endpoint);
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await setup.startApi();
    await setup.startNode(1);
    // Two renders: one stays small (each fresh API's first upload), one becomes the 200 MiB output.
    const small = await renderSmall(setup);
    const seeded = inflate(await renderSmall(setup));
    out.bytes = seeded.size;
    out.seeded = `one render of ${MOVIE}, its stored file replaced by ${mb(seeded.size).toFixed(0)} MiB (the render's bytes, then random bytes)`;
    log(`seeded a ${mb(seeded.size).toFixed(0)} MiB output (sha256 ${seeded.sha256.slice(0, 12)}…)`);
    const s3Destination = (key: string, host: string) => ({ type: 's3', bucket: BUCKET, filename: key, aws_access_key_id: 'TESTKEY', aws_secret_access_key: 'TESTSECRET', s3host: host, secure: false });
    const httpCheck = (where: string) => async () => {
      const f = sink.files.get(where);
      if (!f?.complete) throw new Error(`the HTTP receiver has no complete body at ${where}`);
      return { size: f.bytes, sha256: f.sha256 };
    };
    if (parts.upload) {
      // Each kind in an API process of its own (what one kind's uploads leave behind in the heap
      // would flatter the other's figure): first a small upload (what loading and starting the
      // driver costs, apart from the size of the output), then the 200 MiB ones, several times
      // (the peak depends on when the garbage collector runs).
      const runs = async (kind: 's3' | 'http') => {
        await setup.restartApi();
        const destinationFor = (key: string) => (kind === 's3' ? s3Destination(key, `127.0.0.1:${rgw.port}`) : { type: 'http', url: `${sink.url}/${key}`, method: 'PUT' });
        const checkFor = (key: string) => (kind === 's3' ? () => s3Object(s3!, key) : httpCheck(`/${key}`));
        const smallKey = `small/${kind}-${Date.now()}.mp4`;
        const first = await measureUpload(setup, small, destinationFor(smallKey), checkFor(smallKey));
        if (kind === 's3') out.firstSmallS3 = first;
        else out.firstSmallHttp = first;
        log(`${setup.api!.proc.name}: first ${kind} upload (${small.size} bytes): ${JSON.stringify(first)}`);
        const measured: Array<Awaited<ReturnType<typeof measureUpload>>> = [];
        for (let i = 0; i < UPLOAD_RUNS; i++) {
          const key = `big/${kind}-${Date.now()}-${i}.mp4`;
          const m = await measureUpload(setup, seeded, destinationFor(key), checkFor(key));
          if (kind === 's3') await s3!.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key })).catch(() => undefined); // radosgw keeps objects in memory
          log(`${kind} run ${i + 1}/${UPLOAD_RUNS}: ${JSON.stringify(m)}`);
          measured.push(m);
        }
        return summarizeUploads(measured);
      };
      for (const kind of ['s3', 'http'] as const) {
        try {
          out[kind] = await runs(kind);
        } catch (err) {
          out[kind] = { error: errorText(err) };
          log(`${kind} upload failed: ${errorText(err)}\n${setup.logs()}`);
        }
      }
    }

    if (parts.killed) {
      try {
        proxy = await ThrottlingProxy.start({ host: '127.0.0.1', port: rgw.port }, THROTTLE_BYTES_PER_S);
        out.killed = await killDuringUpload(setup, seeded, s3, (key) => s3Destination(key, `127.0.0.1:${proxy!.port}`));
        log(`killed: ${JSON.stringify(out.killed)}`);
      } catch (err) {
        out.killed = { error: errorText(err) };
        log(`the kill test failed: ${out.killed.error}\n${setup.logs()}`);
      }
    }
    return out;
  } catch (err) {
    log(`the upload setup failed; what the processes printed:\n${setup.logs()}`);
    throw err;
  } finally {
    s3?.destroy();
    await proxy?.close();
    await setup.stop();
    await sink.close();
  }
}

/**
 * API A uploads through the throttling proxy; SIGKILL once bytesSent > 30 %; API B (same data
 * dir, Redis and storage) takes the job when its lock has expired and uploads it again.
 */
async function killDuringUpload(setup: Setup, seeded: Seeded, s3: S3Client, destination: (key: string) => Record<string, unknown>) {
  const key = `big/killed-${Date.now()}.mp4`;
  const a = setup.api!;
  const { token } = await setup.token({ movie: MOVIE, params: seeded.params, upload: { async: true, destination: destination(key) } });
  const posted = Date.now();
  const before = await until(`the upload through the proxy to pass ${KILL_AT * 100} %`, async () => {
    const u = (await setup.progress(token)).uploads?.[0];
    if (!u) throw new Fatal('progress shows no upload');
    if (u.status === 'done' || u.status === 'failed') throw new Fatal(`the upload was ${u.status} before it could be killed (${u.error ?? ''}); the proxy did not slow it enough`);
    return u.bytesSent > KILL_AT * seeded.size ? u : undefined;
  }, 120_000, 100);
  await setup.procs.kill(a.proc);
  const killedAt = Date.now();
  log(`killed ${a.proc.name} (pid ${a.proc.pid}) with ${mb(before.bytesSent).toFixed(0)} of ${mb(seeded.size).toFixed(0)} MiB sent, ${((killedAt - posted) / 1000).toFixed(1)} s after the POST`);
  const orphansAfterKill = await multipartUploads(s3);
  const objectsAfterKill = ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: key }))).Contents ?? []).length;

  const b = await setup.startApi();
  const readyAt = Date.now();
  let restartedAt = 0;
  const done = await uploadFinished(setup, token, 240_000, (u) => {
    if (!restartedAt && u.attempts > before.attempts) restartedAt = Date.now();
  });
  const doneAt = Date.now();
  const got = await s3Object(s3, key);
  const leftover = await multipartUploads(s3);
  await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key })).catch(() => undefined);
  return {
    throttleMBps: THROTTLE_BYTES_PER_S / 1e6,
    killedProcess: `${a.proc.name} pid ${a.proc.pid}, SIGKILL`,
    killedAtBytes: before.bytesSent,
    killedAtShare: round(before.bytesSent / seeded.size, 3),
    multipartUploadsRightAfterKill: orphansAfterKill,
    /** Under the key right after the kill: nothing (a multipart upload shows no object until it is completed). */
    objectsRightAfterKill: objectsAfterKill,
    restartMs: readyAt - killedAt,
    /** API B ready → its attempt started: the dead process's lock expiring, then BullMQ's stalled checks (each stalledInterval, 30 s) finding the job. */
    takeOverMs: restartedAt ? restartedAt - readyAt : null,
    secondAttemptMs: restartedAt ? doneAt - restartedAt : null,
    restartToDoneMs: doneAt - readyAt,
    killToDoneMs: doneAt - killedAt,
    secondApi: `${b.proc.name} pid ${b.proc.pid}`,
    status: done.status,
    attempts: done.attempts,
    objectsUnderKey: got.objectsUnderKey,
    objectBytes: got.size,
    sizeMatches: got.size === seeded.size,
    sha256Matches: got.sha256 === seeded.sha256,
    multipartUploadsLeft: leftover,
  };
}

// ---------------------------------------------------------------------------------------------
// The part

export async function benchDeliveries() {
  const only = (process.env.BENCH_DELIVERIES ?? 'batch,upload,killed').split(',').map((p) => p.trim());
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-bench-deliveries-'));
  const mark = loadMark();
  const started = Date.now();
  try {
    let batch: Awaited<ReturnType<typeof benchBatch>> | { error: string } | undefined;
    if (only.includes('batch')) {
      try {
        batch = await benchBatch(work);
      } catch (err) {
        batch = { error: errorText(err) };
      }
    }
    let uploads: Awaited<ReturnType<typeof benchUploads>> | { error: string } | undefined;
    if (only.includes('upload') || only.includes('killed')) {
      try {
        uploads = await benchUploads(work, { upload: only.includes('upload'), killed: only.includes('killed') });
      } catch (err) {
        uploads = { error: errorText(err) };
      }
    }
    return { batch, uploads, seconds: round((Date.now() - started) / 1000, 1), load: foreignLoad(mark, loadMark()) };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export type DeliveriesResult = Awaited<ReturnType<typeof benchDeliveries>>;

interface Row {
  figure: string;
  value: string;
  target: string;
  met: boolean | null;
}

/** The figures, one row each: measured, against which target. */
export function deliveryRows(r: DeliveriesResult): Row[] {
  const rows: Row[] = [];
  const failed = (figure: string, target: string, error: string): Row => ({ figure, value: `not measured: ${error}`, target, met: false });
  if (r.batch) {
    const n = `9. batch of ${ITEMS.toLocaleString('en')}`;
    if ('error' in r.batch) {
      rows.push(failed(`${n}: every key once; API RSS`, 'every key exactly once; < 300 MB', r.batch.error));
    } else {
      const b = r.batch;
      rows.push(
        {
          figure: `${n}: items per minute`,
          value: `${b.timedOut ? `TIMED OUT (BENCH_BATCH_TIMEOUT_S), ${b.counts ? b.counts.done + b.counts.failed : '?'}/${b.items} finished: ` : ''}${b.itemsPerMinute} /min (${b.keysReceived} items in ${b.seconds} s; ${b.nodes}; CPU: API ${b.apiCpuSeconds} s, node ${b.nodeCpuSeconds} s, other processes ${(b.otherProcessesCpuShare * 100).toFixed(0)} % of the machine)`,
          target: '–',
          met: null,
        },
        {
          figure: `${n}: results as items finish`,
          value: `first webhook message ${b.firstMessageAfterS ?? '–'} s after the POST, median ${b.medianMessageAfterS ?? '–'} s; every item finished by ${b.allItemsFinishedAfterS ?? '?'} s (polled every 10 s); ${b.keysAtHalfTime} keys by half time`,
          target: 'groups sent as items finish',
          met: null,
        },
        {
          figure: `${n}: keys in webhook items`,
          value: `${b.keysReceived}/${b.keysExpected} received, ${b.duplicates} twice, ${b.missing} missing, ${b.unexpectedKeys.length} unknown; ${b.webhookMessages} messages (${b.webhookCalls} calls), ${b.unverifiedMessages} not verified`,
          target: 'every key exactly once',
          met: b.keysReceived === b.keysExpected && b.duplicates === 0 && b.missing === 0 && b.unexpectedKeys.length === 0 && b.unverifiedMessages === 0 && b.failedItems === 0,
        },
        { figure: `${n}: API peak RSS`, value: `${b.apiPeakRssMb.toFixed(0)} MB (VmHWM ${b.apiHwmMb.toFixed(0)} MB, idle ${b.apiIdleRssMb.toFixed(0)} MB)`, target: `< ${RSS_TARGET_MB} MB`, met: Math.max(b.apiPeakRssMb, b.apiHwmMb) < RSS_TARGET_MB },
      );
    }
  }
  if (r.uploads) {
    if ('error' in r.uploads) {
      rows.push(failed('11./12. uploads of a 200 MB output', '', r.uploads.error));
    } else {
      const u = r.uploads;
      for (const [name, m, first] of [['S3 (radosgw)', u.s3, u.firstSmallS3], ['HTTP PUT', u.http, u.firstSmallHttp]] as const) {
        if (!m) continue;
        const cold = first ? `; before it, the process's first ${name.split(' ')[0]} upload (${(first.bytes / 1024).toFixed(0)} KiB) grew it ${first.growthMb.toFixed(1)} MB` : '';
        const figure = `11. 200 MB output (seeded) to ${name}: API RSS growth`;
        if ('error' in m) rows.push(failed(figure, `≤ ${GROWTH_TARGET_MB} MB`, m.error));
        else
          rows.push({
            figure,
            value: `${m.growthMb.toFixed(1)} MB (worst of ${m.runs} runs: ${m.each.map((r) => r.growthMb.toFixed(0)).join(', ')} MB over the idle RSS before each; ${m.firstIdleRssMb.toFixed(0)} → ${m.peakRssMb.toFixed(0)} MB over all ${m.runs}), ${m.medianSeconds} s at ${m.medianMBps} MB/s; size and sha256 ${m.allMatch ? 'match, 1 attempt each' : 'DIFFER (or retried)'}${cold}`,
            target: `≤ ${GROWTH_TARGET_MB} MB`,
            met: m.growthMb <= GROWTH_TARGET_MB && m.allMatch,
          });
      }
      if (u.killed) {
        const figure = `12. API SIGKILLed at > 30 % of an S3 upload (${THROTTLE_BYTES_PER_S / 1e6} MB/s)`;
        const target = 'completes after restart; 1 whole object; no multipart upload left';
        if ('error' in u.killed) rows.push(failed(figure, target, u.killed.error));
        else {
          const k = u.killed;
          const s = (ms: number | null) => (ms === null ? '?' : `${(ms / 1000).toFixed(1)} s`);
          rows.push({
            figure,
            value: `done ${s(k.killToDoneMs)} after the kill (API B up in ${s(k.restartMs)}, job taken over after ${s(k.takeOverMs)}, new upload ${s(k.secondAttemptMs)}); objects under the key: ${k.objectsRightAfterKill} after the kill, ${k.objectsUnderKey} at the end, size ${k.sizeMatches ? 'ok' : 'WRONG'}, sha256 ${k.sha256Matches ? 'ok' : 'WRONG'}; multipart uploads ${k.multipartUploadsRightAfterKill} after the kill, ${k.multipartUploadsLeft} at the end`,
            target,
            met: k.status === 'done' && k.objectsRightAfterKill === 0 && k.objectsUnderKey === 1 && k.sizeMatches && k.sha256Matches && k.multipartUploadsLeft === 0,
          });
        }
      }
    }
  }
  return rows;
}
