import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { MontageError } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { ConnectionsService } from '../connections/connections.service';
import { contentTypeOf } from '../formats/output-formats';
import { JobName, QueueKind, UPLOAD_QUEUE, type JobContext, type UploadPayload } from '../jobs/job.types';
import { JOB_QUEUE } from '../jobs/queue.module';
import { type Collection, DOCUMENT_STORE, type DocumentStore } from '../repositories/document-store/port';
import type { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { OutboundHttpRepository } from '../repositories/outbound-http/outbound-http.repository';
import { PrivateAddressError } from '../repositories/outbound-http/guarded-network';
import { type Destination, UPLOAD_TARGETS, UploadRefused, type UploadResult, type UploadTargets } from '../repositories/upload-target/port';
import { RenderEvents } from '../renders/render-events';
import { RenderRunner } from '../renders/render-runner.service';
import type { TokenDoc } from '../renders/render.types';
import { SecretBox } from '../secrets/secret-box';
import { TokensService } from '../tokens/tokens.service';
import { WebhooksService } from '../webhooks/webhooks.service';
import { applyOverrides, type DestinationInput } from './destinations';
import { UploadTasksService } from './upload-tasks.service';
import type { SealedTask, UploadDoc } from './upload.types';

/** bytesSent is written to the store at most this often per upload. */
const PROGRESS_EVERY_MS = 500;

/**
 * Runs upload jobs: waits for the stored output (rendering it first when nothing has), streams
 * it from storage to the destination's driver, records progress and the result, tells the
 * caller (webhooks, onsuccess/onerror). A retry after a crash resumes where the driver can.
 */
@Injectable()
export class UploadsService implements OnApplicationBootstrap {
  private readonly logger = new Logger('Uploads');
  private readonly uploads: Collection<UploadDoc>;
  private readonly tokensCollection: Collection<TokenDoc>;

  constructor(
    @Inject(DOCUMENT_STORE) store: DocumentStore,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    @Inject(UPLOAD_TARGETS) private readonly targets: UploadTargets,
    private readonly tasks: UploadTasksService,
    private readonly tokens: TokensService,
    private readonly runner: RenderRunner,
    private readonly connections: ConnectionsService,
    private readonly secrets: SecretBox,
    private readonly outbound: OutboundHttpRepository,
    private readonly webhooks: WebhooksService,
    events: RenderEvents,
  ) {
    this.uploads = store.collection<UploadDoc>('uploads');
    this.tokensCollection = store.collection<TokenDoc>('tokens');
    events.on(async (event) => {
      if (event.type === 'output-requested') await this.tasks.outputRequested(event.token._id, event.format);
    });
  }

  onApplicationBootstrap(): void {
    if (!this.config.deliveries.workers) return;
    this.queue.startWorkers(QueueKind.Upload, [UPLOAD_QUEUE], { [JobName.Upload]: (payload, ctx) => this.run(payload, ctx) }, { concurrency: this.config.deliveries.uploadConcurrency });
  }

  async run({ upload: id }: UploadPayload, ctx: JobContext): Promise<{ status: string }> {
    const doc = await this.uploads.findOne({ _id: id });
    if (!doc) return { status: 'gone' }; // its token was deleted
    if (doc.status === 'done' || doc.status === 'failed') return { status: doc.status };
    const token = await this.tokensCollection.findOne({ _id: doc.token });
    if (!token) {
      await this.uploads.deleteOne({ _id: id });
      return { status: 'gone' };
    }
    try {
      const located = await this.tokens.locate(token._id, doc.extension, {});
      const stored = await this.runner.awaitOutput(located, ctx.signal);
      const destination = await this.destinationOf(doc);
      const started = await this.uploads.findOneAndUpdate(
        { _id: id },
        { $set: { status: 'uploading', size: stored.size, bytesSent: 0, updatedAt: now(), ...(doc.startedAt ? {} : { startedAt: now() }) }, $inc: { attempts: 1 }, $unset: { error: 1 } },
      );
      if (started?.attempts === 1) await this.tell(token, started, 'upload.started', {});
      let lastWrite = 0;
      const result = await this.targets[destination.type].upload(
        destination as never,
        {
          size: stored.size,
          contentType: contentTypeOf(doc.extension),
          name: `${token._id}.${doc.extension}`,
          open: (start = 0) => stored.open(start > 0 ? { start, end: stored.size - 1 } : undefined),
        },
        {
          signal: ctx.signal,
          allowPrivateAddresses: this.config.deliveries.allowPrivateAddresses,
          onProgress: (bytesSent) => {
            if (Date.now() - lastWrite < PROGRESS_EVERY_MS && bytesSent < stored.size) return;
            lastWrite = Date.now();
            void this.uploads.findOneAndUpdate({ _id: id, status: 'uploading' }, { $set: { bytesSent, updatedAt: now() } }).catch(() => undefined);
          },
          resume: doc.resume ? this.secrets.openJson<Record<string, unknown>>(doc.resume) : undefined,
          saveResume: async (state) => {
            await this.uploads.findOneAndUpdate({ _id: id }, { $set: { resume: this.secrets.sealJson(state), updatedAt: now() } });
          },
        },
      );
      await this.finish(token, doc, { status: 'done', result, bytesSent: stored.size });
      return { status: 'done' };
    } catch (err) {
      if (ctx.signal.aborted) throw err; // shutting down: the job goes back to the queue as it is
      const message = plainMessage(err);
      const final = isFinal(err) || ctx.lastAttempt;
      if (final) {
        await this.finish(token, doc, { status: 'failed', error: message });
        throw new MontageError('bad_input', message, [], { permanent: true });
      }
      await this.uploads.findOneAndUpdate({ _id: id }, { $set: { status: 'retrying', error: message, updatedAt: now() } }).catch(() => undefined);
      this.logger.warn(`upload ${id} (${doc.summary}) failed, will retry: ${message}`);
      throw new Error(message);
    }
  }

  /** The destination as the driver needs it: the task's own, or its connection's (read now: keys may have rotated) with the task's fields over it. */
  private async destinationOf(doc: UploadDoc): Promise<Destination> {
    const sealed = this.secrets.openJson<SealedTask>(doc.sealed);
    if (!sealed.connection) return sealed.destination as unknown as Destination;
    const base = await this.connections.open(doc.project, sealed.connection);
    const merged = applyOverrides(base, { connection: sealed.connection, ...sealed.overrides });
    if (!merged.destination) throw new UploadRefused(`connection "${sealed.connection}" no longer accepts this task: ${merged.problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
    return merged.destination as DestinationInput as Destination;
  }

  private async finish(token: TokenDoc, doc: UploadDoc, outcome: { status: 'done'; result: UploadResult; bytesSent: number } | { status: 'failed'; error: string }): Promise<void> {
    const updated = await this.uploads.findOneAndUpdate(
      { _id: doc._id, status: { $nin: ['done', 'failed'] } },
      { $set: { ...outcome, finishedAt: now(), updatedAt: now() }, $unset: { resume: 1, ...(outcome.status === 'done' ? { error: 1 } : {}) } },
    );
    if (!updated) return; // finished by an earlier attempt
    await this.tell(token, updated, outcome.status === 'done' ? 'upload.completed' : 'upload.failed', outcome.status === 'done' ? { result: outcome.result } : { error: outcome.error });
    const sealed = this.secrets.openJson<SealedTask>(doc.sealed);
    const callback = outcome.status === 'done' ? sealed.onsuccess : sealed.onerror;
    if (callback) await this.callBack(callback, outcome.status === 'done' ? (outcome.result.url ?? outcome.result.id ?? 'done') : outcome.error, doc._id);
  }

  private async tell(token: TokenDoc, doc: UploadDoc, type: 'upload.started' | 'upload.completed' | 'upload.failed', data: Record<string, unknown>): Promise<void> {
    await this.webhooks
      .emit(
        token.project,
        type,
        { upload: doc._id, token: token._id, project: token.project, format: doc.extension, type: doc.type, destination: doc.summary, bytes: doc.size, ...data, ...(token.metadata ? { metadata: token.metadata } : {}) },
        { eventId: `${doc._id}.${type}`, orderKey: token._id },
      )
      .catch((err: Error) => this.logger.warn(`webhook ${type} for upload ${doc._id} not recorded: ${err.message}`));
  }

  /** Impossible's callbacks: GET the URL with `msg` added; a failure is logged, never the upload's. */
  private async callBack(url: string, msg: string, id: string): Promise<void> {
    const target = new URL(url);
    target.searchParams.set('msg', msg);
    try {
      const answer = await this.outbound.send({ method: 'GET', url: target.href, timeoutMs: this.config.deliveries.webhookTimeoutMs, allowPrivateAddresses: this.config.deliveries.allowPrivateAddresses });
      if (answer.status < 200 || answer.status > 299) this.logger.warn(`callback of upload ${id} answered HTTP ${answer.status}`);
    } catch (err) {
      this.logger.warn(`callback of upload ${id} failed: ${(err as Error).message}`);
    }
  }
}

/** Another attempt would fail the same way. */
function isFinal(err: unknown): boolean {
  return err instanceof UploadRefused || err instanceof PrivateAddressError || (err instanceof MontageError && (err.permanent || (err.httpStatus >= 400 && err.httpStatus < 500 && err.kind !== 'too_many')));
}

function plainMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0].slice(0, 500);
}

function now(): string {
  return new Date().toISOString();
}
