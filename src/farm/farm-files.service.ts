import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { badInput, conflict, MontageError, notFound, tooLarge, unavailable, unusableMedia } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { EngineName } from '../engines/engine';
import { JOB_QUEUE } from '../jobs/queue.module';
import { JobName, queueName } from '../jobs/job.types';
import { ArchiveRepository, ArchiveTooLarge } from '../repositories/archive.repository';
import { type Collection, DOCUMENT_STORE, type DocumentStore, type Filter } from '../repositories/document-store/port';
import { FarmSpoolRepository, type FormRequest, MultipartProblem, type SpooledFile, SpoolTooLarge } from '../repositories/farm-spool.repository';
import type { JobQueueRepository } from '../repositories/job-queue/job-queue.repository';
import { OUTPUT_STORAGE, type OutputStorage } from '../repositories/output-storage/port';
import { farmFileKey, stagedUploadKey } from './farm-keys';
import {
  checkGltfJson,
  type DetectedKind,
  detectKind,
  escapingExternalFiles,
  extOf,
  farmKindOf,
  folderOf,
  glbJsonChunk,
  GltfProblem,
  joinPath,
  normaliseFarmPath,
  pathProblem,
} from './farm-paths';
import { FARM_FILES_COLLECTION, type FarmFileDoc, type FarmFileRef, type ModelInfo, type SceneInventory } from './farm.types';
import { FarmUrlsService } from './farm-urls.service';

export const FARM_STAGES_COLLECTION = 'farm_stages';

/** What `POST /upload` asked for, until its confirm. `_id` is the `filename` the client confirms with. */
export interface FarmStageDoc {
  _id: string;
  project: string;
  path: string;
  createdAt: string;
  expiresAt: string;
  /** Set while a confirm works on it: a second confirm is a 409, not a race over the staged object. */
  confirming?: string;
}

/** A confirm that has held its stage this long died with its API: another may take it over. */
const STALE_CONFIRM_MS = 15 * 60_000;
/** How long past its URL's expiry an unconfirmed upload is kept. */
const STAGE_GRACE_MS = 24 * 3600_000;
/** .blend files of one archive read by nodes at confirm, at most (each is a Blender start on a node). */
export const MAX_BLENDS_PER_ARCHIVE = 8;

/** One confirmed file as the API shows it. */
export interface FarmFileView {
  upload_id: string;
  path: string;
  kind: FarmFileDoc['kind'];
  sha256: string;
  size: number;
  existed?: boolean;
  inventory?: SceneInventory;
  model?: ModelInfo;
  created_at: string;
}

/** A glTF's JSON is read whole: more than this is not a model we render. */
const MAX_GLTF_JSON_BYTES = 64 * 1024 * 1024;
/** How many files `filesBeside` lays out with a scene at most. */
const MAX_FILES_BESIDE = 10_000;

/**
 * Uploads of the farm (Rentaflop's upload → confirm, Fox's skip-the-same-file): staged objects
 * are checked from their bytes at confirm and kept content-addressed per project; .blend
 * files are inspected by a render node with Blender before they are accepted.
 */
@Injectable()
export class FarmFilesService implements OnModuleInit {
  private readonly logger = new Logger('FarmFiles');
  private readonly files: Collection<FarmFileDoc>;
  private readonly stages: Collection<FarmStageDoc>;

  constructor(
    @Inject(DOCUMENT_STORE) store: DocumentStore,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    private readonly urls: FarmUrlsService,
    private readonly spool: FarmSpoolRepository,
    private readonly archives: ArchiveRepository,
  ) {
    this.files = store.collection<FarmFileDoc>(FARM_FILES_COLLECTION);
    this.stages = store.collection<FarmStageDoc>(FARM_STAGES_COLLECTION);
  }

  async onModuleInit(): Promise<void> {
    await this.files.ensureIndex({ project: 1, sha256: 1 });
    await this.files.ensureIndex({ project: 1, path: 1 });
  }

