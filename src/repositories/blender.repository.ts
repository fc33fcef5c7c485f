import { Inject, Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { renderFailed } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { blenderErrorSummary, type BlenderJsonTag, type BlenderLogEvent, LineSplitter, parseBlenderLine } from '../engines/blender/blender-log';
import { blenderFailure } from './blender-failure';
import { signalable } from './processes.repository';
import { cannotExecute, runTied, spawnTied } from './child-processes';
import { ServingBlender } from './serving-blender';
import { sandboxedArgs } from '../farm/farm-sandbox';

/** This host, in frame folders' names: nodes on several hosts may share a data dir. */
const HOST = createHash('sha1').update(os.hostname()).digest('hex').slice(0, 8);

/**
 * What Blender (and a template's scene.py, which is the template's own code) sees of the
 * environment: what it needs to run and find a GPU, none of Montage's secrets (database URLs,
 * storage keys, MONTAGE_SECRET_KEY).
 */
export function blenderEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const keep = /^(PATH|HOME|USER|LANG|LANGUAGE|LC_[A-Z]+|TZ|TMPDIR|DISPLAY|XDG_RUNTIME_DIR|CUDA_[A-Z_]+|NVIDIA_[A-Z_]+|HIP_[A-Z_]+|ROCR_[A-Z_]+|GPU_[A-Z_]+|OCIO|BLENDER_[A-Z_]+|PYTHONHASHSEED|__EGL_[A-Z_]+|EGL_PLATFORM|MESA_[A-Z_]+|LIBGL_[A-Z_]+)$/;
  return Object.fromEntries(Object.entries(env).filter(([k, v]) => v !== undefined && keep.test(k)));
}

/** A farm Blender's sandbox (where the node runs them in bwrap): its folder, read-write, and what else it reads. */
export interface FarmSandbox {
  workspace: string;
  /** Folders read-only besides the system's and Blender's own (Montage's script). */
  readOnly: string[];
  /** A GPU render: the GPU's device nodes go in too. */
  gpu?: boolean;
}

/** Whether this node's farm Blenders run in bwrap, and why not. */
export interface FarmSandboxState {
  on: boolean;
  reason?: string;
}

export interface BlenderRunOptions {
  signal?: AbortSignal;
  /** A farm job's Blender: in bwrap where the node has it (FARM_SANDBOX). */
  sandbox?: FarmSandbox;
  /** A frame (after the first) that takes longer than this stops the render. */
  frameTimeoutMs: number;
  /** The first frame may also take Blender's start-up and the scene's loading. */
  firstFrameTimeoutMs: number;
  onEvent?: (event: BlenderLogEvent) => void;
}

/** Blender's process: the one place that starts it, reads what it prints and owns its frame files. */
@Injectable()
export class BlenderRepository implements OnModuleDestroy {
  private readonly logger = new Logger('Blender');
  /** Blenders keeping a scene loaded between chunks. */
  private serving: ServingBlender[] = [];
  private idleTimer?: NodeJS.Timeout;

  constructor(@Inject(MONTAGE_CONFIG) private readonly config: MontageConfig) {}

  /** Runs a query (`blenderQueryArgs`) and returns the tagged JSON it printed; undefined when Blender cannot run here. */
  async query(args: string[], tag: BlenderJsonTag, timeoutMs = 60_000, sandbox?: FarmSandbox): Promise<{ value?: unknown; error?: string }> {
    if (!this.config.blender.enabled) return { error: 'Blender is switched off on this machine (BLENDER_ENABLED=0)' };
    let result;
    try {
      const [command, argv] = await this.command(args, sandbox);
      result = await runTied(command, argv, { timeoutMs, env: blenderEnv() });
    } catch (err) {
      return { error: `Blender could not be started (${this.config.blender.path}): ${(err as Error).message}` };
    }
    const lines = result.stdout.toString('utf8').split('\n').concat(result.stderr.split('\n'));
    for (const line of lines) {
      const event = parseBlenderLine(line);
      if (event?.kind === 'json' && event.tag === tag) return { value: event.value };
    }
    if (cannotExecute(result.code, result.stderr)) return { error: `Blender could not be started (${this.config.blender.path})` };
    return { error: result.timedOut ? `Blender did not answer within ${Math.round(timeoutMs / 1000)} s` : blenderErrorSummary(lines) };
  }

