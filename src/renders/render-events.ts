import { Global, Injectable, Logger, Module } from '@nestjs/common';
import type { OutputFormat } from '../formats/output-formats';
import type { TokenDoc } from './render.types';

/** What happens to tokens and renders, for the features that tell others (webhooks, uploads, batches). */
export type RenderEvent =
  /** POST made a token. */
  | { type: 'token-created'; token: TokenDoc }
  /** A client asked for a token's output (GET): sync uploads of that extension start with the first. */
  | { type: 'output-requested'; token: TokenDoc; format: OutputFormat; key: string }
  /** A token's output began rendering (this token's request claimed the run, or joined one under way). */
  | { type: 'render-started'; token: TokenDoc; format: OutputFormat; key: string; run: string }
  /** A render ended, recorded once (whichever process recorded it): every token that has its key is concerned. */
  | { type: 'render-ended'; key: string; format: OutputFormat; project: string; movie: string; run?: string; status: 'done' | 'failed'; bytes?: number; error?: string };

type Listener = (event: RenderEvent) => Promise<void> | void;

/**
 * An in-process hub: the runner and the tokens service say what happened; listeners turn it
 * into durable work (webhook messages, upload jobs) with ids derived from the event, so the same
 * event said twice (by two API processes) is one message. A listener's failure is logged, never
 * the speaker's problem.
 */
@Injectable()
export class RenderEvents {
  private readonly logger = new Logger('RenderEvents');
  private readonly listeners = new Set<Listener>();

  on(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when every listener has taken the event (its durable work is recorded or failed). */
  async emit(event: RenderEvent): Promise<void> {
    await Promise.all(
      [...this.listeners].map(async (listener) => {
        try {
          await listener(event);
        } catch (err) {
          this.logger.warn(`a listener of ${event.type} failed: ${(err as Error).message}`);
        }
      }),
    );
  }
}

/** Global: the runner and tokens (in the app module) speak; webhooks, uploads and batches listen. */
@Global()
@Module({ providers: [RenderEvents], exports: [RenderEvents] })
export class RenderEventsModule {}