  /** `POST /v1/farm/upload`: where to send the bytes, or, for bytes the project has (`sha256`), the file at once. */
  async upload(project: string, body: unknown, base: string): Promise<Record<string, unknown>> {
    const input = asObject(body);
    const path = normaliseFarmPath(input.filename, 'filename');
    const maxBytes = this.config.farm.maxFileBytes;
    if (input.size !== undefined) {
      if (!Number.isSafeInteger(input.size) || (input.size as number) < 0) throw badInput('size must be a whole number of bytes', [{ field: 'size', message: 'not a whole number ≥ 0' }]);
      if ((input.size as number) > maxBytes) throw tooLarge(`size: files of the farm are at most ${maxBytes} bytes`, [{ field: 'size', message: `over ${maxBytes} bytes` }]);
    }
    if (input.sha256 !== undefined) {
      if (typeof input.sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(input.sha256)) throw badInput('sha256 must be 64 hex digits', [{ field: 'sha256', message: 'not a sha-256 in hex' }]);
      const same = await this.withSameBytes(project, path, input.sha256.toLowerCase());
      if (same) return { status: 200, exists: true, upload_id: same._id, path: same.path, filename: path, kind: same.kind };
    }
    const id = randomBytes(16).toString('hex');
    const now = Date.now();
    const ttl = this.config.farm.urlTtlSec;
    const expiresAt = new Date(now + ttl * 1000).toISOString();
    await this.stages.insertOne({ _id: id, project, path, createdAt: new Date(now).toISOString(), expiresAt });
    const target = (await this.storage.presignUpload(stagedUploadKey(id), 'upload', { maxBytes, expiresSec: ttl })) ?? this.urls.uploadTarget(base, id, ttl);
    return { status: 200, filename: id, path, url: target.url, fields: target.fields, method: target.method, expires_at: expiresAt, max_bytes: maxBytes };
  }

  /**
   * `POST /v1/farm/upload-target` (the API as the upload URL: local storage): a signed form,
   * its file streamed into storage as the staged object, capped while it arrives.
   */
  async receive(req: FormRequest): Promise<void> {
    const maxBytes = this.config.farm.maxFileBytes;
    try {
      await this.spool.receiveForm(req, maxBytes, async (fields, body) => {
        const id = this.urls.verifyUploadTarget(fields);
        const stage = await this.stages.findOne({ _id: id });
        if (!stage || Date.parse(stage.expiresAt) < Date.now()) throw notFound('this upload was confirmed already or has expired: ask for a new one', [{ field: 'key', message: 'unknown upload' }]);
        await this.storage.storeOutput(stagedUploadKey(id), 'upload', (file) => this.spool.writeTo(body, file));
      });
    } catch (err) {
      if (err instanceof SpoolTooLarge) throw tooLarge(`file: uploads are at most ${maxBytes} bytes; nothing was stored`, [{ field: 'file', message: `over ${maxBytes} bytes` }]);
      if (err instanceof MultipartProblem) throw badInput(`send a multipart/form-data form: the fields, then "file" (${err.message}); nothing was stored`, [{ field: 'file', message: err.message }]);
      throw err;
    }
  }

  /** `POST /v1/farm/confirm-upload`: the staged bytes checked and kept; the stage is gone afterwards (unless nothing was uploaded yet, or no node could look). */
  async confirm(project: string, body: unknown): Promise<Record<string, unknown>> {
    const input = asObject(body);
    if (typeof input.filename !== 'string' || !/^[0-9a-f]{32}$/.test(input.filename)) {
      throw badInput('filename must be the "filename" that POST /upload answered', [{ field: 'filename', message: 'not an upload of this API' }]);
    }
    const stage = await this.claimStage(project, input.filename);
    let keepStage = false;
    try {
      const staged = await this.storage.stat(stagedUploadKey(stage._id), 'upload');
      if (!staged) {
        keepStage = true;
        throw notFound('nothing was uploaded for this filename yet: post the file to the upload URL first', [{ field: 'filename', message: 'not uploaded' }]);
      }
      return await this.confirmStaged(project, stage, staged.size);
    } catch (err) {
      keepStage ||= err instanceof MontageError && err.kind === 'unavailable';
      throw err;
    } finally {
      if (keepStage) await this.stages.findOneAndUpdate({ _id: stage._id }, { $unset: { confirming: 1 } }).catch(() => undefined);
      else await this.dropStage(stage._id);
    }
  }

  /** The stage, held for this confirm (one document update: two confirms of one upload never race over its object). */
  private async claimStage(project: string, id: string): Promise<FarmStageDoc> {
    const now = new Date().toISOString();
    const claimed =
      (await this.stages.findOneAndUpdate({ _id: id, project, confirming: { $exists: false } }, { $set: { confirming: now } })) ??
      (await this.stages.findOneAndUpdate({ _id: id, project, confirming: { $lt: new Date(Date.now() - STALE_CONFIRM_MS).toISOString() } }, { $set: { confirming: now } }));
    if (claimed) return claimed;
    if (await this.stages.findOne({ _id: id, project })) throw conflict('this upload is being confirmed by another request: wait for its answer', [{ field: 'filename', message: 'being confirmed' }]);
    throw notFound('no upload waits for this filename (confirmed already, expired, or of another project)', [{ field: 'filename', message: 'unknown upload' }]);
  }

