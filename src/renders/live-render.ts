/**
 * A render in progress in this process: the file it is writing and a way to wait for it to
 * grow or finish. Every viewer of the same output follows the same file from its start.
 */
export class LiveRender {
  finished = false;
  /** The live file is complete (the rest is storing it): viewers following it can end. */
  written = false;
  error?: Error;
  /** Aborts the render (service shutdown): its state stays `rendering`, so the next start re-runs it. */
  readonly abort = new AbortController();
  private waiters: Array<() => void> = [];
  private resolveDone!: () => void;
  /** Settles (never rejects) when the render has succeeded or failed. */
  readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));

  constructor(
    readonly key: string,
    /** Where a streamable render writes as it goes; undefined for gif and stills. */
    readonly livePath: string | undefined,
  ) {}

  /** Something changed: more bytes, more frames, or the end. */
  notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves at the next change, or after `pollMs` (file growth between progress reports). */
  changed(pollMs = 40): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(wake), 1); // polled out: do not pile up
        resolve();
      }, pollMs);
      this.waiters.push(wake);
    });
  }

  markWritten(): void {
    this.written = true;
    this.notify();
  }

  finish(error?: Error): void {
    this.error = error;
    this.finished = true;
    this.notify();
    this.resolveDone();
  }
}
