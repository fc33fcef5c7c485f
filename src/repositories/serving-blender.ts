import type { ChildProcess } from 'node:child_process';
import { renderFailed } from '../common/errors';
import { type BlenderLogEvent, LineSplitter, parseBlenderLine } from '../engines/blender/blender-log';
import { blenderFailure } from './blender-failure';
import { spawnTied } from './child-processes';

export interface ChunkOptions {
  signal?: AbortSignal;
  frameTimeoutMs: number;
  firstFrameTimeoutMs: number;
  onEvent?: (event: BlenderLogEvent) => void;
}

/**
 * One Blender process that keeps a scene loaded and renders the chunks it is sent on stdin
 * (`montage_scene.py` in mode "serve"), so the next chunk of the same scene on this node does
 * not pay for Blender's start-up and the scene's loading again. One chunk at a time; a failed,
 * timed-out or aborted chunk kills it (its state is then unknown).
 */
export class ServingBlender {
  busy = false;
  lastUsed = Date.now();
  private readonly child: ChildProcess;
  private exit?: { code: number | null; signal: NodeJS.Signals | null };
  private spawnError?: Error;
  private device?: BlenderLogEvent;
  private readonly log: string[] = [];
  private readonly bindingErrors: string[] = [];
  private deviceError?: string;
  private listener?: (event: BlenderLogEvent) => void;
  private wake?: () => void;
  private served = 0;

  constructor(
    readonly key: string,
    private readonly command: string,
    args: string[],
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawnTied(command, args, { stdio: ['pipe', 'pipe', 'pipe'], deathSignal: 'KILL', env });
    this.child.stdin!.on('error', () => undefined); // a Blender that died is reported by its exit
    const out = new LineSplitter();
    const err = new LineSplitter();
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => out.push(chunk).forEach((l) => this.onLine(l)));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => err.push(chunk).forEach((l) => this.onLine(l)));
    this.child.once('error', (e) => {
      this.spawnError = e;
      this.notify();
    });
    this.child.once('close', (code, signal) => {
      [...out.end(), ...err.end()].forEach((l) => this.onLine(l));
      this.exit = { code, signal };
      this.notify();
    });
  }

  /** Killed or closed: never handed another chunk, even before its exit is seen. */
  private retired = false;

  get alive(): boolean {
    return !this.exit && !this.spawnError && !this.retired;
  }

  /** Renders one chunk (`line` from serveChunkLine) and yields each frame's file as Blender saves it. */
  async *render(line: string, options: ChunkOptions): AsyncGenerator<string> {
    this.busy = true;
    this.log.length = 0; // this chunk's words only, not an earlier chunk's
    const saved: string[] = [];
    let done = false;
    let timedOut = false;
    let failed = true;
    this.listener = (event) => {
      options.onEvent?.(event);
      if (event.kind === 'saved') {
        arm(options.frameTimeoutMs);
        saved.push(event.path);
        this.notify();
      } else if (event.kind === 'chunk-done') {
        done = true;
        clearTimeout(watchdog); // every frame is saved: the encoder's pace is not Blender's
        this.notify();
      }
    };
    if (this.device) options.onEvent?.(this.device); // said once, when the scene was set up
    let watchdog: NodeJS.Timeout | undefined;
    const arm = (ms: number) => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        timedOut = true;
        this.kill();
      }, ms);
    };
    // The first chunk of this process also waits for Blender's start-up.
    arm(this.served === 0 ? options.firstFrameTimeoutMs : options.frameTimeoutMs);
    const abort = () => this.kill();
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      if (options.signal?.aborted) throw renderFailed('render cancelled');
      if (this.alive) this.child.stdin!.write(line);
      else if (!this.exit && !this.spawnError) throw renderFailed('this Blender was stopped before the chunk started');
      for (;;) {
        while (saved.length > 0) yield saved.shift()!;
        if (done || !this.alive) break;
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
      while (saved.length > 0) yield saved.shift()!;
      const failure = blenderFailure({
        command: this.command,
        aborted: !!options.signal?.aborted,
        spawnError: this.spawnError,
        exit: this.exit,
        finished: done,
        timedOut,
        frameTimeoutMs: options.frameTimeoutMs,
        deviceError: this.deviceError,
        bindingErrors: this.bindingErrors,
        log: this.log,
      });
      if (failure) throw failure;
      failed = false;
      this.served++;
    } finally {
      clearTimeout(watchdog);
      options.signal?.removeEventListener('abort', abort);
      this.listener = undefined;
      // Left early (the encoder stopped), failed or aborted: what this Blender is doing is not known any more.
      if (failed || !done) this.kill();
      this.busy = false;
      this.lastUsed = Date.now();
    }
  }

  /** No more chunks: Blender leaves when its stdin closes (killed if it has not within 10 s). */
  close(): void {
    if (!this.alive) return;
    this.retired = true;
    this.child.stdin!.end();
    setTimeout(() => this.exit || this.child.kill('SIGKILL'), 10_000).unref();
  }

  kill(): void {
    if (this.exit || this.spawnError) return;
    this.retired = true;
    this.child.kill('SIGKILL');
  }

  private onLine(line: string): void {
    if (line && !line.startsWith('Fra:')) this.log.push(line.slice(0, 500));
    if (this.log.length > 200) this.log.splice(0, this.log.length - 200);
    const event = parseBlenderLine(line);
    if (!event) return;
    if (event.kind === 'device') this.device = event;
    else if (event.kind === 'device-error') this.deviceError = event.message;
    else if (event.kind === 'binding-error') this.bindingErrors.push(event.binding !== undefined ? `bindings.${event.binding}: ${event.message}` : event.message);
    this.listener?.(event);
  }

  private notify(): void {
    this.wake?.();
    this.wake = undefined;
  }
}