  private async dropStage(id: string): Promise<void> {
    await this.storage.remove(stagedUploadKey(id), 'upload').catch(() => undefined);
    await this.stages.deleteOne({ _id: id }).catch(() => undefined);
  }

  /**
   * Uploads asked for and never confirmed: their staged objects (up to FARM_MAX_FILE_BYTES each)
   * and stages go once their URL has expired and a day more has passed (a client may confirm late).
   */
  async sweepStages(now = Date.now()): Promise<number> {
    const expired = await this.stages.find({ expiresAt: { $lt: new Date(now - STAGE_GRACE_MS).toISOString() } }, { limit: 500 });
    let removed = 0;
    for (const stage of expired) {
      if (stage.confirming && Date.parse(stage.confirming) > now - STALE_CONFIRM_MS) continue; // a confirm is working on it
      await this.dropStage(stage._id);
      removed++;
    }
    return removed;
  }

  async get(project: string, uploadId: unknown): Promise<FarmFileDoc> {
    const doc = typeof uploadId === 'string' && /^file_[0-9a-f]{24}$/.test(uploadId) ? await this.files.findOne({ _id: uploadId, project }) : null;
    if (!doc) throw notFound('no upload of this project has this upload_id', [{ field: 'upload_id', message: 'unknown upload' }]);
    return doc;
  }

  /** The newest file of the project at this path. */
  async byPath(project: string, path: unknown): Promise<FarmFileDoc> {
    const normal = normaliseFarmPath(path, 'path');
    const [doc] = await this.files.find({ project, path: normal }, { sort: { createdAt: -1 }, limit: 1 });
    if (!doc) throw notFound(`no upload of this project is at ${normal}`, [{ field: 'path', message: 'unknown path' }]);
    return doc;
  }

  /** Every file of the project in the main file's folder and below it (newest per path), the main file's path left out. */
  async filesBeside(project: string, main: FarmFileDoc): Promise<FarmFileRef[]> {
    const folder = folderOf(main.path);
    const filter: Filter = folder ? { project, path: { $gte: `${folder}/`, $lt: `${folder}/\uffff` } } : { project };
    const docs = await this.files.find(filter, { sort: { createdAt: -1 }, limit: MAX_FILES_BESIDE * 4 });
    const newest = new Map<string, FarmFileDoc>();
    for (const doc of docs) if (doc.path !== main.path && !newest.has(doc.path)) newest.set(doc.path, doc);
    return [...newest.values()].slice(0, MAX_FILES_BESIDE).map((d) => this.ref(d));
  }

  ref(doc: FarmFileDoc): FarmFileRef {
    return { path: doc.path, storageKey: doc.storageKey, ext: doc.ext, sha256: doc.sha256, size: doc.size };
  }

  async list(project: string, options: { page: number; pageSize: number }): Promise<Record<string, unknown>> {
    const page = Math.max(1, options.page);
    const pageSize = Math.min(200, Math.max(1, options.pageSize));
    const docs = await this.files.find({ project }, { sort: { createdAt: -1 }, limit: page * pageSize });
    return { status: 200, page, page_size: pageSize, total: await this.files.countDocuments({ project }), uploads: docs.slice((page - 1) * pageSize).map(view) };
  }

  private async withSameBytes(project: string, path: string, sha256: string): Promise<FarmFileDoc | undefined> {
    const [same] = await this.files.find({ project, sha256 }, { sort: { createdAt: -1 }, limit: 1 });
    if (!same || !(await this.storage.stat(same.storageKey, same.ext))) return undefined;
    if (same.path === path) return same;
    const [atPath] = await this.files.find({ project, path, sha256 }, { limit: 1 });
    if (atPath) return atPath;
    // The same bytes under another path: a file of its own, sharing the stored object.
    const doc: FarmFileDoc = { ...same, _id: newFileId(), path, createdAt: new Date().toISOString() };
    delete doc.archive;
    await this.files.insertOne(doc);
    return doc;
  }