  /**
   * Runs a render (`blenderRenderArgs`) and yields each frame's file as Blender saves it.
   * Throws Blender's own error text when it fails, a 400 naming the bindings that do not fit
   * the scene, or a time-out when a frame takes too long. Leaving the loop early kills Blender.
   */
  async *render(args: string[], options: BlenderRunOptions): AsyncGenerator<string> {
    if (options.signal?.aborted) throw renderFailed('render cancelled');
    const [command, argv] = await this.command(args, options.sandbox);
    const child = spawnTied(command, argv, { stdio: ['ignore', 'pipe', 'pipe'], deathSignal: 'KILL', env: blenderEnv() });
    const saved: string[] = [];
    const log: string[] = [];
    const bindingErrors: string[] = [];
    let deviceError: string | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let spawnError: Error | undefined;
    let timedOut = false;
    let wake: (() => void) | undefined;
    const notify = () => {
      wake?.();
      wake = undefined;
    };
    let watchdog: NodeJS.Timeout | undefined;
    const arm = (ms: number) => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, ms);
    };
    arm(options.firstFrameTimeoutMs);
    const onLine = (line: string) => {
      if (line && !line.startsWith('Fra:')) log.push(line.slice(0, 500));
      if (log.length > 200) log.splice(0, log.length - 200);
      const event = parseBlenderLine(line);
      if (!event) return;
      options.onEvent?.(event);
      if (event.kind === 'saved') {
        arm(options.frameTimeoutMs);
        saved.push(event.path);
        notify();
      } else if (event.kind === 'device-error') deviceError = event.message;
      else if (event.kind === 'binding-error') bindingErrors.push(event.binding !== undefined ? `bindings.${event.binding}: ${event.message}` : event.message);
    };
    const out = new LineSplitter();
    const err = new LineSplitter();
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => out.push(chunk).forEach(onLine));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => err.push(chunk).forEach(onLine));
    child.once('error', (e) => {
      spawnError = e;
      notify();
    });
    child.once('close', (code, signal) => {
      [...out.end(), ...err.end()].forEach(onLine);
      clearTimeout(watchdog);
      exit = { code, signal };
      notify();
    });
    const abort = () => child.kill('SIGKILL');
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      for (;;) {
        while (saved.length > 0) yield saved.shift()!;
        if (spawnError || exit) break;
        await new Promise<void>((resolve) => (wake = resolve));
      }
      const failure = blenderFailure({
        command: this.config.blender.path,
        aborted: !!options.signal?.aborted,
        spawnError,
        exit,
        finished: exit?.code === 0,
        timedOut,
        frameTimeoutMs: options.frameTimeoutMs,
        deviceError,
        bindingErrors,
        log,
      });
      if (failure) throw failure;
    } finally {
      clearTimeout(watchdog);
      options.signal?.removeEventListener('abort', abort);
      if (!exit) {
        child.kill('SIGKILL');
        await new Promise((resolve) => child.once('close', resolve));
      }
    }
  }

  /**
   * Whether farm Blenders run in bwrap here (FARM_SANDBOX): off when switched off; else
   * probed once — Blender itself, started in the sandbox a job gets. In auto mode a failed
   * probe leaves the sandbox off (the node says so at start); in bwrap mode it is an error.
   */
  farmSandbox(): Promise<FarmSandboxState> {
    if (this.config.farm.sandbox === 'off') return Promise.resolve({ on: false, reason: 'FARM_SANDBOX=off' });
    this.sandboxProbe ??= this.probeSandbox();
    return this.sandboxProbe;
  }

  private sandboxProbe?: Promise<FarmSandboxState>;

  private async probeSandbox(): Promise<FarmSandboxState> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'montage-sandbox-probe-'));
    try {
      const blender = await resolveCommand(this.config.blender.path);
      if (!blender) return { on: false, reason: `Blender (${this.config.blender.path}) was not found` };
      const result = await runTied('bwrap', sandboxedArgs(blender, ['--factory-startup', '-b', '--version'], { workspace: dir, readOnly: [path.dirname(blender)] }), { timeoutMs: 30_000, env: blenderEnv() });
      if (result.code === 0 && /Blender \d/.test(result.stdout.toString('utf8'))) return { on: true };
      const said = result.stderr.trim().split('\n').filter(Boolean).slice(-2).join(' ').slice(0, 300);
      return { on: false, reason: result.timedOut ? 'Blender did not start in bwrap within 30 s' : `bwrap failed (exit ${result.code ?? result.signal})${said ? `: ${said}` : ''}` };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return { on: false, reason: code === 'ENOENT' ? 'bwrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)' : `bwrap could not be started: ${(err as Error).message}` };
    } finally {
      await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** Blender's command: as configured, or (a farm job where the sandbox is on) Blender inside bwrap. */
  private async command(args: string[], sandbox: FarmSandbox | undefined): Promise<[string, string[]]> {
    if (!sandbox) return [this.config.blender.path, args];
    const state = await this.farmSandbox();
    if (!state.on) {
      if (this.config.farm.sandbox === 'bwrap') throw renderFailed('the farm sandbox (bwrap) does not work on this render node', [], { internal: state.reason });
      return [this.config.blender.path, args];
    }
    const blender = await resolveCommand(this.config.blender.path);
    if (!blender) throw renderFailed(`Blender (${this.config.blender.path}) was not found on this render node`);
    const devices = sandbox.gpu ? await gpuDevices() : [];
    return ['bwrap', sandboxedArgs(blender, args, { workspace: sandbox.workspace, readOnly: [path.dirname(blender), ...sandbox.readOnly], devices })];
  }

  /**
   * Renders a chunk on a Blender that already has this scene loaded (`key`: the scene, its
   * version, bindings and settings), or on a new one started with `serveArgs`; the process
   * stays for the next chunk of the same scene for BLENDER_KEEP_ALIVE_MS.
   */
  async *renderServed(key: string, serveArgs: string[], chunkLine: string, options: BlenderRunOptions): AsyncGenerator<string> {
    let blender = this.serving.find((b) => b.key === key && !b.busy && b.alive);
    if (!blender) {
      this.trimServing();
      blender = new ServingBlender(key, this.config.blender.path, serveArgs, blenderEnv());
      this.serving.push(blender);
    }
    blender.busy = true;
    try {
      yield* blender.render(chunkLine, options);
    } finally {
      if (!blender.alive) this.serving = this.serving.filter((b) => b !== blender);
      this.scheduleIdleClose();
    }
  }

  /** Idle Blenders beyond the node's concurrency go first, oldest first: each holds a scene in memory. */
  private trimServing(): void {
    this.serving = this.serving.filter((b) => b.alive);
    const idle = this.serving.filter((b) => !b.busy).sort((a, b) => a.lastUsed - b.lastUsed);
    while (this.serving.length >= Math.max(1, this.config.concurrency) && idle.length > 0) {
      const oldest = idle.shift()!;
      oldest.close();
      this.serving = this.serving.filter((b) => b !== oldest);
    }
  }

  /** Closes Blenders idle for BLENDER_KEEP_ALIVE_MS; an armed timer is left alone (a busy node does not keep pushing it back). */
  private scheduleIdleClose(): void {
    if (this.idleTimer || this.serving.length === 0) return;
    const idle = this.serving.filter((b) => !b.busy);
    const next = idle.length > 0 ? Math.min(...idle.map((b) => b.lastUsed)) + this.config.blender.keepAliveMs : Date.now() + this.config.blender.keepAliveMs;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      const now = Date.now();
      for (const b of this.serving.filter((s) => !s.busy && now - s.lastUsed >= this.config.blender.keepAliveMs)) b.close();
      this.serving = this.serving.filter((b) => b.alive);
      this.scheduleIdleClose();
    }, Math.max(50, next - Date.now() + 50));
    this.idleTimer.unref();
  }

  onModuleDestroy(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    for (const b of this.serving) b.kill();
    this.serving = [];
  }

  /** A fresh folder for one render's frames, under the node's work area, named after its writer (this process on this host). */
  async framesDir(name: string): Promise<string> {
    await this.removeOrphanFrames();
    await fs.mkdir(this.framesRoot(), { recursive: true });
    // mkdtemp: two renders starting together never share (or wipe) a folder.
    return fs.mkdtemp(path.join(this.framesRoot(), `${name.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 120)}-${process.pid}-${HOST}-`));
  }

  private framesRoot(): string {
    return path.join(this.config.dataDir, 'work', 'blender');
  }

  /** Frame folders of a node of this host that died (SIGKILL, a crash) go with the next render here (a listing of a few names). */
  private async removeOrphanFrames(): Promise<void> {
    const names = await fs.readdir(this.framesRoot()).catch(() => [] as string[]);
    for (const name of names) {
      const m = /-(\d+)-([0-9a-f]{8})-[0-9A-Za-z]+$/.exec(name);
      if (!m || m[2] !== HOST || signalable(Number(m[1]))) continue; // another host's, or a live writer's
      await fs.rm(path.join(this.framesRoot(), name), { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** A saved frame, read once and removed: the encoder has it, the disk does not keep it. */
  async takeFrame(file: string): Promise<Buffer> {
    const data = await fs.readFile(file);
    await fs.rm(file, { force: true });
    return data;
  }

  async removeDir(dir: string): Promise<void> {
    await fs.rm(dir, { recursive: true, force: true }).catch((e: Error) => this.logger.warn(`could not remove ${dir}: ${e.message}`));
  }
}

/** A command's real path: as given when it has a slash, else the first on PATH; undefined when there is none. */
async function resolveCommand(command: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const candidates = command.includes('/') ? [path.resolve(command)] : (env.PATH ?? '/usr/bin:/bin').split(':').filter(Boolean).map((dir) => path.join(dir, command));
  for (const candidate of candidates) {
    try {
      await fs.access(candidate, fs.constants.X_OK);
      return await fs.realpath(candidate);
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The GPUs' device nodes a CUDA/OptiX (NVIDIA) or HIP (AMD) render opens. */
async function gpuDevices(): Promise<string[]> {
  const names = await fs.readdir('/dev').catch(() => [] as string[]);
  return names.filter((n) => /^nvidia/.test(n) || n === 'dri' || n === 'kfd').sort().map((n) => `/dev/${n}`);
}
