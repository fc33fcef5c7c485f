import { Inject, Injectable, Logger } from '@nestjs/common';
import { badInput } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { JobName, WEBHOOK_QUEUE } from '../jobs/job.types';
import { JOB_QUEUE } from '../jobs/queue.module';
import { DuplicateKeyError } from '../repositories/document-store/port';
import type { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { WebhookSignerRepository } from '../repositories/webhook-signer.repository';
import { SecretBox } from '../secrets/secret-box';
import { isWebhookEventType, matchesEvent, messageBody, messageIdFor, nextSeq, webhookUrlProblem } from './webhook-policy';
import { WebhookStore } from './webhook-store';
import { DIRECT, type WebhookEventType, type WebhookMessageDoc } from './webhook.types';

export interface EmitOptions {
  /** Names the event: the same event id (said by any process, any number of times) is one message per endpoint. */
  eventId: string;
  /** Messages with the same key (a token, a batch) reach each endpoint in the order they were made. */
  orderKey?: string;
  /**
   * `data` is the whole JSON body, not wrapped in `{type, timestamp, data}`: for receivers of
   * another contract (VNTANA's read `body.event`). Still signed with the Standard Webhooks headers.
   */
  bodyIsData?: boolean;
}

/**
 * The public side of webhooks: events become durable messages (one per subscribed endpoint,
 * stored with the exact body, then one job each), which the sender delivers, signed, on the
 * retry schedule. Uploads and batches call `emit` and `sendDirect`.
 */
@Injectable()
export class WebhooksService {
  private readonly logger = new Logger('Webhooks');

  constructor(
    private readonly store: WebhookStore,
    @Inject(JOB_QUEUE) private readonly queue: Pick<JobQueueRepository, 'enqueue'>,
    private readonly secrets: SecretBox,
    private readonly signer: WebhookSignerRepository,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  /** Fans an event out to the project's endpoints that subscribe to `type`. */
  async emit(project: string, type: WebhookEventType, data: Record<string, unknown>, options: EmitOptions): Promise<void> {
    // Taken before anything is awaited: events said one after the other keep their order.
    const seq = nextSeq();
    const at = new Date();
    if (!isWebhookEventType(type)) throw new Error(`unknown webhook event type "${String(type)}"`);
    const endpoints = await this.store.endpoints.find({ project });
    const targets = endpoints.filter((e) => !e.disabled && matchesEvent(e.events, type));
    if (targets.length === 0) return;
    const body = options.bodyIsData ? JSON.stringify(data) : messageBody(type, data, at);
    await Promise.all(
      targets.map((endpoint) =>
        this.createMessage({ _id: messageIdFor([endpoint._id, type, options.eventId]), project, endpoint: endpoint._id, type, body, orderKey: options.orderKey, seq, at }),
      ),
    );
  }

  /** One message to a URL that is not a registered endpoint (a batch's webhook_url), signed with `secret` (whsec_…). */
  async sendDirect(project: string, target: { url: string; secret: string }, type: WebhookEventType, data: Record<string, unknown>, options: { eventId: string; orderKey?: string }): Promise<void> {
    const seq = nextSeq();
    const at = new Date();
    if (!isWebhookEventType(type)) throw new Error(`unknown webhook event type "${String(type)}"`);
    const problem = typeof target.url === 'string' ? webhookUrlProblem(target.url, this.config.deliveries.allowPrivateAddresses) : 'not a string';
    if (problem) throw badInput(`the webhook URL is not allowed: ${problem}`, [{ field: 'url', message: problem }]);
    if (typeof target.secret !== 'string' || !this.signer.isUsableSecret(target.secret)) {
      throw badInput('the webhook secret must be whsec_ and 24 to 64 bytes in base64', [{ field: 'secret', message: 'not a whsec_ secret' }]);
    }
    await this.createMessage({
      _id: messageIdFor([DIRECT, target.url, type, options.eventId]),
      project,
      endpoint: DIRECT,
      url: target.url,
      secret: this.secrets.seal(target.secret),
      type,
      body: messageBody(type, data, at),
      orderKey: options.orderKey,
      seq,
      at,
    });
  }

  /** A new signing secret (whsec_…), for callers that make their own targets. */
  newSecret(): string {
    return this.signer.newSecret();
  }

  /**
   * Stores the message (a DuplicateKeyError means another process, or an earlier call, made it
   * already) and queues its job (id = message id: queued once). If the queue is away, the
   * message waits in the store; the sweep queues it when the queue is back.
   */
  private async createMessage(m: Pick<WebhookMessageDoc, '_id' | 'project' | 'endpoint' | 'url' | 'secret' | 'type' | 'body' | 'orderKey' | 'seq'> & { at: Date }): Promise<void> {
    const created = m.at.toISOString();
    const doc: WebhookMessageDoc = {
      _id: m._id,
      project: m.project,
      endpoint: m.endpoint,
      ...(m.url !== undefined ? { url: m.url } : {}),
      ...(m.secret !== undefined ? { secret: m.secret } : {}),
      type: m.type,
      body: m.body,
      ...(m.orderKey !== undefined ? { orderKey: m.orderKey } : {}),
      seq: m.seq,
      status: 'pending',
      attempts: [],
      attemptCount: 0,
      nextAttemptAt: created,
      replays: 0,
      leaseUntil: 0,
      touchedAt: created,
      createdAt: created,
    };
    try {
      await this.store.messages.insertOne(doc);
    } catch (err) {
      if (!(err instanceof DuplicateKeyError)) throw err;
    }
    await this.queue.enqueue(WEBHOOK_QUEUE, JobName.SendWebhook, { message: doc._id }, doc._id).catch((err: Error) => {
      this.logger.warn(`webhook message ${doc._id} (${doc.type}) stored but not queued (${err.message}); it is queued again once the queue answers`);
    });
  }
}
