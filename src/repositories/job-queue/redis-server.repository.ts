import { Injectable, Logger } from '@nestjs/common';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawnTied } from '../child-processes';
import { findProcesses, identityOf, isRunning, type ProcessIdentity, selfIdentity, waitGone } from '../processes.repository';

/** Who runs the private redis-server of a data dir: written next to its socket. */
interface RedisLock {
  redis: ProcessIdentity;
  owner: ProcessIdentity;
}

/**
 * A private `redis-server` (from the PATH) for the embedded default: unix socket only (no
 * port), files under the data dir, append-only persistence so queued work survives a restart.
 *
 * - It dies with the process that started it, even when that one is SIGKILLed (parent-death
 *   signal TERM: Redis flushes its append-only file on TERM), and sits in a process group of
 *   its own, so a Ctrl-C to the service stops the service first and Redis after it.
 * - One data dir never gets two: `redis-server.lock` names the server and its owner. A live
 *   owner means another Montage process uses this data dir (start-up refuses); a server whose
 *   owner died (a crash on a system without parent-death signals) is stopped before a new
 *   one starts, as is any redis-server found serving this socket.
 * - If it stops while the service runs, it is started again (with backoff); clients reconnect
 *   to the same socket.
 */
@Injectable()
export class RedisServerRepository {
  private readonly logger = new Logger('Redis');
  private child?: ChildProcess;
  private stopping = false;
  private restartTimer?: NodeJS.Timeout;
  private restarts = 0;
  private dir?: string;

  async start(dir: string): Promise<string> {
    this.dir = dir;
    this.stopping = false;
    await fs.mkdir(dir, { recursive: true });
    const socket = path.join(dir, 'redis.sock');
    await this.takeOver(dir, socket);
    // Taken before the server starts, and exclusively: of two processes starting at once, one wins.
    try {
      await fs.writeFile(this.lockFile(dir), JSON.stringify({ owner: await selfIdentity() }), { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      throw new Error(`another Montage process is starting the private redis-server of ${dir} right now; stop it first, or give this one its own MONTAGE_DATA_DIR`);
    }
    await this.launch(dir, socket);
    return socket;
  }

  /** Shutting down: a redis-server that stops now is not started again. */
  holdRestarts(): void {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
  }

  /** The server's pid, for tests and logs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private lockFile(dir: string): string {
    return path.join(dir, 'redis-server.lock');
  }

  /** Refuses a data dir another live Montage process owns; stops a server a crashed one left behind. */
  private async takeOver(dir: string, socket: string): Promise<void> {
    const lock = await fs
      .readFile(this.lockFile(dir), 'utf8')
      .then((text) => JSON.parse(text) as RedisLock)
      .catch(() => undefined);
    const self = await selfIdentity();
    if (lock?.owner && lock.owner.pid !== self.pid && (await isRunning(lock.owner))) {
      throw new Error(
        `another Montage process (pid ${lock.owner.pid}) runs the private redis-server of ${dir}; stop it first, or give this one its own MONTAGE_DATA_DIR`,
      );
    }
    const orphans = new Set<number>();
    if (lock?.redis && (await isRunning(lock.redis))) orphans.add(lock.redis.pid);
    // Redis renames its process to `redis-server unixsocket:<path>`; before that it shows its arguments.
    const serves = (cmd: string) => cmd.includes('redis-server') && (cmd.includes(`unixsocket:${socket}`) || (cmd.includes('--unixsocket') && cmd.includes(socket)));
    for (const pid of await findProcesses(serves)) orphans.add(pid);
    for (const pid of orphans) {
      const identity = await identityOf(pid);
      if (!identity) continue;
      this.logger.warn(`stopping a redis-server (pid ${pid}) that a Montage process which no longer runs left on ${dir}`);
      process.kill(pid, 'SIGTERM');
      if (!(await waitGone(identity, 5000))) {
        process.kill(pid, 'SIGKILL');
        await waitGone(identity, 2000);
      }
    }
    // A server answering on the socket that no process of this machine's view owns: another
    // Montage in another container (another pid namespace) on the same data dir. Not ours to stop.
    if (await answersPing(socket)) {
      throw new Error(
        `a redis-server already answers on ${socket} and no process here owns it (another Montage, in another container on the same data dir?); stop it first, or give this one its own MONTAGE_DATA_DIR`,
      );
    }
    await fs.rm(this.lockFile(dir), { force: true });
  }

  private async launch(dir: string, socket: string): Promise<void> {
    await fs.rm(socket, { force: true });
    const args = ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--dir', dir, '--appendonly', 'yes', '--save', '', '--daemonize', 'no', '--loglevel', 'warning'];
    const child = spawnTied('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'], deathSignal: 'TERM' });
    this.child = child;
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    const exited = new Promise<never>((_, reject) => {
      child.once('error', (err) => reject(new Error(`cannot start redis-server (install it: apt-get install redis-server): ${err.message}`)));
      child.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before it was ready: ${output.trim().slice(-500)}`)));
    });
    exited.catch(() => undefined); // raced below
    const ready = (async () => {
      for (let i = 0; i < 200; i++) {
        if (await fs.stat(socket).then(() => true, () => false)) return;
        if (child.exitCode !== null) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`redis-server did not open ${socket} within 5 s`);
    })();
    try {
      await Promise.race([ready, exited]);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
    if (child.exitCode !== null) await exited;
    child.removeAllListeners('exit');
    child.removeAllListeners('error');
    child.on('error', () => undefined);
    const lock: RedisLock = { redis: (await identityOf(child.pid!)) ?? { pid: child.pid! }, owner: await selfIdentity() };
    await fs.writeFile(this.lockFile(dir), JSON.stringify(lock)); // ours already: now naming the server too
    child.once('exit', (code, signal) => {
      if (this.child !== child || this.stopping) return;
      this.logger.error(`redis-server stopped unexpectedly (${signal ?? `exit ${code}`}); starting it again`);
      this.scheduleRestart(dir, socket);
    });
  }

  private scheduleRestart(dir: string, socket: string): void {
    const delay = Math.min(10_000, 250 * 2 ** this.restarts++);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.launch(dir, socket).then(
        () => {
          this.logger.log('redis-server is running again');
          setTimeout(() => (this.restarts = 0), 60_000).unref();
        },
        (err: Error) => {
          this.logger.error(`redis-server did not start again: ${err.message}`);
          this.scheduleRestart(dir, socket);
        },
      );
    }, delay);
    this.restartTimer.unref();
  }

  /** SIGTERM (Redis flushes), then SIGKILL after `graceMs`; the lock goes with it. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const done = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([done, new Promise((r) => setTimeout(r, graceMs))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    if (this.dir) await fs.rm(this.lockFile(this.dir), { force: true }).catch(() => undefined);
  }
}

/** Whether a Redis answers PING on a unix socket within half a second. */
function answersPing(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.createConnection(socket);
    let reply = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      conn.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    conn.on('connect', () => conn.write('PING\r\n'));
    conn.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    conn.on('error', () => done(false));
  });
}
