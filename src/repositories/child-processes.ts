import { type ChildProcess, spawn, type StdioOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Every child process Montage starts (ffmpeg, ffprobe, redis-server) goes through here, so
 * that none outlives the process that started it:
 *
 * - On Linux the child is started through util-linux's `setpriv --pdeathsig`, which sets
 *   PR_SET_PDEATHSIG before exec: the kernel signals the child when its parent dies, even by
 *   SIGKILL. (A child of a process that died between fork and that call is caught by the
 *   start-up checks of the redis-server lock; an encoder finishes its frames and exits.)
 * - The child gets a process group of its own, so a Ctrl-C or a supervisor that signals the
 *   whole group reaches Montage only: Montage decides when its children stop (after the
 *   shutdown grace period), instead of the private Redis vanishing under the API.
 */
export type DeathSignal = 'KILL' | 'TERM';

/** The command that runs `command` so that it gets `signal` when its parent dies (pure, for tests). */
export function tiedCommand(command: string, args: string[], signal: DeathSignal, setpriv: string | undefined): [string, string[]] {
  if (!setpriv) return [command, args];
  return [setpriv, ['--pdeathsig', signal, '--', command, ...args]];
}

let setprivPath: string | undefined | null = null;

/** setpriv on the PATH (Linux, util-linux ≥ 2.33); undefined elsewhere: children are then only killed on a clean exit. */
export function findSetpriv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (setprivPath !== null) return setprivPath;
  setprivPath = undefined;
  if (process.platform === 'linux' && env.MONTAGE_NO_PDEATHSIG !== '1') {
    for (const dir of (env.PATH ?? '/usr/bin:/bin').split(':')) {
      const candidate = path.join(dir || '.', 'setpriv');
      try {
        fs.accessSync(candidate, fs.constants.X_OK);
        setprivPath = candidate;
        break;
      } catch {
        // not in this directory
      }
    }
  }
  return setprivPath;
}

const running = new Set<ChildProcess>();

export interface TiedChildOptions {
  stdio: StdioOptions;
  env?: NodeJS.ProcessEnv;
  /** KILL for encoders; TERM for servers that flush on it (redis-server writes its append-only file). */
  deathSignal: DeathSignal;
}

/** Spawns a child that dies with this process (see above). */
export function spawnTied(command: string, args: string[], options: TiedChildOptions): ChildProcess {
  const [cmd, argv] = tiedCommand(command, args, options.deathSignal, findSetpriv());
  const child = spawn(cmd, argv, { stdio: options.stdio, env: options.env, detached: true });
  running.add(child);
  const forget = () => running.delete(child);
  child.once('exit', forget);
  child.once('error', forget);
  return child;
}

/** setpriv reports a command it cannot run as exit 127 with this line, where spawn would say ENOENT. */
export function cannotExecute(code: number | null, stderr: string): boolean {
  return code === 127 && /setpriv: failed to execute/.test(stderr);
}

/** Children still running, for an exit that cannot wait (a second signal, a missed deadline). */
export function killAllChildren(signal: NodeJS.Signals = 'SIGKILL'): number {
  let killed = 0;
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null && child.kill(signal)) killed++;
  }
  return killed;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
  timedOut: boolean;
}

/** Runs a short command to completion (a probe, a version check), tied to this process, killed after `timeoutMs`. */
export function runTied(command: string, args: string[], options: { timeoutMs: number; maxBuffer?: number; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  const max = options.maxBuffer ?? 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const child = spawnTied(command, args, { stdio: ['ignore', 'pipe', 'pipe'], deathSignal: 'KILL', env: options.env });
    const out: Buffer[] = [];
    let outBytes = 0;
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.stdout!.on('data', (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > max) child.kill('SIGKILL');
      else out.push(chunk);
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-16_384)));
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (cannotExecute(code, stderr)) {
        reject(Object.assign(new Error(`cannot run ${command}`), { code: 'ENOENT' }));
        return;
      }
      resolve({ code, signal, stdout: Buffer.concat(out), stderr, timedOut });
    });
  });
}
