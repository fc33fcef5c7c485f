import { Inject, Injectable } from '@nestjs/common';
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { MediaKind, MediaProbe, ProbeResult } from '../assets/asset-cache.types';
import { renderFailed } from '../common/errors';
import { type FfprobeData, ffmpegErrorSummary, parsePictureFacts, parseProbe, type PictureFacts, type ProgressBlock, ProgressParser, progressed } from '../compiler/ffmpeg-output';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { cannotExecute, runTied, spawnTied } from './child-processes';

/** Longest filter graph passed as an argument; longer ones go in a file (the kernel's limit on one argument is 128 KiB). */
const GRAPH_ARGUMENT_LIMIT = 64 * 1024;

export interface RunOptions {
  /** Called with the number of frames encoded so far. */
  onFrames?: (frames: number) => void;
  signal?: AbortSignal;
  /** Kill the run when its progress has not moved for this long (default FFMPEG_STALL_TIMEOUT_MS). */
  stallTimeoutMs?: number;
}

/**
 * The one place that runs ffmpeg and ffprobe. Argument arrays are built elsewhere, as data.
 * Every process is tied to this one (it dies with it), and what the tools print stays here:
 * errors carry a plain message for clients and the tool's output for the log only.
 */
@Injectable()
export class MediaRepository implements Pick<MediaProbe, 'probe'> {
  constructor(@Inject(MONTAGE_CONFIG) private readonly config: MontageConfig) {}

  /** `ffmpeg version 5.1.x …` or undefined when ffmpeg cannot be run. */
  async version(): Promise<string | undefined> {
    try {
      const { code, stdout } = await runTied(this.config.ffmpegPath, ['-hide_banner', '-version'], { timeoutMs: 10_000 });
      return code === 0 ? stdout.toString('utf8').split('\n')[0].trim() : undefined;
    } catch {
      return undefined;
    }
  }

  /** Whether a GPU device node exists (NVIDIA, or DRI for VAAPI/QSV). */
  async hasVideoDevice(): Promise<boolean> {
    const exists = (p: string) => access(p).then(() => true, () => false);
    return (await exists('/dev/nvidia0')) || (await exists('/dev/dri'));
  }

  async encoders(): Promise<string[]> {
    const { stdout } = await runTied(this.config.ffmpegPath, ['-hide_banner', '-encoders'], { timeoutMs: 10_000 });
    return stdout
      .toString('utf8')
      .split('\n')
      .map((l) => /^\s*[VAS][.A-Z]{5}\s+(\S+)/.exec(l)?.[1])
      .filter((e): e is string => !!e);
  }

  /** What a file holds. A file ffprobe cannot read (in time) holds nothing usable: a result, not an error. */
  async probe(path: string): Promise<ProbeResult> {
    try {
      const { code, stdout } = await runTied(
        this.config.ffprobePath,
        ['-v', 'error', '-protocol_whitelist', 'file', '-show_format', '-show_streams', '-of', 'json', path],
        { timeoutMs: 20_000 },
      );
      if (code !== 0) return { hasVideo: false, hasAudio: false, isImage: false };
      return parseProbe(JSON.parse(stdout.toString('utf8')) as FfprobeData);
    } catch {
      return { hasVideo: false, hasAudio: false, isImage: false };
    }
  }

  /** Size and frame count of a file we wrote (counted packets: no decode). */
  async pictureFacts(path: string): Promise<PictureFacts> {
    const { code, stdout, stderr } = await runTied(
      this.config.ffprobePath,
      ['-v', 'error', '-protocol_whitelist', 'file', '-select_streams', 'v:0', '-count_packets', '-show_entries', 'stream=width,height,nb_read_packets', '-of', 'json', path],
      { timeoutMs: 60_000 },
    );
    const facts = code === 0 ? parsePictureFacts(JSON.parse(stdout.toString('utf8')) as Parameters<typeof parsePictureFacts>[0]) : undefined;
    if (!facts) throw renderFailed('the written output has no readable picture', [], { internal: ffmpegErrorSummary(stderr, 3) });
    return facts;
  }