  private async confirmStaged(project: string, stage: FarmStageDoc, stagedSize: number): Promise<Record<string, unknown>> {
    const maxBytes = this.config.farm.maxFileBytes;
    if (stagedSize > maxBytes) throw tooLarge(`${stage.path}: files of the farm are at most ${maxBytes} bytes`, [{ field: 'filename', message: `over ${maxBytes} bytes` }]);
    const spooled = await this.spool.spool(await this.storage.read(stagedUploadKey(stage._id), 'upload'), maxBytes).catch((err: unknown) => {
      if (err instanceof SpoolTooLarge) throw tooLarge(`${stage.path}: files of the farm are at most ${maxBytes} bytes`, [{ field: 'filename', message: `over ${maxBytes} bytes` }]);
      throw err;
    });
    const written: Array<{ key: string; ext: string }> = [];
    try {
      const detected = detectKind(stage.path, spooled.head, 'filename');
      if (detected.kind === 'archive') return await this.confirmArchive(project, stage.path, spooled, detected.format, written);
      const { doc, existed } = await this.checkAndStore(project, stage.path, spooled, detected, 'filename', written);
      await this.inspectBlends(project, [doc], 'filename');
      const kept = await this.keep(doc);
      return { status: 200, ...view(kept), existed };
    } catch (err) {
      await this.forget(written);
      throw err;
    } finally {
      await this.spool.remove(spooled.file);
    }
  }

  /** A zip or tar: every entry checked before any is read, then each stored as a file of its own in the archive's folder. */
  private async confirmArchive(project: string, archivePath: string, spooled: SpooledFile, format: 'zip' | 'tar', written: Array<{ key: string; ext: string }>) {
    const { maxArchiveEntries, maxArchiveBytes, maxFileBytes } = this.config.farm;
    const entries = await this.archives.listEntries(spooled.file, format, maxArchiveEntries).catch((err: Error) => {
      throw unusableMedia(`${archivePath}: the ${format} archive cannot be read`, [{ field: 'filename', message: 'unreadable archive' }], { internal: err.message });
    });
    if (entries.length > maxArchiveEntries) throw unusableMedia(`${archivePath}: more than ${maxArchiveEntries} entries`, [{ field: 'filename', message: 'too many entries' }]);
    const folder = folderOf(archivePath);
    const paths = new Map<string, string>();
    let claimed = 0;
    for (const entry of entries) {
      const refuse = (why: string) => unusableMedia(`${archivePath}: entry ${JSON.stringify(entry.name.slice(0, 200))} ${why}; nothing was stored`, [{ field: `entry:${entry.name.slice(0, 200)}`, message: why }]);
      if (entry.type === 'directory') continue;
      if (entry.type !== 'file') throw refuse(`is a ${entry.type === 'link' ? 'hard link' : entry.type} (only files and folders are taken)`);
      const { path, problem } = pathProblem(entry.name);
      if (!path) throw refuse(problem!);
      if (entry.size > maxFileBytes) throw refuse(`is over ${maxFileBytes} bytes`);
      claimed += entry.size;
      paths.set(entry.name, joinPath(folder, path));
    }
    if (claimed > maxArchiveBytes) throw unusableMedia(`${archivePath}: unpacks to more than ${maxArchiveBytes} bytes`, [{ field: 'filename', message: 'too large unpacked' }]);
    if (paths.size === 0) throw unusableMedia(`${archivePath}: the archive has no files`, [{ field: 'filename', message: 'empty archive' }]);

    const stored = new Map<string, { doc: FarmFileDoc; existed: boolean }>();
    await this.archives
      .eachFile(spooled.file, format, maxArchiveBytes, async (name, body) => {
        const path = paths.get(name);
        if (!path) return void body.resume();
        const entryFile = await this.spool.spool(body, maxFileBytes).catch((err: unknown) => {
          if (err instanceof SpoolTooLarge) throw unusableMedia(`${archivePath}: entry ${path} is over ${maxFileBytes} bytes; nothing was stored`, [{ field: `entry:${path}`, message: 'too large' }]);
          throw err;
        });
        try {
          const detected = detectKind(path, entryFile.head, `entry:${path}`);
          // An archive inside an archive is kept as it is, not unpacked.
          const kind: DetectedKind = detected.kind === 'archive' ? { kind: 'asset' } : detected;
          const result = await this.checkAndStore(project, path, entryFile, kind, `entry:${path}`, written);
          result.doc.archive = farmFileKey(project, spooled.sha256);
          stored.set(path, result);
        } finally {
          await this.spool.remove(entryFile.file);
        }
      })
      .catch((err: unknown) => {
        if (err instanceof ArchiveTooLarge) throw unusableMedia(`${archivePath}: unpacks to more than ${maxArchiveBytes} bytes; nothing was stored`, [{ field: 'filename', message: 'too large unpacked' }]);
        if (err instanceof MontageError) throw err;
        throw unusableMedia(`${archivePath}: the ${format} archive cannot be read; nothing was stored`, [{ field: 'filename', message: 'unreadable archive' }], { internal: (err as Error).message });
      });
    const results = [...stored.values()];
    const blends = results.filter((r) => r.doc.kind === 'blend').length;
    if (blends > MAX_BLENDS_PER_ARCHIVE) {
      throw unusableMedia(`${archivePath}: ${blends} .blend files in one archive; at most ${MAX_BLENDS_PER_ARCHIVE} (each is read by Blender on a node): upload the scenes apart, with their assets in archives of their own`, [{ field: 'filename', message: 'too many .blend files' }]);
    }
    await this.inspectBlends(project, results.map((r) => r.doc), 'entry');
    const kept: Array<{ doc: FarmFileDoc; existed: boolean }> = [];
    for (const r of results) kept.push({ doc: await this.keep(r.doc), existed: r.existed });
    // What a render of "the upload" means: its one .blend (the shallowest, first by name, if several), else its model, else its first file.
    const byDepth = [...kept].sort((a, b) => a.doc.path.split('/').length - b.doc.path.split('/').length || (a.doc.path < b.doc.path ? -1 : 1));
    const main = byDepth.find((r) => r.doc.kind === 'blend') ?? byDepth.find((r) => r.doc.kind === 'model') ?? byDepth[0];
    return {
      status: 200,
      ...view(main.doc),
      existed: kept.every((r) => r.existed),
      archive: { path: archivePath, sha256: spooled.sha256, size: spooled.size, entries: kept.length },
      files: kept.map((r) => ({ ...view(r.doc), existed: r.existed })),
    };
  }

