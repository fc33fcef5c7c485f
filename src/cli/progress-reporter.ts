import { SingleBar } from 'cli-progress';

export interface ProgressReporter {
  update(framesDone: number, totalFrames: number): void;
  stop(): void;
}

/** Frames per second and seconds left, from frames done and elapsed time. Pure. */
export function rateAndEta(framesDone: number, totalFrames: number, elapsedMs: number): { fps: number; etaSec: number | undefined } {
  const fps = elapsedMs > 0 ? (framesDone * 1000) / elapsedMs : 0;
  return { fps, etaSec: fps > 0 ? Math.max(0, (totalFrames - framesDone) / fps) : undefined };
}

/** A bar on a terminal; one plain line per second (and one at the end) anywhere else. */
export function createProgressReporter(stream: NodeJS.WriteStream, label: string, now = () => Date.now()): ProgressReporter {
  const started = now();
  if (stream.isTTY) {
    const bar = new SingleBar({
      stream,
      format: `${label} [{bar}] {percentage}% | {value}/{total} frames | {rate} fps | ETA {eta_s}`,
      hideCursor: true,
      barsize: 30,
      barCompleteChar: '\u2588',
      barIncompleteChar: '\u2591',
    });
    let begun = false;
    return {
      update(done, total) {
        const { fps, etaSec } = rateAndEta(done, total, now() - started);
        const payload = { rate: fps.toFixed(1), eta_s: etaSec === undefined ? '?' : `${Math.ceil(etaSec)}s` };
        if (!begun) {
          bar.start(total, done, payload);
          begun = true;
        } else bar.update(done, payload);
      },
      stop: () => begun && bar.stop(),
    };
  }
  let lastPrinted = -Infinity;
  let last: { done: number; total: number } | undefined;
  const print = () => {
    if (!last) return;
    const { fps, etaSec } = rateAndEta(last.done, last.total, now() - started);
    const pct = last.total ? Math.floor((100 * last.done) / last.total) : 0;
    stream.write(`${label}: ${last.done}/${last.total} frames (${pct}%) ${fps.toFixed(1)} fps ETA ${etaSec === undefined ? '?' : `${Math.ceil(etaSec)}s`}\n`);
  };
  return {
    update(done, total) {
      last = { done, total };
      if (now() - lastPrinted >= 1000) {
        lastPrinted = now();
        print();
      }
    },
    stop: () => {
      print();
      last = undefined;
    },
  };
}