  /**
   * Whether the first frames of a video (or the first seconds of a sound) actually decode,
   * within `timeoutMs`. A file whose header is fine and whose data is not passes a probe, then
   * spins an encoder that loops it; this is the check that refuses it when it is fetched.
   * Returns undefined when it decodes, or why not (for the log).
   */
  async decodeProblem(path: string, kind: Exclude<MediaKind, 'image'>, timeoutMs: number): Promise<string | undefined> {
    const args = [
      '-hide_banner', '-nostdin', '-v', 'error', '-progress', 'pipe:1', '-nostats',
      '-protocol_whitelist', 'file', '-i', path,
      ...(kind === 'video' ? ['-map', '0:v:0', '-frames:v', '5'] : ['-map', '0:a:0', '-t', '2']),
      '-f', 'null', '-',
    ];
    const result = await runTied(this.config.ffmpegPath, args, { timeoutMs, maxBuffer: 1024 * 1024 });
    if (result.timedOut) return `decoding did not finish within ${timeoutMs} ms`;
    const blocks = new ProgressParser().pushBlocks(result.stdout.toString('utf8'));
    const last = blocks[blocks.length - 1];
    const decoded = kind === 'video' ? (last?.frame ?? 0) > 0 : (last?.outTimeUs ?? 0) > 0;
    if (result.code !== 0 || !decoded) return `no ${kind === 'video' ? 'frame' : 'sound'} decoded (ffmpeg ${result.code ?? result.signal}): ${ffmpegErrorSummary(result.stderr, 3)}`;
    return undefined;
  }

