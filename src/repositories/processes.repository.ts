import * as fs from 'node:fs/promises';

/**
 * Which processes are alive, told apart from a later process that reused the pid: on Linux
 * a pid together with its start time (field 22 of /proc/<pid>/stat) names one process.
 */
export interface ProcessIdentity {
  pid: number;
  /** Clock ticks since boot when the process started; absent where /proc is not available. */
  startTime?: number;
}

/** `/proc/<pid>/stat` → state and start time; the command name may hold spaces and parentheses. */
export function parseProcStat(stat: string): { state: string; ppid: number; pgid: number; startTime: number } | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = stat.slice(close + 2).split(' ');
  // fields[0] is field 3 (state); field n is fields[n - 3]
  const startTime = Number(fields[22 - 3]);
  if (!fields[0] || !Number.isFinite(startTime)) return undefined;
  return { state: fields[0], ppid: Number(fields[4 - 3]), pgid: Number(fields[5 - 3]), startTime };
}

async function readStat(pid: number) {
  try {
    return parseProcStat(await fs.readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** A process with this pid exists (one of another user's counts too). */
export function signalable(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** This process, for lock files. */
export async function selfIdentity(): Promise<ProcessIdentity> {
  return { pid: process.pid, startTime: (await readStat(process.pid))?.startTime };
}

export async function identityOf(pid: number): Promise<ProcessIdentity | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const stat = await readStat(pid);
  if (stat) return stat.state === 'Z' ? undefined : { pid, startTime: stat.startTime };
  return signalable(pid) && process.platform !== 'linux' ? { pid } : undefined;
}

/** The process is alive and is the one that was recorded (not a zombie, not a reused pid). */
export async function isRunning(identity: ProcessIdentity | undefined): Promise<boolean> {
  if (!identity) return false;
  const now = await identityOf(identity.pid);
  if (!now) return false;
  return identity.startTime === undefined || now.startTime === undefined || identity.startTime === now.startTime;
}

/** argv of a process, joined by spaces ('' when it is gone or unreadable). */
export async function commandLine(pid: number): Promise<string> {
  try {
    return (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** Every process whose command line matches (Linux; empty elsewhere). */
export async function findProcesses(matches: (commandLine: string) => boolean): Promise<number[]> {
  const entries = await fs.readdir('/proc').catch(() => [] as string[]);
  const found: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const cmd = await commandLine(pid);
    if (cmd && matches(cmd) && (await identityOf(pid))) found.push(pid);
  }
  return found;
}

/** Waits until the process is gone, up to `ms`; true when it is. */
export async function waitGone(identity: ProcessIdentity, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!(await isRunning(identity))) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return !(await isRunning(identity));
}
