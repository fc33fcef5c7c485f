import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { FIXTURE_TEMPLATES } from './render-context';

/**
 * Real processes for the fault tests: the API and render nodes as `npm start` and
 * `npm run render-node` run them (the built dist/), redis-server, and what is left of them in
 * /proc once they are killed.
 */
const ROOT = path.join(__dirname, '..', '..');
export const API_MAIN = path.join(ROOT, 'dist', 'src', 'main.js');
export const NODE_MAIN = path.join(ROOT, 'dist', 'render-nodes', 'main.js');

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves when it has exited, with its code or signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
}

/**
 * Spawns a process in a process group of its own (as a shell starts a job), so a test can
 * signal the whole group the way Ctrl-C or a supervisor does.
 */
export function spawnProc(command: string, args: string[], env: Record<string, string | undefined>): Proc {
  const child = spawn(command, args, { env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString('utf8')).slice(-200_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, pid: child.pid!, output: () => out, exited, running: () => child.exitCode === null && child.signalCode === null };
}

export interface ApiProc extends Proc {
  url: string;
  dataDir: string;
  key(): string;
}

/** Waits for `fn` to return something other than undefined, polling every 50 ms, up to `ms`. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

/** The API (`node dist/src/main.js`) on a free port; resolves once /health/live answers. */
export async function startApiProcess(env: Record<string, string | undefined> = {}, dataDir?: string): Promise<ApiProc> {
  const dir = dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'montage-fault-api-'));
  const port = await freePort();
  const proc = spawnProc(process.execPath, [API_MAIN], {
    ...process.env,
    PORT: String(port),
    MONTAGE_TEMPLATES_DIR: FIXTURE_TEMPLATES,
    MONTAGE_DATA_DIR: dir,
    MEDIA_ALLOW_PRIVATE: '0',
    SHUTDOWN_GRACE_MS: '2000',
    ...env,
  });
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    'the API to listen',
    async () => {
      if (!proc.running()) throw new Error(`the API exited: ${proc.output().slice(-2000)}`);
      if (!/Montage listening on/.test(proc.output())) return undefined;
      const res = await fetch(`${url}/health/live`);
      return res.status === 200 ? true : undefined;
    },
    60_000,
  ).catch((err) => {
    process.kill(-proc.pid, 'SIGKILL');
    throw err;
  });
  return { ...proc, url, dataDir: dir, key: () => fs.readFileSync(path.join(dir, 't-api-key'), 'utf8').trim() };
}

/** A render node (`node dist/render-nodes/main.js`) that shares the data dir and templates of `dataDir`. */
export function startNodeProcess(dataDir: string, redisUrl: string, env: Record<string, string | undefined> = {}): Proc {
  return spawnProc(process.execPath, [NODE_MAIN], {
    ...process.env,
    REDIS_URL: redisUrl,
    MONTAGE_TEMPLATES_DIR: FIXTURE_TEMPLATES,
    MONTAGE_DATA_DIR: dataDir,
    SEGMENT_LOCK_MS: '2000',
    STALLED_CHECK_MS: '1000',
    SHUTDOWN_GRACE_MS: '2000',
    ...env,
  });
}

export interface RedisProc {
  url: string;
  pid(): number;
  /** SIGKILL: the server is gone, as when its machine dies. */
  kill(): Promise<void>;
  /** Starts it again on the same socket and files. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A redis-server of the test's own (unix socket, append-only files in `dir`), as an operator would run for REDIS_URL. */
export async function startRedis(dir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-fault-redis-'))): Promise<RedisProc> {
  const socket = path.join(dir, 'redis.sock');
  let proc: Proc;
  const launch = async () => {
    fs.rmSync(socket, { force: true });
    proc = spawnProc('redis-server', ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--dir', dir, '--appendonly', 'yes', '--save', '', '--loglevel', 'warning'], process.env);
    await eventually('redis-server to listen', () => (fs.existsSync(socket) ? true : undefined), 10_000);
  };
  await launch();
  return {
    url: `unix://${socket}`,
    pid: () => proc.pid,
    kill: async () => {
      if (proc.running()) process.kill(proc.pid, 'SIGKILL');
      await proc.exited;
    },
    restart: async () => {
      if (!proc.running()) await launch();
    },
    stop: async () => {
      if (proc.running()) {
        process.kill(proc.pid, 'SIGTERM');
        await proc.exited;
      }
    },
  };
}

/** /proc/<pid>/stat, or undefined when the process is gone. */
function stat(pid: number): { state: string; ppid: number; pgid: number } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], ppid: Number(fields[1]), pgid: Number(fields[2]) };
  } catch {
    return undefined;
  }
}

/** Alive: in /proc and not a zombie (a dead child nobody reaped is dead all the same). */
export function alive(pid: number): boolean {
  const s = stat(pid);
  return !!s && s.state !== 'Z';
}

function allPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number);
}

/** Every live process below `pid` (children, their children, …). */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of allPids()) {
    const s = stat(p);
    if (!s || s.state === 'Z') continue;
    children.set(s.ppid, [...(children.get(s.ppid) ?? []), p]);
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

/** Live processes in process group `pgid` (orphans keep their group when their parent dies). */
export function groupMembers(pgid: number): number[] {
  return allPids().filter((p) => {
    const s = stat(p);
    return !!s && s.state !== 'Z' && s.pgid === pgid;
  });
}

export function commandOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** Processes whose command line contains `text` (a socket path, a data dir). */
export function processesWith(text: string): number[] {
  return allPids().filter((p) => p !== process.pid && alive(p) && commandOf(p).includes(text));
}

/** Resolves with how long the process took to exit, or rejects after `ms`. */
export async function exitWithin(proc: Proc, ms: number, since = Date.now()): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    proc.exited,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`still running ${ms} ms later:\n${proc.output().slice(-3000)}`)), ms))),
  ]);
  clearTimeout(timer);
  return { ...result, ms: Date.now() - since };
}

/** Kills a process group and whatever is left of it; for afterAll. */
export function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone already
  }
}
