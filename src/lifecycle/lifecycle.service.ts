import { Injectable, Logger } from '@nestjs/common';

/**
 * The process's own state, as the rest of the code needs to know it: whether it is draining
 * (a shutdown began: take no new work, readiness says no), and a way to give up for good (a
 * dependency that never came at start-up) that the entry point turns into an exit.
 */
@Injectable()
export class LifecycleService {
  private readonly logger = new Logger('Lifecycle');
  private fatalHandler?: (message: string) => void;
  draining = false;

  /** The entry point's way out (an in-process test app has none: the message is logged). */
  onFatal(handler: (message: string) => void): void {
    this.fatalHandler = handler;
  }

  fatal(message: string): void {
    this.logger.error(message);
    this.fatalHandler?.(message);
  }
}
