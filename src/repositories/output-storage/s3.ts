import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { MontageError, notFound, unavailable } from '../../common/errors';
import type { Leftover } from '../../retention/retention-plan';
import { contentTypeOf, isOutputFormat } from '../../formats/output-formats';
import { attachmentDisposition, type PresignedUpload, REUSABLE_NAME, type ReusablePiece, storageName, type OutputStorage } from './port';
import { postPolicyFields, presignGetUrl, type SigV4Credentials } from './sigv4';
import { describeStorage, type StorageLocation } from './location';

type S3Location = Extract<StorageLocation, { kind: 's3' }>;

/** Segments older than this at start-up belong to renders that no longer run. */
const STALE_SEGMENT_MS = 60 * 60 * 1000;

/**
 * Outputs and segments in an S3-compatible store (AWS S3, radosgw, MinIO): what many machines
 * share. Objects are written with one PUT of a finished local staging file, so an object that
 * exists is complete; staging files live under `<dataDir>/staging` of the writing process.
 */
export class S3OutputStorage implements OutputStorage {
  readonly kind = 's3';
  readonly description: string;
  private readonly client: S3Client;
  private readonly stagingDir: string;

  constructor(
    private readonly location: S3Location,
    dataDir: string,
  ) {
    this.description = describeStorage(location);
    this.stagingDir = path.join(dataDir, 'staging');
    this.client = new S3Client({
      endpoint: location.endpoint,
      region: location.region,
      forcePathStyle: location.forcePathStyle,
      credentials: location.credentials,
      // Checksums on every request are newer than many S3-compatible servers.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async init(): Promise<void> {
    await this.ensureBucket();
    if (!(await this.identity())) {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.location.bucket, Key: this.identityKey(), Body: randomBytes(16).toString('hex'), ContentType: 'text/plain' }),
      );
    }
    const cutoff = Date.now() - STALE_SEGMENT_MS;
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.location.bucket, Prefix: this.segmentKey(''), ContinuationToken: token }),
      );
      const stale = (page.Contents ?? []).filter((o) => o.Key && (o.LastModified?.getTime() ?? 0) < cutoff);
      if (stale.length) {
        await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.location.bucket, Delete: { Objects: stale.map((o) => ({ Key: o.Key! })), Quiet: true } }),
        );
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async ping(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.location.bucket }));
  }

  async identity(): Promise<string | undefined> {
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: this.identityKey() }));
      return (await object.Body!.transformToString()).trim() || undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private identityKey(): string {
    return `${this.location.prefix}storage-id`;
  }

  async stat(key: string, ext: string): Promise<{ size: number; mtime: Date } | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.location.bucket, Key: this.outputKey(key, ext) }));
      return { size: head.ContentLength ?? 0, mtime: head.LastModified ?? new Date(0) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw unreachable(err);
    }
  }

  async read(key: string, ext: string, range?: { start: number; end: number }): Promise<Readable> {
    const object = await this.client.send(
      new GetObjectCommand({
        Bucket: this.location.bucket,
        Key: this.outputKey(key, ext),
        Range: range ? `bytes=${range.start}-${range.end}` : undefined,
      }),
    ).catch((err: unknown) => {
      throw isNotFound(err) ? notFound('the stored output was removed') : unreachable(err);
    });
    return object.Body as Readable;
  }

  async storeOutput<T>(key: string, ext: string, write: (file: string) => Promise<T>): Promise<T> {
    return this.store(this.outputKey(key, ext), ext, write);
  }

  async remove(key: string, ext: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.location.bucket, Key: this.outputKey(key, ext) }));
  }

  async listReusable(): Promise<ReusablePiece[]> {
    const found: ReusablePiece[] = [];
    const outputs = `${this.location.prefix}outputs/`;
    try {
      for (const kind of ['sg', 'sd', 'in']) {
        let token: string | undefined;
        do {
          const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.location.bucket, Prefix: `${outputs}${kind}`, ContinuationToken: token }));
          for (const o of page.Contents ?? []) {
            const m = o.Key ? REUSABLE_NAME.exec(o.Key.slice(outputs.length)) : null;
            if (m) found.push({ key: m[1], ext: m[2], bytes: o.Size ?? 0, storedMs: o.LastModified?.getTime() ?? 0 });
          }
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
      }
    } catch (err) {
      throw unreachable(err);
    }
    return found;
  }

  async storeSegment<T>(name: string, write: (file: string) => Promise<T>): Promise<T> {
    return this.store(this.segmentKey(name), path.extname(name).slice(1), write);
  }

  async readSegment(name: string): Promise<Buffer> {
    const object = await this.client.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: this.segmentKey(name) }));
    return Buffer.from(await object.Body!.transformToByteArray());
  }

  async removeSegment(name: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.location.bucket, Key: this.segmentKey(name) }));
  }

  async listLeftovers(): Promise<Leftover[]> {
    const found: Leftover[] = [];
    const prefix = this.segmentKey('');
    let token: string | undefined;
    try {
      do {
        const page = await this.client.send(new ListObjectsV2Command({ Bucket: this.location.bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of page.Contents ?? []) {
          if (o.Key) found.push({ name: o.Key.slice(prefix.length), area: 'segments', bytes: o.Size ?? 0, modifiedMs: o.LastModified?.getTime() ?? 0 });
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw unreachable(err);
    }
    return found;
  }

  async removeLeftover(leftover: Leftover): Promise<void> {
    if (leftover.area !== 'segments' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(leftover.name)) return;
    await this.client.send(new DeleteObjectCommand({ Bucket: this.location.bucket, Key: this.segmentKey(leftover.name) }));
  }

  /** A POST policy the store itself enforces: this key only, at most `maxBytes`, until it expires. */
  async presignUpload(key: string, ext: string, options: { maxBytes: number; expiresSec: number; contentType?: string }): Promise<PresignedUpload | undefined> {
    const { origin, bucketPath } = this.addressing();
    const fields = postPolicyFields({
      bucket: this.location.bucket,
      key: this.outputKey(key, ext),
      maxBytes: options.maxBytes,
      expiresSec: options.expiresSec,
      region: this.location.region,
      credentials: await this.signingCredentials(),
      contentType: options.contentType,
    });
    return { url: `${origin}${bucketPath}`, fields, method: 'POST' };
  }

  async presignDownload(key: string, ext: string, options: { expiresSec: number; filename: string; contentType?: string }): Promise<string | undefined> {
    const { origin, bucketPath } = this.addressing();
    return presignGetUrl({
      origin,
      path: `${bucketPath}/${this.outputKey(key, ext)}`,
      region: this.location.region,
      credentials: await this.signingCredentials(),
      expiresSec: options.expiresSec,
      query: {
        'response-content-disposition': attachmentDisposition(options.filename),
        ...(options.contentType ? { 'response-content-type': options.contentType } : {}),
      },
    });
  }

  /** Path-style (`http://host/bucket`) or virtual-hosted (`https://bucket.host`), as the client addresses the bucket. */
  private addressing(): { origin: string; bucketPath: string } {
    const endpoint = new URL(this.location.endpoint ?? `https://s3.${this.location.region}.amazonaws.com`);
    if (this.location.forcePathStyle) return { origin: endpoint.origin, bucketPath: `/${this.location.bucket}` };
    return { origin: `${endpoint.protocol}//${this.location.bucket}.${endpoint.host}`, bucketPath: '' };
  }

  /** The client's credentials (the URL's, or the SDK's default chain: environment, profile, role). */
  private async signingCredentials(): Promise<SigV4Credentials> {
    const creds = await this.client.config.credentials().catch((err: unknown) => {
      throw unavailable('the output storage has no credentials to sign a URL with', 30, (err as Error).message);
    });
    return { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, sessionToken: creds.sessionToken };
  }

  /**
   * Staged on this process's disk, named `<pid>-<random>`: the sweeper of this data dir removes
   * the files of a writer that died. The object is written only once the file is complete.
   */
  private async store<T>(objectKey: string, ext: string, write: (file: string) => Promise<T>): Promise<T> {
    const staging = path.join(this.stagingDir, `${process.pid}-${randomBytes(8).toString('hex')}.${ext}`);
    try {
      await fs.mkdir(this.stagingDir, { recursive: true });
      await (await fs.open(staging, 'wx')).close();
    } catch (err) {
      await fs.rm(staging, { force: true }).catch(() => undefined);
      throw unavailable('the staging area of this machine cannot be written (full or read-only); nothing was stored', 30, (err as Error).message);
    }
    try {
      const result = await write(staging);
      await this.upload(staging, objectKey, ext).catch((err: unknown) => {
        throw err instanceof MontageError ? err : unavailable('the output storage did not take the file; nothing was stored, try again later', 30, describeError(err));
      });
      return result;
    } finally {
      await fs.rm(staging, { force: true }).catch(() => undefined);
    }
  }

  /**
   * One PUT of a finished file. The SDK does not retry a streamed body, so a throttled or
   * reset upload is tried again here, with a fresh stream, up to three times.
   */
  private async upload(file: string, objectKey: string, ext: string): Promise<void> {
    const { size } = await fs.stat(file);
    for (let attempt = 1; ; attempt++) {
      const body = createReadStream(file);
      try {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.location.bucket,
            Key: objectKey,
            Body: body,
            ContentLength: size,
            ContentType: isOutputFormat(ext) ? contentTypeOf(ext) : 'application/octet-stream',
          }),
        );
        return;
      } catch (err) {
        const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
        const transient = status === undefined || status >= 500 || status === 429;
        if (!transient || attempt >= 3) throw err;
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      } finally {
        body.destroy();
      }
    }
  }

  private async ensureBucket(): Promise<void> {
    try {
      await this.ping();
    } catch (err) {
      if (!isNotFound(err)) throw new Error(`S3 bucket ${this.location.bucket} cannot be reached: ${describeError(err)}`);
      await this.client.send(new CreateBucketCommand({ Bucket: this.location.bucket }));
    }
  }

  private outputKey(key: string, ext: string): string {
    return `${this.location.prefix}outputs/${storageName(key)}.${storageName(ext)}`;
  }

  private segmentKey(name: string): string {
    return `${this.location.prefix}segments/${name && storageName(name)}`;
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof S3ServiceException && (err.$metadata.httpStatusCode === 404 || err.name === 'NotFound' || err.name === 'NoSuchKey');
}

/** An S3 failure other than "not found", said plainly (the SDK's words go to the log). */
function unreachable(err: unknown): MontageError {
  return unavailable('the output storage does not answer right now; try again later', 10, describeError(err));
}

function describeError(err: unknown): string {
  if (err instanceof S3ServiceException) return `${err.name} (HTTP ${err.$metadata.httpStatusCode ?? '?'})${err.message && err.message !== 'UnknownError' ? `: ${err.message}` : ''}`;
  return (err as Error).message;
}
