import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { badInput, type ErrorDetail, MontageError } from '../common/errors';
import { createHandlebarsEnv, templateFunctions } from '../compiler/handlebars-env';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { ConnectionsService, DEFAULT_FILENAME } from '../connections/connections.service';
import type { OutputFormat } from '../formats/output-formats';
import { JobName, UPLOAD_QUEUE } from '../jobs/job.types';
import { JOB_QUEUE } from '../jobs/queue.module';
import { type Collection, DOCUMENT_STORE, type DocumentStore } from '../repositories/document-store/port';
import type { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { isPublicAddress } from '../assets/url-policy';
import { type Destination, DestinationType } from '../repositories/upload-target/port';
import { SecretBox } from '../secrets/secret-box';
import type { UploadTaskInput } from '../tokens/render-request';
import { applyOverrides, type ConnectionRef, describeDestination, type DestinationInput, NEEDS_FILENAME, remoteNameProblem } from './destinations';
import { type SealedTask, type UploadDoc, uploadView, type UploadView } from './upload.types';

const templates = templateFunctions(createHandlebarsEnv());

/**
 * Upload tasks as records: validated and sealed when a token is made, queued when their time
 * comes (async ones at once, sync ones when the first viewer asks for the output), shown in
 * progress without a credential.
 */
@Injectable()
export class UploadTasksService implements OnModuleInit {
  private readonly logger = new Logger('Uploads');
  readonly uploads: Collection<UploadDoc>;

  constructor(
    @Inject(DOCUMENT_STORE) store: DocumentStore,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    private readonly secrets: SecretBox,
    private readonly connections: ConnectionsService,
  ) {
    this.uploads = store.collection<UploadDoc>('uploads');
  }

  async onModuleInit(): Promise<void> {
    await this.uploads.ensureIndex({ token: 1 });
  }

  /**
   * The token's tasks, checked now (a connection that does not exist, a filename that renders
   * to `../x`, a private host): a 400 names `upload.<n>.destination.<field>`. Nothing is stored.
   */
  async prepare(project: string, token: string, tasks: UploadTaskInput[], params: Record<string, unknown>, covered: OutputFormat[]): Promise<UploadDoc[]> {
    const now = new Date().toISOString();
    const docs: UploadDoc[] = [];
    const problems: ErrorDetail[] = [];
    for (const [index, task] of tasks.entries()) {
      const at = `upload.${index}`;
      if (!covered.includes(task.extension)) {
        problems.push({ field: `${at}.extension`, message: `this request has no .${task.extension} output (it has ${covered.join(', ')})` });
        continue;
      }
      const context = { ...params, token, extension: task.extension };
      let destination: DestinationInput;
      const sealed: SealedTask = { onsuccess: task.onsuccess, onerror: task.onerror };
      if ('connection' in task.destination) {
        const ref = task.destination as ConnectionRef;
        const base = await this.connections.open(project, ref.connection).catch((err: Error) => {
          problems.push({ field: `${at}.destination.connection`, message: err instanceof MontageError ? err.message : 'cannot be read' });
          return undefined;
        });
        if (!base) continue;
        const merged = applyOverrides(base, ref);
        if (!merged.destination) {
          problems.push(...merged.problems.map((p) => ({ field: `${at}.destination.${p.field}`, message: p.message })));
          continue;
        }
        destination = merged.destination;
        sealed.connection = ref.connection;
        sealed.overrides = Object.fromEntries(Object.entries(ref).filter(([k]) => k !== 'connection'));
      } else {
        destination = task.destination as DestinationInput;
      }
      // Names are rendered once, now: the upload lands where the answer says.
      const named = this.renderNames(destination, context, `${at}.destination`, problems);
      if (!named) continue;
      const hostProblem = this.hostProblem(named);
      if (hostProblem) {
        problems.push({ field: `${at}.destination.${hostProblem.field}`, message: hostProblem.message });
        continue;
      }
      if (sealed.connection) sealed.overrides = { ...sealed.overrides, ...('filename' in named && named.filename !== undefined ? { filename: named.filename } : {}) };
      else sealed.destination = named as unknown as Record<string, unknown>;
      docs.push({
        _id: `upl_${randomBytes(12).toString('base64url')}`,
        token,
        project,
        index,
        extension: task.extension,
        async: task.async,
        type: named.type,
        summary: describeDestination(named as Destination),
        sealed: this.secrets.sealJson(sealed),
        status: 'pending',
        bytesSent: 0,
        attempts: 0,
        createdAt: now,
        updatedAt: now,
      });
    }
    if (problems.length) throw badInput(`invalid upload task: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`, problems);
    return docs;
  }

  /** Stores the tasks (before their token, so a token never names tasks that are not there). */
  async save(docs: UploadDoc[]): Promise<void> {
    for (const doc of docs) await this.uploads.insertOne(doc);
  }

  /** Queues the async tasks, once their token is stored: they render and upload in the background now. */
  async startAsync(docs: UploadDoc[]): Promise<void> {
    for (const doc of docs.filter((d) => d.async)) await this.enqueue(doc);
  }

  /** The first request for an output starts its sync uploads (the job waits for the stored output). */
  async outputRequested(tokenId: string, format: OutputFormat): Promise<void> {
    const pending = await this.uploads.find({ token: tokenId, extension: format, async: false, status: 'pending' });
    for (const doc of pending) await this.enqueue(doc);
  }

  /** Queued first (the job id is the upload's: queuing twice is one job), then marked. */
  async enqueue(doc: UploadDoc): Promise<void> {
    const { uploadAttempts, uploadBackoffMs } = this.config.deliveries;
    await this.queue.enqueue(UPLOAD_QUEUE, JobName.Upload, { upload: doc._id }, doc._id, { attempts: uploadAttempts, backoffMs: uploadBackoffMs });
    await this.uploads.findOneAndUpdate({ _id: doc._id, status: 'pending' }, { $set: { status: 'queued', updatedAt: new Date().toISOString() } });
  }

  async views(tokenId: string): Promise<UploadView[]> {
    return (await this.uploads.find({ token: tokenId }, { sort: { index: 1 } })).map(uploadView);
  }

  /** Handlebars in names (`videos/{{name}}.mp4`), with the token's params: the result must be a safe remote name. */
  private renderNames(destination: DestinationInput, context: Record<string, unknown>, at: string, problems: ErrorDetail[]): DestinationInput | undefined {
    const out = { ...destination } as DestinationInput & { filename?: string };
    const source = (out as { filename?: string }).filename ?? (NEEDS_FILENAME[out.type] ? DEFAULT_FILENAME : undefined);
    if (source === undefined) return out;
    let rendered: string;
    try {
      rendered = templates.text(source)(context).trim();
    } catch (err) {
      problems.push({ field: `${at}.filename`, message: `is not a valid template: ${(err as Error).message.split('\n')[0].slice(0, 200)}` });
      return undefined;
    }
    const problem = remoteNameProblem(rendered);
    if (problem) {
      problems.push({ field: `${at}.filename`, message: `"${rendered.slice(0, 100)}" ${problem}` });
      return undefined;
    }
    (out as { filename?: string }).filename = rendered;
    return out;
  }

  /** Literal private addresses are refused now; names that resolve to one are refused when the upload connects. */
  private hostProblem(d: DestinationInput): { field: string; message: string } | undefined {
    if (this.config.deliveries.allowPrivateAddresses) return undefined;
    const literal = (host: string) => {
      const bare = host.replace(/^\[(.*)\](:\d+)?$/, '$1').replace(/^([\d.]+):\d+$/, '$1');
      return /^[\d.]+$/.test(bare) || bare.includes(':') ? bare : undefined;
    };
    const check = (field: string, host: string | undefined) => {
      const ip = host ? literal(host) : undefined;
      if (ip && !isPublicAddress(ip)) return { field, message: `${host} is a private, loopback or link-local address` };
      if (host && /^localhost$/i.test(host.replace(/:\d+$/, ''))) return { field, message: 'localhost is not allowed' };
      return undefined;
    };
    const urlHost = (u: string) => {
      try {
        return new URL(u).host;
      } catch {
        return undefined;
      }
    };
    switch (d.type) {
      case DestinationType.S3:
        return check('s3host', d.s3host);
      case DestinationType.Http:
        return check('url', urlHost(d.url));
      case DestinationType.Azure:
        return check('sas_url', urlHost(d.sas_url));
      case DestinationType.Ftp:
      case DestinationType.Sftp:
        return check('host', d.host);
      default:
        return undefined;
    }
  }
}