  /** A file's kind checked from its bytes (glTF: its JSON), then stored content-addressed unless the project has those bytes already. */
  private async checkAndStore(project: string, path: string, file: SpooledFile, detected: DetectedKind, field: string, written: Array<{ key: string; ext: string }>) {
    let model: ModelInfo | undefined;
    if (detected.kind === 'glb' || detected.kind === 'gltf') model = await this.checkModel(path, file, detected.kind, field);
    const storageKey = farmFileKey(project, file.sha256);
    const ext = extOf(path);
    const existed = !!(await this.storage.stat(storageKey, ext));
    if (!existed) {
      await this.storage.storeOutput(storageKey, ext, (target) => this.spool.copyTo(file.file, target));
      written.push({ key: storageKey, ext });
    }
    const doc: FarmFileDoc = {
      _id: newFileId(),
      project,
      path,
      kind: farmKindOf(detected),
      sha256: file.sha256,
      size: file.size,
      storageKey,
      ext,
      ...(model ? { model } : {}),
      createdAt: new Date().toISOString(),
    };
    return { doc, existed };
  }

  private async checkModel(path: string, file: SpooledFile, container: 'glb' | 'gltf', field: string): Promise<ModelInfo> {
    const refuse = (why: string) => unusableMedia(`${path}: ${why}`, [{ field, message: why }]);
    try {
      let json: Buffer;
      if (container === 'glb') {
        const chunk = glbJsonChunk(await this.spool.readRange(file.file, 0, 20), file.size);
        if (chunk.length > MAX_GLTF_JSON_BYTES) throw refuse(`its JSON is over ${MAX_GLTF_JSON_BYTES} bytes`);
        json = await this.spool.readRange(file.file, chunk.offset, chunk.length);
      } else {
        if (file.size > MAX_GLTF_JSON_BYTES) throw refuse(`a .gltf is at most ${MAX_GLTF_JSON_BYTES} bytes (put buffers in .bin files beside it, or send a .glb)`);
        json = await this.spool.readRange(file.file, 0, file.size);
      }
      const { external, ...model } = checkGltfJson(json.toString('utf8'), container);
      if (container === 'glb' && external.length > 0) throw refuse('a .glb must embed its buffers and images');
      return { ...model, ...(external.length > 0 ? { external: external.slice(0, 100) } : {}) };
    } catch (err) {
      if (err instanceof GltfProblem) throw refuse(`not a usable glTF 2.0 model: ${err.message}`);
      throw err;
    }
  }

