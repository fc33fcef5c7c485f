import { Inject, Injectable } from '@nestjs/common';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { badInput, renderFailed, type ErrorDetail } from '../common/errors';
import { buildLottieEncodeArgs, LOTTIE_LIMITS } from '../compiler/lottie';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { ffmpegErrorSummary } from '../compiler/ffmpeg-output';
import { cannotExecute, spawnTied } from './child-processes';

export interface LottieClipJob {
  /** The Lottie JSON file. */
  src: string;
  /** Files it refers to (images, fonts), by the name Skottie asks for. */
  assets: Record<string, string>;
  width: number;
  height: number;
  fps: number;
  /** The animation frame of each clip frame (see lottieClipFrames). */
  frames: number[];
  /** Where a refusal of the animation is reported (`file:line` of the layer's src). */
  field: string;
}

/** Skia's renderer in its own process: see lottie-frames.cjs. */
const RENDERER = path.join(__dirname, 'lottie-frames.cjs');
/** Exit status of the renderer when the animation itself cannot be used. */
const REFUSED = 3;

/**
 * Lottie animations → video clips with alpha. Skottie (canvaskit-wasm) draws each frame once,
 * in a child process, straight into ffmpeg's stdin; the only module that runs the renderer.
 */
@Injectable()
export class LottieRepository {
  constructor(@Inject(MONTAGE_CONFIG) private readonly config: MontageConfig) {}

  /** The file's text, refused past the size limit before it is read whole. */
  async readSource(file: string, field: string): Promise<string> {
    const { size } = await fs.stat(file);
    if (size > LOTTIE_LIMITS.maxBytes) throw badInput(`${field}: a Lottie file may be at most ${LOTTIE_LIMITS.maxBytes / 1024 / 1024} MiB`, [{ field, message: 'Lottie file too large' }]);
    return fs.readFile(file, 'utf8');
  }

  /** Renders the clip to `out` (a .mov with alpha); killed past `timeoutMs`. */
  async renderClip(job: LottieClipJob, out: string, timeoutMs: number = LOTTIE_RENDER_TIMEOUT_MS): Promise<void> {
    const renderer = spawnTied(process.execPath, [RENDERER], { stdio: ['pipe', 'pipe', 'pipe'], deathSignal: 'KILL' });
    const encoder = spawnTied(this.config.ffmpegPath, buildLottieEncodeArgs(job.width, job.height, job.fps, out), {
      stdio: [renderer.stdout!, 'ignore', 'pipe'],
      deathSignal: 'KILL',
    });
    // The frames go from one child to the other: this process must not read (steal) any of them.
    renderer.stdout!.destroy();
    let rendererErr = '';
    let encoderErr = '';
    renderer.stderr!.setEncoding('utf8').on('data', (chunk: string) => (rendererErr = (rendererErr + chunk).slice(-16_384)));
    encoder.stderr!.setEncoding('utf8').on('data', (chunk: string) => (encoderErr = (encoderErr + chunk).slice(-16_384)));
    const exit = (child: typeof renderer) =>
      new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
        child.once('error', (error) => resolve({ code: null, signal: null, error }));
        child.once('close', (code, signal) => resolve({ code, signal }));
      });
    const rendered = exit(renderer);
    const encoded = exit(encoder);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      renderer.kill('SIGKILL');
      encoder.kill('SIGKILL');
    }, timeoutMs);
    renderer.stdin!.on('error', () => undefined); // a renderer that died early is reported by its exit
    renderer.stdin!.end(JSON.stringify({ src: job.src, assets: job.assets, width: job.width, height: job.height, frames: job.frames }));
    const r = await rendered;
    // The encoder reads to the end of the pipe; a renderer that failed leaves a clip cut short.
    if (r.code !== 0) encoder.kill('SIGKILL');
    const e = await encoded;
    clearTimeout(timer);

    if (timedOut) {
      throw badInput(`${job.field}: the Lottie animation took longer than ${Math.round(timeoutMs / 1000)} s to render`, [
        { field: job.field, message: 'the Lottie animation takes too long to render' },
      ]);
    }
    if (r.code === REFUSED) {
      const message = (/^REFUSED: (.*)$/m.exec(rendererErr)?.[1] ?? 'Skottie cannot use this animation').slice(0, 300);
      const detail: ErrorDetail = { field: job.field, message };
      throw badInput(`${job.field}: ${message}`, [detail]);
    }
    // An encoder that failed on its own (not killed above) is why the renderer lost its pipe.
    const encoderFailed = e.error !== undefined || (e.code !== 0 && e.signal !== 'SIGKILL');
    if (!encoderFailed && (r.error || r.code !== 0 || cannotExecute(r.code, rendererErr))) {
      throw renderFailed('the Lottie renderer failed', [], { internal: `renderer ${r.error?.message ?? r.code ?? r.signal}: ${rendererErr.slice(-2000)}` });
    }
    if (encoderFailed || e.code !== 0) {
      throw renderFailed('the Lottie clip could not be encoded', [], { internal: `ffmpeg ${e.error?.message ?? e.code ?? e.signal}: ${ffmpegErrorSummary(encoderErr)}` });
    }
  }
}

/** Ten minutes: far past what the size and length limits allow an honest animation. */
export const LOTTIE_RENDER_TIMEOUT_MS = 10 * 60 * 1000;
