/**
 * One job run every `intervalMs` (after each pass ends, so passes never overlap), and on
 * demand: a call while a pass runs gets that pass. Timers never keep the process alive.
 */
export class PeriodicPass<T> {
  private timer?: NodeJS.Timeout;
  private current?: Promise<T>;
  private stopped = false;

  constructor(
    private readonly run: () => Promise<T>,
    private readonly intervalMs: number,
    private readonly onError: (err: Error) => void,
  ) {}

  start(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.now().catch(this.onError).finally(() => this.start()), this.intervalMs);
    this.timer.unref();
  }

  /** One pass now (or the one under way). */
  now(): Promise<T> {
    this.current ??= this.run().finally(() => (this.current = undefined));
    return this.current;
  }

  /**
   * No more passes. The one under way is not waited for: a shutdown has a deadline, and a
   * pass cut off by the exit only leaves what the next pass removes.
   */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
