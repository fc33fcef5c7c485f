import { Injectable, Logger } from '@nestjs/common';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/**
 * A private `redis-server` (from the PATH) for the embedded default: unix socket only (no
 * port), files under the data dir, append-only persistence so queued work survives a restart.
 * It lives and dies with the process that started it.
 */
@Injectable()
export class RedisServerRepository {
  private readonly logger = new Logger('Redis');
  private child?: ChildProcess;

  async start(dir: string): Promise<string> {
    await fs.mkdir(dir, { recursive: true });
    const socket = path.join(dir, 'redis.sock');
    await fs.rm(socket, { force: true });
    const args = ['--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--dir', dir, '--appendonly', 'yes', '--save', '', '--daemonize', 'no', '--loglevel', 'warning'];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    const exited = new Promise<never>((_, reject) => {
      child.once('error', (err) => reject(new Error(`cannot start redis-server (install it: apt-get install redis-server): ${err.message}`)));
      child.once('exit', (code) => reject(new Error(`redis-server exited (${code}) before it was ready: ${output.trim().slice(-500)}`)));
    });
    const ready = (async () => {
      for (let i = 0; i < 200; i++) {
        if (await fs.stat(socket).then(() => true, () => false)) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error(`redis-server did not open ${socket} within 5 s`);
    })();
    await Promise.race([ready, exited]);
    child.removeAllListeners('exit');
    child.once('exit', (code, signal) => {
      if (this.child === child) this.logger.error(`redis-server stopped unexpectedly (${signal ?? code})`);
    });
    return socket;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const done = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM'); // redis flushes its append-only file on SIGTERM
    await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}
