import { Inject, Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import type { OutputFormat } from '../formats/output-formats';
import { type RenderEvent, RenderEvents } from '../renders/render-events';
import type { TokenDoc } from '../renders/render.types';
import { coveredExtensions, movieFor } from '../tokens/render-request';
import { WebhookStore } from './webhook-store';
import { WebhooksService } from './webhooks.service';

/**
 * Render events as webhooks: a token made → `render.pending`; its output began rendering →
 * `render.processing`; a render ended → `render.completed` / `render.failed` for every token
 * that has its key. Event ids come from the event (token, format, run), so the same event said
 * by two API processes is one message; each token's messages go out in order.
 */
@Injectable()
export class RenderWebhooks implements OnModuleInit, OnModuleDestroy {
  private off?: () => void;

  constructor(
    private readonly events: RenderEvents,
    private readonly webhooks: WebhooksService,
    private readonly store: WebhookStore,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  onModuleInit(): void {
    this.off = this.events.on((event) => this.handle(event));
  }

  onModuleDestroy(): void {
    this.off?.();
  }

  /** Called synchronously by the hub: each emit takes its place in the order before anything is awaited. */
  handle(event: RenderEvent): Promise<void> {
    switch (event.type) {
      case 'token-created': {
        const { token } = event;
        const formats = coveredExtensions(token.movie);
        return this.webhooks.emit(
          token.project,
          'render.pending',
          {
            token: token._id,
            project: token.project,
            movie: token.movie,
            formats,
            urls: Object.fromEntries(formats.map((f) => [f, this.urlOf(token, f)]).filter(([, url]) => url !== undefined)),
            metadata: token.metadata ?? {},
          },
          { eventId: `render.pending:${token._id}`, orderKey: token._id },
        );
      }
      case 'render-started': {
        const { token, format, run } = event;
        return this.webhooks.emit(
          token.project,
          'render.processing',
          { token: token._id, project: token.project, movie: movieFor(token.movie, format) ?? null, format, url: this.urlOf(token, format) ?? null, metadata: token.metadata ?? {} },
          { eventId: `render.processing:${token._id}:${format}:${run}`, orderKey: token._id },
        );
      }
      case 'render-ended':
        return this.ended(event);
      default:
        return Promise.resolve();
    }
  }

  private async ended(event: Extract<RenderEvent, { type: 'render-ended' }>): Promise<void> {
    // Nobody listens: no need to look the tokens up.
    const listening = await this.store.endpoints.countDocuments({ project: event.project, disabled: { $exists: false } });
    if (listening === 0) return;
    const type = event.status === 'done' ? 'render.completed' : 'render.failed';
    const tokens = await this.store.tokens.find({ renderKeys: event.key });
    await Promise.all(
      tokens.map((token) =>
        this.webhooks.emit(
          token.project,
          type,
          {
            token: token._id,
            project: token.project,
            movie: event.movie,
            format: event.format,
            url: this.urlOf(token, event.format) ?? null,
            ...(event.status === 'done' ? { bytes: event.bytes ?? null } : { error: event.error ?? 'the render failed' }),
            metadata: token.metadata ?? {},
          },
          { eventId: `${type}:${token._id}:${event.format}:${event.run ?? ''}`, orderKey: token._id },
        ),
      ),
    );
  }

  private urlOf(token: TokenDoc, format: OutputFormat): string | undefined {
    const base = token.baseUrl ?? this.config.publicUrl?.replace(/\/+$/, '');
    return base ? `${base}/v2/get/${token._id}.${format}` : undefined;
  }
}
