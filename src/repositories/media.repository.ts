import { Inject, Injectable } from '@nestjs/common';
import { execFile, spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { MediaProbe, ProbeResult } from '../assets/asset-cache.types';
import { renderFailed } from '../common/errors';
import { type FfprobeData, ffmpegErrorSummary, parseProbe, ProgressParser } from '../compiler/ffmpeg-output';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';

export interface RunOptions {
  /** Called with the number of frames encoded so far. */
  onFrames?: (frames: number) => void;
  signal?: AbortSignal;
}

/** The one place that runs ffmpeg and ffprobe. Argument arrays are built elsewhere, as data. */
@Injectable()
export class MediaRepository implements MediaProbe {
  constructor(@Inject(MONTAGE_CONFIG) private readonly config: MontageConfig) {}

  /** `ffmpeg version 5.1.x …` or undefined when ffmpeg cannot be run. */
  async version(): Promise<string | undefined> {
    try {
      const { stdout } = await promisify(execFile)(this.config.ffmpegPath, ['-hide_banner', '-version'], { timeout: 10_000 });
      return stdout.split('\n')[0].trim();
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
    const { stdout } = await promisify(execFile)(this.config.ffmpegPath, ['-hide_banner', '-encoders'], { timeout: 10_000 });
    return stdout
      .split('\n')
      .map((l) => /^\s*[VAS][.A-Z]{5}\s+(\S+)/.exec(l)?.[1])
      .filter((e): e is string => !!e);
  }

  /** What a file holds. A file ffprobe cannot read (in time) holds nothing usable: a result, not an error. */
  async probe(path: string): Promise<ProbeResult> {
    try {
      const { stdout } = await promisify(execFile)(
        this.config.ffprobePath,
        ['-v', 'error', '-protocol_whitelist', 'file', '-show_format', '-show_streams', '-of', 'json', path],
        { timeout: 20_000, maxBuffer: 16 * 1024 * 1024 },
      );
      return parseProbe(JSON.parse(stdout) as FfprobeData);
    } catch {
      return { hasVideo: false, hasAudio: false, isImage: false };
    }
  }

  /** Runs ffmpeg reading `input` on its stdin (with backpressure); rejects with the tail of its stderr. */
  async runWithInput(args: string[], input: AsyncIterable<Buffer>, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw renderFailed('render cancelled');
    const child = spawn(this.config.ffmpegPath, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-16_384)));
    const exited = new Promise<void>((resolve, reject) => {
      child.on('error', (err) => reject(renderFailed(`could not run ${this.config.ffmpegPath}: ${err.message}`)));
      child.on('close', (code, sig) =>
        code === 0 ? resolve() : reject(renderFailed(`ffmpeg failed (${sig ?? `exit ${code}`}): ${ffmpegErrorSummary(stderr)}`)),
      );
    });
    const abort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', abort, { once: true });
    child.stdin.on('error', () => undefined); // ffmpeg leaving early is reported by its exit
    try {
      for await (const chunk of input) {
        if (!child.stdin.write(chunk)) await new Promise((r) => child.stdin.once('drain', r));
      }
      child.stdin.end();
    } catch (err) {
      child.kill('SIGKILL');
      await exited.catch(() => undefined);
      throw err;
    } finally {
      signal?.removeEventListener('abort', abort);
    }
    await exited;
  }

  /** Runs ffmpeg with `args`; rejects with the tail of its stderr. */
  run(args: string[], options: RunOptions = {}): Promise<void> {
    // Aborted while the render was still being prepared: never start ffmpeg at all.
    if (options.signal?.aborted) return Promise.reject(renderFailed('render cancelled'));
    return new Promise((resolve, reject) => {
      const child = spawn(this.config.ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      // A render that stops making progress for this long is stuck (a bad input, a full disk): kill it.
      let watchdog = setTimeout(() => child.kill('SIGKILL'), this.config.stallTimeoutMs);
      const alive = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => child.kill('SIGKILL'), this.config.stallTimeoutMs);
      };
      child.on('close', () => clearTimeout(watchdog));
      const progress = new ProgressParser();
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        alive();
        for (const frames of progress.push(chunk)) options.onFrames?.(frames);
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr = (stderr + chunk).slice(-16_384);
      });
      const abort = () => child.kill('SIGKILL');
      options.signal?.addEventListener('abort', abort, { once: true });
      child.on('error', (err) => reject(renderFailed(`could not run ${this.config.ffmpegPath}: ${err.message}`)));
      child.on('close', (code, signal) => {
        options.signal?.removeEventListener('abort', abort);
        if (code === 0) resolve();
        else if (options.signal?.aborted) reject(renderFailed('render cancelled'));
        else reject(renderFailed(`ffmpeg failed (${signal ?? `exit ${code}`}): ${ffmpegErrorSummary(stderr)}`));
      });
    });
  }
}
