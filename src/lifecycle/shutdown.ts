import type { LoggerService } from '@nestjs/common';
import { killAllChildren } from '../repositories/child-processes';

/**
 * Past the grace period, this long for cutting off, handing back, closing connections and
 * stopping children (each step has its own smaller bound); then the exit is forced.
 */
export const SHUTDOWN_MARGIN_MS = 900;

export interface ShutdownOptions {
  /** What stops: 'API', 'render node'. */
  name: string;
  graceMs: number;
  logger: Pick<LoggerService, 'log' | 'warn' | 'error'>;
  /** The orderly stop: take no new work, let running work finish within graceMs, close everything. */
  stop(reason: string): Promise<void>;
  exit?: (code: number) => void;
}

/**
 * Signals, in any order, for the API and render nodes alike:
 * - the first SIGTERM, SIGINT or SIGHUP starts the orderly stop; the process exits 0 when it
 *   is done, or is made to exit (1) SHUTDOWN_MARGIN_MS after the grace period whatever still
 *   hangs (Redis gone, a stuck disk): never later than grace + 1 s;
 * - a second signal exits at once, killing every child first;
 * - an uncaught exception starts the orderly stop with exit code 1 (a supervisor restarts the
 *   process); an unhandled rejection is logged and does not bring the service down.
 * Returns `begin`, for an entry point that decides to stop by itself (a start-up that gave up).
 */
export function handleShutdown(options: ShutdownOptions): { begin(reason: string, exitCode: number): void } {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const { logger } = options;
  let stopping = false;
  const now = (code: number) => {
    killAllChildren('SIGKILL');
    exit(code);
  };
  const begin = (reason: string, exitCode: number) => {
    if (stopping) return;
    stopping = true;
    logger.log(`${reason}: the ${options.name} is stopping; running work has ${options.graceMs} ms to finish (send the signal again to stop at once)`);
    const deadline = setTimeout(() => {
      logger.error(`the ${options.name} was still stopping ${options.graceMs + SHUTDOWN_MARGIN_MS} ms after ${reason}: exiting now`);
      now(exitCode || 1);
    }, options.graceMs + SHUTDOWN_MARGIN_MS);
    options.stop(reason).then(
      () => {
        clearTimeout(deadline);
        logger.log(`the ${options.name} stopped`);
        now(exitCode);
      },
      (err: Error) => {
        clearTimeout(deadline);
        logger.error(`the ${options.name} did not stop cleanly: ${err.stack ?? err.message}`);
        now(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn(`${signal} again: exiting at once`);
      now(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const)[signal as 'SIGHUP' | 'SIGINT' | 'SIGTERM']);
      return;
    }
    begin(signal, 0);
  };
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, onSignal);
  process.on('unhandledRejection', (reason) => logger.error(`unhandled rejection (ignored): ${(reason as Error)?.stack ?? String(reason)}`));
  process.on('uncaughtException', (err) => {
    logger.error(`uncaught exception: ${err.stack ?? err.message}`);
    begin('an uncaught exception', 1);
  });
  return { begin };
}