  /** Each .blend's inventory (known for the same bytes, or read by a node); its external files must stay in its folder. */
  private async inspectBlends(project: string, docs: FarmFileDoc[], field: 'filename' | 'entry'): Promise<void> {
    for (const doc of docs.filter((d) => d.kind === 'blend')) {
      const fieldName = field === 'entry' ? `entry:${doc.path}` : 'filename';
      const [known] = await this.files.find({ project, storageKey: doc.storageKey, inventory: { $exists: true } }, { limit: 1 });
      const inventory = known?.inventory ?? (await this.inspect(project, doc, fieldName));
      const escaping = escapingExternalFiles(inventory.externalFiles ?? []);
      if (escaping.length > 0) {
        throw unusableMedia(
          `${doc.path}: the scene uses files outside its folder, which no node lays out (make them relative to the .blend, beside or below it): ${escaping.slice(0, 20).join(', ')}`,
          escaping.slice(0, 20).map((f) => ({ field: fieldName, message: `external file ${f}` })),
        );
      }
      doc.inventory = inventory;
    }
  }

  private async inspect(project: string, doc: FarmFileDoc, field: string): Promise<SceneInventory> {
    const nodes = await this.queue.liveNodes().catch(() => []);
    const withBlender = nodes.filter((n) => (n.engines ?? []).includes(EngineName.Blender));
    const node = withBlender.find((n) => n.routingKeys.some((k) => this.config.routingKeys.includes(k))) ?? withBlender[0];
    if (!node) throw unavailable('no render node with Blender is up to read the .blend: start one (BLENDER_ENABLED=1 with Blender installed), then confirm again', 30);
    const routingKey = node.routingKeys.find((k) => this.config.routingKeys.includes(k)) ?? node.routingKeys[0] ?? this.config.routingKeys[0] ?? 'default';
    const queue = queueName(routingKey, EngineName.Blender, 'CPU');
    // Deterministic: two confirms of the same bytes share one inspection; one that failed before is asked again.
    let jobId = `inspect-${doc.storageKey}`;
    if ((await this.queue.jobState(queue, jobId))?.state === 'failed') jobId = `${jobId}-${Date.now()}`;
    await this.queue.enqueue(queue, JobName.InspectScene, { project, file: this.ref(doc) }, jobId);
    try {
      const result = await this.queue.waitFor<JobName.InspectScene>(queue, jobId, { signal: AbortSignal.timeout(this.config.farm.inspectTimeoutMs) });
      return result.inventory;
    } catch (err) {
      if (err instanceof MontageError) throw err;
      const reason = (err as Error).message;
      if (/^stopped waiting/.test(reason)) throw unavailable(`no render node read ${doc.path} within ${Math.round(this.config.farm.inspectTimeoutMs / 1000)} s: try again later`, 30);
      this.logger.warn(`inspecting ${doc.path} (${doc.storageKey}) failed: ${reason}`);
      const said = reason.split('\n')[0].slice(0, 300);
      throw unusableMedia(`${doc.path}: Blender could not read this scene${said ? ` (${said})` : ''}`, [{ field, message: 'unreadable scene' }]);
    }
  }

  /** The file's record: an earlier one of the same path and bytes stands (the confirm is repeated), else this one. */
  private async keep(doc: FarmFileDoc): Promise<FarmFileDoc> {
    const [same] = await this.files.find({ project: doc.project, path: doc.path, sha256: doc.sha256 }, { limit: 1 });
    if (same) return same;
    await this.files.insertOne(doc);
    return doc;
  }

  /** Objects this confirm wrote, removed after a refusal (unless a file of the project uses them meanwhile). */
  private async forget(written: Array<{ key: string; ext: string }>): Promise<void> {
    for (const { key, ext } of written) {
      if (await this.files.findOne({ storageKey: key })) continue;
      await this.storage.remove(key, ext).catch(() => undefined);
    }
  }
}

function newFileId(): string {
  return `file_${randomBytes(12).toString('hex')}`;
}

function asObject(body: unknown): Record<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw badInput('send a JSON object', [{ field: 'body', message: 'not an object' }]);
  return body as Record<string, unknown>;
}

export function view(doc: FarmFileDoc): FarmFileView {
  return {
    upload_id: doc._id,
    path: doc.path,
    kind: doc.kind,
    sha256: doc.sha256,
    size: doc.size,
    ...(doc.inventory ? { inventory: doc.inventory } : {}),
    ...(doc.model ? { model: doc.model } : {}),
    created_at: doc.createdAt,
  };
}
