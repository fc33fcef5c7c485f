import { Inject, Injectable, Logger } from '@nestjs/common';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { JobName, RetryLater, type SendWebhookPayload, WEBHOOK_QUEUE } from '../jobs/job.types';
import { JOB_QUEUE } from '../jobs/queue.module';
import type { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { OutboundError, OutboundHttpRepository, type OutboundResponse } from '../repositories/outbound-http/outbound-http.repository';
import { WebhookSignerRepository } from '../repositories/webhook-signer.repository';
import { SecretBox } from '../secrets/secret-box';
import { classifyResponse, gateDelayMs, parseRetryAfter, retryDelayMs, withAttempt } from './webhook-policy';
import { WebhookStore } from './webhook-store';
import { DIRECT, type WebhookAttempt, type WebhookEndpointDoc, type WebhookMessageDoc } from './webhook.types';

/** A message nobody has looked at for this long past its due time has lost its job: the sweep queues it again. */
export const SWEEP_AFTER_MS = 120_000;
/** Delivered and failed messages (the delivery log) are kept this long. */
export const LOG_RETENTION_MS = 30 * 24 * 3600_000;
/** A gated message notes that it is alive at most this often. */
const TOUCH_EVERY_MS = 60_000;
/** What a worker holds a message for beyond the request's own timeout. */
const LEASE_MARGIN_MS = 10_000;

type Outcome = { kind: 'delivered' | 'gone' | 'failed' | 'fatal'; attempt: WebhookAttempt; retryAfterMs?: number };

/**
 * The job of one message: one attempt per run, signed for this attempt; later attempts on
 * the retry schedule (RetryLater: no BullMQ attempt spent); in order behind earlier messages of
 * the same (endpoint, orderKey); 410 disables the endpoint. A lease in the message keeps two
 * jobs of one message (a replay, a sweep) from sending it at once. Bodies and secrets are
 * never logged.
 */
@Injectable()
export class WebhookSender {
  private readonly logger = new Logger('Webhooks');

  constructor(
    private readonly store: WebhookStore,
    private readonly http: OutboundHttpRepository,
    private readonly secrets: SecretBox,
    private readonly signer: WebhookSignerRepository,
    @Inject(JOB_QUEUE) private readonly queue: Pick<JobQueueRepository, 'enqueue'>,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  async handle(payload: SendWebhookPayload): Promise<{ status: string }> {
    const messages = this.store.messages;
    const message = await messages.findOne({ _id: payload.message });
    if (!message) return { status: 'missing' };
    if (message.status !== 'pending') return { status: message.status };

    // Where it goes and what signs it (the endpoint as it is now: PATCH may have moved it).
    let url: string;
    let secrets: string[];
    let endpoint: WebhookEndpointDoc | null = null;
    try {
      if (message.endpoint === DIRECT) {
        url = message.url!;
        secrets = [this.secrets.open(message.secret!)];
      } else {
        endpoint = await this.store.endpoints.findOne({ _id: message.endpoint });
        if (!endpoint) return this.finish(message, 'failed', 'the endpoint was deleted');
        if (endpoint.disabled) return this.finish(message, 'failed', `the endpoint is disabled: ${endpoint.disabled.reason}`);
        url = endpoint.url;
        secrets = [this.secrets.open(endpoint.secret)];
        if (endpoint.previousSecret && endpoint.previousSecretUntil && endpoint.previousSecretUntil > new Date().toISOString()) {
          secrets.push(this.secrets.open(endpoint.previousSecret));
        }
      }
    } catch (err) {
      // A secret this service cannot open (sealed with another MONTAGE_SECRET_KEY): no attempt can succeed.
      return this.finish(message, 'failed', `cannot open the signing secret: ${(err as Error).message}`);
    }

    const now = Date.now();
    const due = message.nextAttemptAt ? Date.parse(message.nextAttemptAt) : now;
    if (due > now + 20) throw new RetryLater(due - now, 'not due yet'); // a second job of this message woke early

    if (message.orderKey !== undefined) {
      const earlier = await this.earlierPending(message);
      if (earlier) {
        if (now - Date.parse(message.touchedAt) > TOUCH_EVERY_MS) {
          await messages.findOneAndUpdate({ _id: message._id }, { $set: { touchedAt: new Date(now).toISOString() } });
        }
        throw new RetryLater(gateDelayMs(earlier, now), 'an earlier message of the same order key is pending');
      }
    }

    const lease = now + this.config.deliveries.webhookTimeoutMs + LEASE_MARGIN_MS;
    const claimed = await messages.findOneAndUpdate({ _id: message._id, status: 'pending', leaseUntil: { $lt: now } }, { $set: { leaseUntil: lease } });
    if (!claimed) {
      const current = await messages.findOne({ _id: message._id });
      if (!current || current.status !== 'pending') return { status: current?.status ?? 'missing' };
      throw new RetryLater(Math.max(250, Math.min(current.leaseUntil - now, 5000)), 'another worker is sending this message');
    }

    const outcome = await this.attempt(claimed, url, secrets);
    return this.record(claimed, lease, outcome, endpoint);
  }

  /** The earliest pending message of the same (endpoint, orderKey) made before this one, if any. */
  private async earlierPending(message: WebhookMessageDoc): Promise<WebhookMessageDoc | undefined> {
    const [earlier] = await this.store.messages.find(
      { endpoint: message.endpoint, orderKey: message.orderKey!, status: 'pending', seq: { $lt: message.seq }, ...(message.endpoint === DIRECT ? { url: message.url! } : {}) },
      { sort: { seq: 1 }, limit: 1 },
    );
    return earlier;
  }

  /** One signed POST; never throws for the receiver's sake. */
  private async attempt(message: WebhookMessageDoc, url: string, secrets: string[]): Promise<Outcome> {
    const at = new Date();
    let response: OutboundResponse;
    try {
      response = await this.http.send({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json', ...this.signer.sign(message._id, at, message.body, secrets) },
        body: message.body,
        timeoutMs: this.config.deliveries.webhookTimeoutMs,
        allowPrivateAddresses: this.config.deliveries.allowPrivateAddresses,
        keepBodyBytes: 0,
      });
    } catch (err) {
      const attempt: WebhookAttempt = { at: at.toISOString(), error: (err as Error).message.slice(0, 300), ms: Date.now() - at.getTime() };
      // A URL that can never be sent to is not retried; everything else (refused, timeout, DNS, a private address now) is.
      return { kind: err instanceof OutboundError && err.kind === 'bad_url' ? 'fatal' : 'failed', attempt };
    }
    const kind = classifyResponse(response.status);
    const attempt: WebhookAttempt = { at: at.toISOString(), status: response.status, ms: response.durationMs };
    if (kind === 'failed') {
      attempt.error =
        response.status >= 300 && response.status < 400
          ? `redirect (${response.status}) not followed`
          : `the receiver answered ${response.status}`;
    }
    return { kind, attempt, retryAfterMs: kind === 'failed' ? parseRetryAfter(response.headers['retry-after'], Date.now()) : undefined };
  }

  /** Writes the attempt under the lease; a failure is tried again later (RetryLater) or, past the schedule, failed for good. */
  private async record(message: WebhookMessageDoc, lease: number, outcome: Outcome, endpoint: WebhookEndpointDoc | null): Promise<{ status: string }> {
    const messages = this.store.messages;
    const attempts = withAttempt(message.attempts, outcome.attempt);
    const attemptCount = message.attemptCount + 1;
    const nowIso = new Date().toISOString();
    const mine = { _id: message._id, leaseUntil: lease };
    const describe = `webhook ${message._id} (${message.type}) to ${message.endpoint === DIRECT ? 'a direct target' : `endpoint ${message.endpoint}`} of project ${message.project}`;

    if (outcome.kind === 'delivered') {
      await messages.findOneAndUpdate(mine, { $set: { status: 'delivered', attempts, attemptCount, deliveredAt: nowIso, touchedAt: nowIso, leaseUntil: 0 }, $unset: { nextAttemptAt: 1, lastError: 1 } });
      return { status: 'delivered' };
    }

    if (outcome.kind === 'gone') {
      const reason = `the receiver answered 410 Gone to ${message._id} at ${outcome.attempt.at}`;
      await messages.findOneAndUpdate(mine, { $set: { status: 'failed', attempts, attemptCount, lastError: reason, touchedAt: nowIso, leaseUntil: 0 }, $unset: { nextAttemptAt: 1 } });
      if (endpoint) {
        const disabled = await this.store.endpoints.findOneAndUpdate({ _id: endpoint._id, disabled: { $exists: false } }, { $set: { disabled: { at: nowIso, reason }, updatedAt: nowIso } });
        if (disabled) this.logger.warn(`webhook endpoint ${endpoint._id} of project ${message.project} disabled: its receiver answered 410 Gone (PATCH disabled: false re-enables it)`);
        // Its other waiting messages are not sent (replay them once it is re-enabled).
        await messages.updateMany(
          { endpoint: endpoint._id, status: 'pending', leaseUntil: { $lt: Date.now() } },
          { $set: { status: 'failed', lastError: 'the endpoint was disabled (410 Gone)', touchedAt: nowIso }, $unset: { nextAttemptAt: 1 } },
        );
      }
      return { status: 'gone' };
    }

    const delay = outcome.kind === 'fatal' ? undefined : retryDelayMs(this.config.deliveries.webhookRetrySchedule, attemptCount, outcome.retryAfterMs);
    const lastError = outcome.attempt.error ?? `the receiver answered ${outcome.attempt.status}`;
    if (delay === undefined) {
      await messages.findOneAndUpdate(mine, { $set: { status: 'failed', attempts, attemptCount, lastError, touchedAt: nowIso, leaseUntil: 0 }, $unset: { nextAttemptAt: 1 } });
      this.logger.warn(`${describe} failed for good after ${attemptCount} attempt${attemptCount === 1 ? '' : 's'}: ${lastError}`);
      return { status: 'failed' };
    }
    const next = new Date(Date.now() + delay).toISOString();
    const kept = await messages.findOneAndUpdate(mine, { $set: { attempts, attemptCount, lastError, nextAttemptAt: next, touchedAt: nowIso, leaseUntil: 0 } });
    if (!kept) return { status: 'superseded' }; // deleted with its endpoint meanwhile
    throw new RetryLater(delay, `attempt ${attemptCount} failed`);
  }

  /** Ends a message that cannot be sent (no attempt made). */
  private async finish(message: WebhookMessageDoc, status: 'failed', reason: string): Promise<{ status: string }> {
    await this.store.messages.findOneAndUpdate(
      { _id: message._id, status: 'pending', leaseUntil: { $lt: Date.now() } },
      { $set: { status, lastError: reason, touchedAt: new Date().toISOString() }, $unset: { nextAttemptAt: 1 } },
    );
    return { status };
  }

  /**
   * Pending messages whose job is gone (the queue was away when they were made, Redis lost its
   * data, a job failed on a store error): overdue and untouched for SWEEP_AFTER_MS. Each is
   * queued again under an id of this sweep period, so every API process sweeping at once
   * queues it once. Returns how many were queued.
   */
  async sweep(nowMs = Date.now()): Promise<number> {
    const cutoff = new Date(nowMs - SWEEP_AFTER_MS).toISOString();
    const stuck = await this.store.messages.find({ status: 'pending', nextAttemptAt: { $lt: cutoff }, touchedAt: { $lt: cutoff } }, { limit: 500 });
    let queued = 0;
    for (const message of stuck) {
      if (message.leaseUntil > nowMs) continue;
      await this.queue.enqueue(WEBHOOK_QUEUE, JobName.SendWebhook, { message: message._id }, `${message._id}-sweep-${Math.floor(nowMs / SWEEP_AFTER_MS)}`);
      queued++;
    }
    if (queued > 0) this.logger.log(`queued ${queued} webhook message${queued === 1 ? '' : 's'} again (their jobs were lost)`);
    return queued;
  }

  /** Drops delivered and failed messages older than LOG_RETENTION_MS (pending ones stay whatever their age). Returns how many. */
  prune(nowMs = Date.now()): Promise<number> {
    return this.store.messages.deleteMany({ status: { $in: ['delivered', 'failed'] }, createdAt: { $lt: new Date(nowMs - LOG_RETENTION_MS).toISOString() } });
  }
}