  /**
   * A filter graph longer than one argument may be (Linux: 128 KiB; keyframes and sendcmd over
   * long layers get there) goes to ffmpeg in a script file instead; removed when ffmpeg is done.
   */
  private async withGraphScript<T>(args: string[], run: (args: string[]) => Promise<T>): Promise<T> {
    const at = args.indexOf('-filter_complex');
    if (at < 0 || args[at + 1].length <= GRAPH_ARGUMENT_LIMIT) return run(args);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'montage-graph-'));
    try {
      const script = path.join(dir, 'graph.txt');
      await writeFile(script, args[at + 1]);
      return await run([...args.slice(0, at), '-filter_complex_script', script, ...args.slice(at + 2)]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Runs ffmpeg reading `input` on its stdin (with backpressure); rejects with a plain message (its stderr goes to the log). */
  async runWithInput(args: string[], input: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<void> {
    return this.withGraphScript(args, (a) => this.runWithInputNow(a, input, signal));
  }

  private async runWithInputNow(args: string[], input: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw renderFailed('render cancelled');
    const child = spawnTied(this.config.ffmpegPath, args, { stdio: ['pipe', 'ignore', 'pipe'], deathSignal: 'KILL' });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-16_384)));
    const exited = new Promise<void>((resolve, reject) => {
      child.on('error', (err) => reject(this.cannotRun(err.message)));
      child.on('close', (code, sig) => (code === 0 ? resolve() : reject(signal?.aborted ? renderFailed('render cancelled') : this.failure(code, sig, stderr))));
    });
    exited.catch(() => undefined); // awaited below; it may settle while input is still being written
    const abort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', abort, { once: true });
    const stdin = child.stdin!;
    stdin.on('error', () => undefined); // ffmpeg leaving early is reported by its exit
    // ffmpeg gone while we wait for room in the pipe: 'drain' never comes, 'close' does.
    const closed = new Promise<void>((resolve) => stdin.once('close', () => resolve()));
    let endedEarly = false;
    try {
      for await (const chunk of input) {
        if (stdin.destroyed) {
          endedEarly = true;
          break;
        }
        if (!stdin.write(chunk)) await Promise.race([new Promise((r) => stdin.once('drain', r)), closed]);
      }
      stdin.end();
    } catch (err) {
      child.kill('SIGKILL');
      await exited.catch(() => undefined);
      throw err;
    } finally {
      signal?.removeEventListener('abort', abort);
    }
    await exited;
    // Exit 0 with input left over would store a video cut short.
    if (endedEarly) throw renderFailed('the assembler stopped before the end of the video', [], { internal: ffmpegErrorSummary(stderr) });
  }

  /**
   * Runs ffmpeg with `args` (which ask for `-progress pipe:1`). A run whose progress (frames,
   * bytes, media time) does not move for the stall timeout is killed: a stuck input fails in
   * seconds instead of holding a render slot.
   */
  run(args: string[], options: RunOptions = {}): Promise<void> {
    // Aborted while the render was still being prepared: never start ffmpeg at all.
    if (options.signal?.aborted) return Promise.reject(renderFailed('render cancelled'));
    return this.withGraphScript(args, (a) => this.runNow(a, options));
  }

  private runNow(args: string[], options: RunOptions): Promise<void> {
    const stallMs = options.stallTimeoutMs ?? this.config.stallTimeoutMs;
    return new Promise((resolve, reject) => {
      const child = spawnTied(this.config.ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'], deathSignal: 'KILL' });
      let stalled = false;
      const arm = () =>
        setTimeout(() => {
          stalled = true;
          child.kill('SIGKILL');
        }, stallMs);
      let watchdog = arm();
      child.on('close', () => clearTimeout(watchdog));
      const progress = new ProgressParser();
      let last: ProgressBlock | undefined;
      let stderr = '';
      child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        for (const block of progress.pushBlocks(chunk)) {
          if (progressed(last, block)) {
            clearTimeout(watchdog);
            watchdog = arm();
          }
          last = block;
          options.onFrames?.(block.frame);
        }
      });
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        stderr = (stderr + chunk).slice(-16_384);
      });
      const abort = () => child.kill('SIGKILL');
      options.signal?.addEventListener('abort', abort, { once: true });
      child.on('error', (err) => reject(this.cannotRun(err.message)));
      child.on('close', (code, signal) => {
        options.signal?.removeEventListener('abort', abort);
        if (code === 0) resolve();
        else if (options.signal?.aborted) reject(renderFailed('render cancelled'));
        else if (stalled) {
          reject(
            renderFailed(`the render stopped making progress for ${Math.round(stallMs / 1000)} s and was stopped (an input that does not decode?)`, [], {
              internal: `ffmpeg stalled at frame ${last?.frame ?? 0}: ${ffmpegErrorSummary(stderr)}`,
            }),
          );
        } else if (cannotExecute(code, stderr)) reject(this.cannotRun('not found'));
        else reject(this.failure(code, signal, stderr));
      });
    });
  }

  /**
   * Runs ffmpeg and returns what it writes on stdout (a raw still: `maxBytes` bounds it). It has
   * no progress to watch: the stall timeout bounds the whole run, which is one frame's work.
   */
  runToBuffer(args: string[], options: { signal?: AbortSignal; maxBytes: number }): Promise<Buffer> {
    if (options.signal?.aborted) return Promise.reject(renderFailed('render cancelled'));
    return this.withGraphScript(args, (a) => this.runToBufferNow(a, options));
  }

  private runToBufferNow(args: string[], options: { signal?: AbortSignal; maxBytes: number }): Promise<Buffer> {
    const stallMs = this.config.stallTimeoutMs;
    return new Promise((resolve, reject) => {
      const child = spawnTied(this.config.ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'], deathSignal: 'KILL' });
      let stalled = false;
      let tooLarge = false;
      const watchdog = setTimeout(() => {
        stalled = true;
        child.kill('SIGKILL');
      }, stallMs);
      const chunks: Buffer[] = [];
      let bytes = 0;
      let stderr = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > options.maxBytes) {
          tooLarge = true;
          child.kill('SIGKILL');
        } else chunks.push(chunk);
      });
      child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
        stderr = (stderr + chunk).slice(-16_384);
      });
      const abort = () => child.kill('SIGKILL');
      options.signal?.addEventListener('abort', abort, { once: true });
      child.on('error', (err) => reject(this.cannotRun(err.message)));
      child.on('close', (code, signal) => {
        clearTimeout(watchdog);
        options.signal?.removeEventListener('abort', abort);
        if (code === 0 && !tooLarge) resolve(Buffer.concat(chunks, bytes));
        else if (options.signal?.aborted) reject(renderFailed('render cancelled'));
        else if (stalled) reject(renderFailed(`the render did not finish within ${Math.round(stallMs / 1000)} s and was stopped (an input that does not decode?)`, [], { internal: ffmpegErrorSummary(stderr) }));
        else if (tooLarge) reject(renderFailed('the render wrote more than a still holds', [], { internal: `over ${options.maxBytes} bytes on stdout` }));
        else if (cannotExecute(code, stderr)) reject(this.cannotRun('not found'));
        else reject(this.failure(code, signal, stderr));
      });
    });
  }

  /** A plain message for clients; the tool's own words (paths, addresses) for the log only. */
  private failure(code: number | null, signal: NodeJS.Signals | null, stderr: string) {
    return renderFailed(`ffmpeg failed (${signal ?? `exit ${code}`})`, [], { internal: ffmpegErrorSummary(stderr) });
  }

  private cannotRun(reason: string) {
    return renderFailed('ffmpeg could not be started on this machine', [], { internal: `could not run ${this.config.ffmpegPath}: ${reason}` });
  }
}
