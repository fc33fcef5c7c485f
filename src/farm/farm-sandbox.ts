/**
 * The OS-level sandbox of farm Blenders (a project's own .blend, a product's model): bubblewrap
 * (`bwrap`) as data (pure). The scene sees the system read-only, its own folder read-write,
 * nothing else of the node's disk (not the data dir, not storage, not other jobs), and no
 * network. montage_farm.py's checks still refuse files outside the folder: the sandbox is the
 * second wall, for what those checks miss.
 */

/** `FARM_SANDBOX`: auto (bwrap where it works on the node), bwrap (required), off. */
export type FarmSandboxMode = 'auto' | 'bwrap' | 'off';
export const FARM_SANDBOX_MODES: readonly FarmSandboxMode[] = ['auto', 'bwrap', 'off'];

/** What a sandboxed Blender may see of the system, read-only (missing ones are skipped: merged-/usr or not). */
export const SANDBOX_SYSTEM_DIRS = ['/usr', '/lib', '/lib64', '/bin', '/sbin', '/etc'];

export interface SandboxOptions {
  /** The job's folder, read-write (also the working directory). */
  workspace: string;
  /** More folders read-only: Blender's own, Montage's script. */
  readOnly: string[];
  /** GPU device nodes (/dev/nvidia0, /dev/dri, …) for a GPU render: passed through, and /sys read-only for their drivers. */
  devices?: string[];
}

function checked(p: string, what: string): string {
  if (!p.startsWith('/') || p.includes('\0') || p.split('/').some((s) => s === '..' || s === '.')) throw new Error(`the sandbox's ${what} must be an absolute, plain path: ${p}`);
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

/**
 * `bwrap <these> -- <command> <args…>`: a new session, no namespace shared (no network), dying
 * with its parent; tmpfs /tmp and /dev/shm, a private /proc and a minimal /dev, first (later
 * binds go over them: a workspace under /tmp stays visible); the system and `readOnly`
 * read-only; the workspace read-write, last.
 */
export function sandboxedArgs(command: string, args: string[], o: SandboxOptions): string[] {
  const workspace = checked(o.workspace, 'workspace');
  if (workspace === '/' || SANDBOX_SYSTEM_DIRS.includes(workspace)) throw new Error(`the sandbox's workspace cannot be ${workspace}`);
  // A folder already inside a system one (Debian's /usr/bin/blender) is bound with it.
  const readOnly = [...new Set(o.readOnly.map((p) => checked(p, 'read-only folder')))].filter((p) => !SANDBOX_SYSTEM_DIRS.some((dir) => p === dir || p.startsWith(`${dir}/`)));
  const devices = (o.devices ?? []).map((p) => checked(p, 'device'));
  return [
    '--unshare-all',
    '--die-with-parent',
    '--new-session',
    '--tmpfs', '/tmp',
    '--proc', '/proc',
    '--dev', '/dev',
    '--tmpfs', '/dev/shm',
    ...SANDBOX_SYSTEM_DIRS.flatMap((dir) => ['--ro-bind-try', dir, dir]),
    ...readOnly.flatMap((dir) => ['--ro-bind', dir, dir]),
    ...(devices.length > 0 ? ['--ro-bind-try', '/sys', '/sys', ...devices.flatMap((d) => ['--dev-bind-try', d, d])] : []),
    '--bind', workspace, workspace,
    '--chdir', workspace,
    '--setenv', 'TMPDIR', '/tmp',
    '--',
    checked(command, 'command'),
    ...args,
  ];
}
