import type { LoggerService } from '@nestjs/common';
import { startupState } from './startup-state';

export interface DependencyWaitOptions {
  /** What the start-up probe may tell anyone (`store`, `storage`, `queue`): never a location. */
  publicName: string;
  /** Give up after this long (0: never). */
  timeoutMs: number;
  logger: Pick<LoggerService, 'log' | 'warn'>;
  /** First and longest pause between attempts. */
  firstDelayMs?: number;
  maxDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Stops waiting (the process is shutting down): the wait rejects. */
  signal?: AbortSignal;
}

/** Thrown when a dependency stayed away for the whole start-up timeout. */
export class StartupTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupTimeoutError';
  }
}

/**
 * Tries `attempt` until it succeeds, with backoff (0.25 s doubling to 5 s). Says once what it
 * waits for and why, and once when it is there; throws StartupTimeoutError after `timeoutMs`.
 * Never silent, never a tight loop.
 */
export async function waitForDependency<T>(name: string, attempt: () => Promise<T>, options: DependencyWaitOptions): Promise<T> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const started = Date.now();
  let delay = options.firstDelayMs ?? 250;
  let waited = false;
  startupState.waiting(options.publicName, 'not answered yet'); // the start-up probe names it at once
  for (;;) {
    if (options.signal?.aborted) throw new Error(`stopped waiting for ${name}`);
    try {
      const value = await attempt();
      if (waited) options.logger.log(`${name} answers after ${((Date.now() - started) / 1000).toFixed(1)} s; starting`);
      startupState.reached(options.publicName);
      return value;
    } catch (err) {
      const reason = ((err as Error).message || String(err)).slice(0, 300);
      startupState.waiting(options.publicName, reason);
      if (!waited) {
        options.logger.warn(
          `waiting for ${name}: ${reason}; retrying with backoff${options.timeoutMs ? `, for up to ${Math.round(options.timeoutMs / 1000)} s (STARTUP_TIMEOUT_MS)` : ' until it answers (STARTUP_TIMEOUT_MS=0)'}`,
        );
        waited = true;
      }
      if (options.timeoutMs && Date.now() - started + delay > options.timeoutMs) {
        throw new StartupTimeoutError(`gave up waiting for ${name} after ${Math.round((Date.now() - started) / 1000)} s: ${reason}`);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, options.maxDelayMs ?? 5000);
    }
  }
}
