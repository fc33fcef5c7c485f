import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { MontageError, notFound } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { BATCH_FLUSH_QUEUE, BATCH_QUEUE, type FlushBatchPayload, type JobContext, JobName, QueueKind, type RenderBatchItemPayload, RetryLater } from '../jobs/job.types';
import { JOB_QUEUE } from '../jobs/queue.module';
import { RateLimitsService } from '../limits/rate-limits.service';
import { keyIdOf, ProjectsService } from '../projects/projects.service';
import { type Collection, DOCUMENT_STORE, type DocumentStore } from '../repositories/document-store/port';
import type { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { RenderRunner } from '../renders/render-runner.service';
import type { TokenDoc } from '../renders/render.types';
import { SecretBox } from '../secrets/secret-box';
import { TokensService } from '../tokens/tokens.service';
import { WebhooksService } from '../webhooks/webhooks.service';
import { parseBatchRequest } from './batch-request';
import { type BatchDoc, type BatchItemDoc, outputOf } from './batch.types';

/** A group claimed this long ago whose message is not recorded was claimed by a process that died: sent again. */
const ORPHANED_GROUP_MS = 60_000;

/**
 * Batch renders (ImageFactory's shape, Plainly's statuses): every item is a token rendered on
 * the farm by a job of its own (so a restart loses nothing); finished items go to the batch's
 * webhook in groups, each item in exactly one group.
 */
@Injectable()
export class BatchesService implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger('Batches');
  private readonly batches: Collection<BatchDoc>;
  private readonly items: Collection<BatchItemDoc>;
  private readonly tokensCollection: Collection<TokenDoc>;

  constructor(
    @Inject(DOCUMENT_STORE) store: DocumentStore,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    private readonly projects: ProjectsService,
    private readonly limits: RateLimitsService,
    private readonly tokens: TokensService,
    private readonly runner: RenderRunner,
    private readonly webhooks: WebhooksService,
    private readonly secrets: SecretBox,
  ) {
    this.batches = store.collection<BatchDoc>('batches');
    this.items = store.collection<BatchItemDoc>('batch_items');
    this.tokensCollection = store.collection<TokenDoc>('tokens');
  }

  async onModuleInit(): Promise<void> {
    await this.items.ensureIndex({ batch: 1 });
  }

  onApplicationBootstrap(): void {
    if (!this.config.deliveries.workers) return;
    this.queue.startWorkers(
      QueueKind.Batch,
      [BATCH_QUEUE],
      { [JobName.RenderBatchItem]: (payload, ctx) => this.renderItem(payload, ctx) },
      { concurrency: this.config.deliveries.batchConcurrency },
    );
    this.queue.startWorkers(QueueKind.BatchFlush, [BATCH_FLUSH_QUEUE], { [JobName.FlushBatch]: (payload) => this.flush(payload) }, { concurrency: 2 });
  }

  /** POST /v2/batch/:project → `{uuid, webhook_url, total}` (and the webhook's secret, shown once). */
  async create(projectId: string, apiKey: string | undefined, body: unknown, baseUrl: string) {
    const project = await this.projects.authenticate(projectId, apiKey);
    const keyId = keyIdOf(apiKey!);
    await this.limits.countRequest(project, keyId);
    const request = parseBatchRequest(body, this.config.deliveries.batchMaxItems);
    const id = randomUUID();
    const secret = request.webhook_url ? this.webhooks.newSecret() : undefined;
    const results = await this.tokens.createBatchTokens(
      project,
      keyId,
      { id, movie: request.movie, formats: request.formats, parallel: request.parallel, routingkey: request.routingkey, metadata: request.metadata, baseUrl },
      request.items,
    );
    const now = new Date().toISOString();
    const items: BatchItemDoc[] = request.items.map((item, index) => {
      const r = results[index];
      return 'token' in r
        ? { _id: `${id}.${index}`, batch: id, index, key: item.key, token: r.token, status: 'queued' }
        : { _id: `${id}.${index}`, batch: id, index, key: item.key, status: 'failed', error: r.error, finishedAt: now };
    });
    const refused = items.filter((i) => i.status === 'failed').length;
    await this.batches.insertOne({
      _id: id,
      project: projectId,
      movie: request.movie,
      formats: request.formats,
      ...(request.webhook_url ? { webhook: { url: request.webhook_url, secret: this.secrets.seal(secret!) } } : {}),
      ...(request.metadata ? { metadata: request.metadata } : {}),
      total: items.length,
      finished: refused,
      groups: 0,
      status: 'running',
      createdAt: now,
    });
    for (const item of items) await this.items.insertOne(item);
    const queued = items.filter((i) => i.status === 'queued');
    await this.queue.enqueueBulk(BATCH_QUEUE, JobName.RenderBatchItem, queued.map((i) => ({ payload: { batch: id, item: i._id }, jobId: `${id}-${i.index}` })), { attempts: 3, backoffMs: 2000 });
    // Items refused at the door go out like any result: in the first group.
    if (refused > 0) await this.scheduleFlush(id, refused, items.length);
    return {
      uuid: id,
      webhook_url: request.webhook_url ?? null,
      total: items.length,
      queued: queued.length,
      failed: items.filter((i) => i.status === 'failed').map((i) => ({ key: i.key, error: i.error })),
      ...(secret ? { webhook_secret: secret } : {}),
    };
  }

  /** GET /v2/batch/:uuid: counts and every item's status. */
  async get(id: string, apiKey: string | undefined, page: { offset?: number; limit?: number } = {}) {
    const batch = /^[0-9a-f-]{36}$/.test(id) ? await this.batches.findOne({ _id: id }) : null;
    if (!batch) throw notFound('unknown batch', [{ field: 'uuid', message: 'unknown batch' }]);
    await this.projects.authenticate(batch.project, apiKey);
    const all = await this.items.find({ batch: id }, { sort: { index: 1 } });
    const count = (s: string) => all.filter((i) => i.status === s).length;
    const offset = page.offset ?? 0;
    const limit = page.limit ?? 1000;
    return {
      uuid: id,
      project: batch.project,
      movie: batch.movie,
      formats: batch.formats,
      status: batch.status,
      webhook_url: batch.webhook?.url ?? null,
      total: batch.total,
      counts: { queued: count('queued'), done: count('done'), failed: count('failed'), sent: all.filter((i) => i.sent).length },
      createdAt: batch.createdAt,
      ...(batch.completedAt ? { completedAt: batch.completedAt } : {}),
      items: all.slice(offset, offset + limit).map((i) => ({
        key: i.key,
        status: i.status,
        ...(i.token ? { token: i.token } : {}),
        ...(i.public_url ? { public_url: i.public_url, urls: i.urls } : {}),
        ...(i.error ? { error: i.error } : {}),
      })),
      ...(offset + limit < all.length ? { next: { offset: offset + limit, limit } } : {}),
    };
  }

  /** One item: its outputs rendered on the farm (joining a render of identical params if one runs). */
  async renderItem({ batch: batchId, item: itemId }: RenderBatchItemPayload, ctx: JobContext): Promise<{ status: string }> {
    const item = await this.items.findOne({ _id: itemId });
    if (!item || item.status !== 'queued' || !item.token) return { status: item?.status ?? 'gone' };
    const batch = await this.batches.findOne({ _id: batchId });
    if (!batch) return { status: 'gone' };
    try {
      const urls: BatchItemDoc['urls'] = {};
      for (const format of batch.formats) {
        const located = await this.tokens.locate(item.token, format, {});
        await this.runner.awaitOutput(located, ctx.signal);
        const token = located.token;
        urls[format] = `${token.baseUrl}/v2/get/${token._id}.${format}`;
      }
      await this.finishItem(batch, item, { status: 'done', public_url: urls[batch.formats[0]]!, urls });
      return { status: 'done' };
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      const final = (err instanceof MontageError && (err.permanent || (err.httpStatus < 500 && err.kind !== 'too_many'))) || ctx.lastAttempt;
      if (!final) throw err;
      await this.finishItem(batch, item, { status: 'failed', error: (err as Error).message.split('\n')[0].slice(0, 500) });
      return { status: 'failed' };
    }
  }

  private async finishItem(batch: BatchDoc, item: BatchItemDoc, outcome: Partial<BatchItemDoc>): Promise<void> {
    const done = await this.items.findOneAndUpdate({ _id: item._id, status: 'queued' }, { $set: { ...outcome, finishedAt: new Date().toISOString() } });
    if (!done) return; // an earlier attempt finished it
    const counted = await this.batches.findOneAndUpdate({ _id: batch._id }, { $inc: { finished: 1 } });
    if (counted) await this.scheduleFlush(batch._id, counted.finished, counted.total);
  }

  /**
   * A full group, or the last item, flushes now; otherwise one flush per batch and time window,
   * `delay` after the first item of the window finished. Job ids say which: each is queued once.
   */
  private async scheduleFlush(batchId: string, finished: number, total: number): Promise<void> {
    const { batchWebhookSize: size, batchWebhookDelayMs: delay } = this.config.deliveries;
    if (finished === total || finished % size === 0) {
      await this.queue.enqueue(BATCH_FLUSH_QUEUE, JobName.FlushBatch, { batch: batchId }, `${batchId}-f${finished}`);
    } else {
      const window = delay > 0 ? Math.floor(Date.now() / delay) : Date.now();
      await this.queue.enqueue(BATCH_FLUSH_QUEUE, JobName.FlushBatch, { batch: batchId }, `${batchId}-w${window}`, { delayMs: delay });
    }
  }

  /**
   * Sends finished, unsent items in groups of `size`: each item is claimed for one group with a
   * guarded update (never two), then the group's message is recorded with an id derived from
   * the group (recording it twice is one message). A partial group waits until its oldest item
   * is `delay` old, unless the batch is finished.
   */
  async flush({ batch: batchId }: FlushBatchPayload): Promise<{ sent: number }> {
    const batch = await this.batches.findOne({ _id: batchId });
    if (!batch) return { sent: 0 };
    const { batchWebhookSize: size, batchWebhookDelayMs: delay } = this.config.deliveries;
    let sent = await this.resendOrphans(batch);
    for (;;) {
      const ready = await this.items.find({ batch: batchId, status: { $in: ['done', 'failed'] }, group: { $exists: false } }, { sort: { finishedAt: 1 }, limit: size });
      if (ready.length === 0) break;
      const current = (await this.batches.findOne({ _id: batchId }))!;
      const allFinished = current.finished >= current.total;
      if (ready.length < size && !allFinished) {
        const age = Date.now() - Date.parse(ready[0].finishedAt!);
        if (age < delay) throw new RetryLater(delay - age + 50, 'a partial group waits for more items');
      }
      const group = (await this.batches.findOneAndUpdate({ _id: batchId }, { $inc: { groups: 1 } }))!.groups;
      const claimedAt = new Date().toISOString();
      const claimed: BatchItemDoc[] = [];
      for (const item of ready) {
        const mine = await this.items.findOneAndUpdate({ _id: item._id, group: { $exists: false } }, { $set: { group, claimedAt } });
        if (mine) claimed.push(mine);
      }
      if (claimed.length === 0) continue; // another flush took them all
      await this.sendGroup(current, group, claimed);
      sent += claimed.length;
    }
    await this.completeIfDone(batchId);
    return { sent };
  }

  private async sendGroup(batch: BatchDoc, group: number, items: BatchItemDoc[]): Promise<void> {
    if (batch.webhook) {
      await this.webhooks.sendDirect(
        batch.project,
        { url: batch.webhook.url, secret: this.secrets.open(batch.webhook.secret) },
        'batch.output',
        { uuid: batch._id, output: items.sort((a, b) => a.index - b.index).map(outputOf) },
        { eventId: `${batch._id}.group.${group}`, orderKey: batch._id },
      );
    }
    await this.items.updateMany({ batch: batch._id, group }, { $set: { sent: true } });
  }

  /** Groups claimed by a process that died before recording their message. */
  private async resendOrphans(batch: BatchDoc): Promise<number> {
    const cutoff = new Date(Date.now() - ORPHANED_GROUP_MS).toISOString();
    const orphans = await this.items.find({ batch: batch._id, group: { $exists: true }, sent: { $ne: true }, claimedAt: { $lt: cutoff } });
    const groups = new Map<number, BatchItemDoc[]>();
    for (const item of orphans) groups.set(item.group!, [...(groups.get(item.group!) ?? []), item]);
    for (const [group, items] of groups) await this.sendGroup(batch, group, items);
    return orphans.length;
  }

  private async completeIfDone(batchId: string): Promise<void> {
    const batch = await this.batches.findOne({ _id: batchId });
    if (!batch || batch.status === 'completed' || batch.finished < batch.total) return;
    if ((await this.items.countDocuments({ batch: batchId, sent: { $ne: true } })) > 0) return;
    const completed = await this.batches.findOneAndUpdate({ _id: batchId, status: 'running' }, { $set: { status: 'completed', completedAt: new Date().toISOString() } });
    if (!completed) return;
    const failed = await this.items.countDocuments({ batch: batchId, status: 'failed' });
    await this.webhooks
      .emit(batch.project, 'batch.completed', { uuid: batchId, project: batch.project, movie: batch.movie, total: batch.total, done: batch.total - failed, failed, ...(batch.metadata ? { metadata: batch.metadata } : {}) }, { eventId: `${batchId}.completed` })
      .catch((err: Error) => this.logger.warn(`batch.completed of ${batchId} not recorded: ${err.message}`));
  }
}
