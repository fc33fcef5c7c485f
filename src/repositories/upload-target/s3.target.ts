import {
  AbortMultipartUploadCommand,
  ListMultipartUploadsCommand,
  S3Client,
  S3ServiceException,
  type ObjectCannedACL,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { assertAllowedLiteral, guardedAgents, PrivateAddressError } from '../outbound-http/guarded-network';
import { DestinationType, type S3Destination, type UploadContext, type UploadResult, type UploadSource, type UploadTarget, UploadRefused } from './port';

/** S3's smallest part; parts are buffered, so memory is about PART_BYTES × (QUEUE_SIZE + 1). */
const PART_BYTES = 5 * 1024 * 1024;
const QUEUE_SIZE = 2;

/** Errors that mean the destination itself is wrong: another attempt would get the same. */
const REFUSED_CODES = new Set([
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'NoSuchBucket',
  'AccessDenied',
  'AllAccessDisabled',
  'AccountProblem',
  'InvalidBucketName',
  'AccessControlListNotSupported',
  'InvalidStorageClass',
  // A header or value this service does not take (an unknown storage class, a bad ACL).
  'InvalidArgument',
  'EntityTooLarge',
]);
/** What a missing permission to list multipart uploads looks like: the stale-upload sweep is skipped. */
const CREDENTIAL_CODES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'NoSuchBucket']);

/**
 * Uploads to S3 or an S3-compatible service (Impossible's `s3` destination) as a multipart upload
 * streamed from the source: only a few parts are in memory at once, and the object appears only
 * when the upload is completed, so a failed attempt leaves nothing under the key (its parts are
 * aborted; a process killed mid-upload leaves parts that the next attempt aborts).
 */
export class S3UploadTarget implements UploadTarget<DestinationType.S3> {
  readonly type = DestinationType.S3;

  async upload(destination: S3Destination, source: UploadSource, ctx: UploadContext): Promise<UploadResult> {
    const where = describe(destination);
    if (ctx.signal.aborted) throw new Error(`the upload to ${where} was aborted before it started`);
    const endpoint = endpointOf(destination);
    try {
      if (endpoint) assertAllowedLiteral(endpoint.hostname, ctx.allowPrivateAddresses);
    } catch (err) {
      throw plainError(err, destination);
    }

    const client = clientFor(destination, endpoint, ctx.allowPrivateAddresses);
    try {
      await abortStaleUploads(client, destination);
      const body = await source.open();
      const params: PutObjectCommandInput = {
        Bucket: destination.bucket,
        Key: destination.filename,
        Body: body,
        ContentLength: source.size,
        ContentType: destination.contenttype || source.contentType,
        ContentDisposition: destination.contentdisposition,
        CacheControl: destination.cachecontrol,
        ACL: (destination.acl || 'public-read') as ObjectCannedACL,
        StorageClass: destination.reduced_redundancy ? 'REDUCED_REDUNDANCY' : undefined,
        Metadata: destination.metadata,
      };
      const upload = new Upload({ client, params, partSize: PART_BYTES, queueSize: QUEUE_SIZE, leavePartsOnError: false });
      let reported = 0;
      upload.on('httpUploadProgress', ({ loaded }) => {
        if (loaded !== undefined && loaded > reported) ctx.onProgress((reported = loaded));
      });
      const onAbort = () => {
        body.destroy();
        void upload.abort();
      };
      ctx.signal.addEventListener('abort', onAbort, { once: true });
      try {
        const done = await upload.done();
        return { url: objectUrl(destination, endpoint), etag: done.ETag?.replace(/^"|"$/g, '') };
      } catch (err) {
        body.destroy();
        // An aborted Upload rejects at once while its parts still settle, and aborts its multipart
        // upload only then: sweep now, so nothing of this attempt is left once it has failed.
        if (ctx.signal.aborted) {
          await abortStaleUploads(client, destination).catch(() => undefined);
          throw new Error(`the upload to ${where} was aborted`);
        }
        throw err;
      } finally {
        ctx.signal.removeEventListener('abort', onAbort);
      }
    } catch (err) {
      throw plainError(err, destination);
    } finally {
      client.destroy();
    }
  }
}

/** The endpoint of an S3-compatible service, or undefined for AWS (the SDK knows its endpoints). */
function endpointOf(destination: S3Destination): URL | undefined {
  if (!destination.s3host) return undefined;
  const scheme = destination.secure === false ? 'http' : 'https';
  const url = new URL(`${scheme}://${destination.s3host.replace(/^https?:\/\//, '').replace(/\/+$/, '')}`);
  if (url.pathname !== '/' || url.search || url.username) throw new UploadRefused(`s3host must be a host and port only, not ${destination.s3host}`);
  return url;
}

function pathStyle(destination: S3Destination): boolean {
  return destination.path_style ?? !!destination.s3host;
}

function clientFor(destination: S3Destination, endpoint: URL | undefined, allowPrivateAddresses: boolean): S3Client {
  // Every connection (to s3host, to a virtual-host bucket name, to AWS) resolves through the checked lookup.
  const agents = guardedAgents(allowPrivateAddresses);
  return new S3Client({
    endpoint: endpoint?.origin,
    region: destination.region || 'us-east-1',
    forcePathStyle: pathStyle(destination),
    credentials: { accessKeyId: destination.aws_access_key_id, secretAccessKey: destination.aws_secret_access_key },
    requestHandler: new NodeHttpHandler({ httpAgent: agents.http, httpsAgent: agents.https, connectionTimeout: 15_000, socketTimeout: 120_000 }),
    // Checksums on every request are newer than many S3-compatible servers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/**
 * Aborts unfinished multipart uploads of exactly this key: what an attempt killed mid-way left
 * (parts are billed while they wait). A destination whose credentials may write but not list
 * uploads is common, so a refusal to list is not a failure; wrong credentials are.
 */
async function abortStaleUploads(client: S3Client, destination: S3Destination): Promise<void> {
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (let page = 0; page < 10; page++) {
    let listed;
    try {
      listed = await client.send(
        new ListMultipartUploadsCommand({ Bucket: destination.bucket, Prefix: destination.filename, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      );
    } catch (err) {
      if (err instanceof S3ServiceException && !CREDENTIAL_CODES.has(err.name) && statusOf(err) !== undefined && statusOf(err)! < 500) return;
      throw err;
    }
    for (const stale of listed.Uploads ?? []) {
      if (stale.Key !== destination.filename || !stale.UploadId) continue;
      await client
        .send(new AbortMultipartUploadCommand({ Bucket: destination.bucket, Key: stale.Key, UploadId: stale.UploadId }))
        .catch((err: unknown) => {
          if (!(err instanceof S3ServiceException && err.name === 'NoSuchUpload')) throw err;
        });
    }
    if (!listed.IsTruncated) return;
    keyMarker = listed.NextKeyMarker;
    uploadIdMarker = listed.NextUploadIdMarker;
  }
}

/** Where the object is: path style `<endpoint>/<bucket>/<key>`, else the bucket's virtual host. */
export function objectUrl(destination: S3Destination, endpoint: URL | undefined = endpointOf(destination)): string {
  const key = destination.filename.split('/').map(encodeURIComponent).join('/');
  const bucket = encodeURIComponent(destination.bucket);
  const region = destination.region || 'us-east-1';
  const origin = endpoint ?? new URL(`https://s3.${region}.amazonaws.com`);
  if (pathStyle(destination)) return `${origin.origin}/${bucket}/${key}`;
  return `${origin.protocol}//${bucket}.${origin.host}/${key}`;
}

function describe(destination: S3Destination): string {
  return `S3 bucket ${destination.bucket}${destination.s3host ? ` at ${destination.s3host}` : ''}`;
}

function statusOf(err: S3ServiceException): number | undefined {
  return err.$metadata?.httpStatusCode;
}

/**
 * The SDK's error as a plain one (no SDK stack or request dump): UploadRefused for what another
 * attempt would repeat (credentials, permissions, the bucket, a forbidden host), a plain Error
 * (retried) for the rest. The credentials are cut out of whatever the server said.
 */
export function plainError(err: unknown, destination: S3Destination): Error {
  if (err instanceof UploadRefused) return err;
  const where = describe(destination);
  const scrub = (text: string) =>
    [destination.aws_secret_access_key, destination.aws_access_key_id]
      .filter((secret) => secret && secret.length >= 4)
      .reduce((t, secret) => t.split(secret).join('***'), text);
  if (err instanceof PrivateAddressError) return new UploadRefused(scrub(`${where} is not allowed: ${err.message}`));
  if (err instanceof S3ServiceException) {
    const status = statusOf(err);
    const said = err.message && err.message !== 'UnknownError' && err.message !== err.name ? `: ${err.message}` : '';
    const what = scrub(`${err.name} (HTTP ${status ?? '?'})${said}`);
    if (REFUSED_CODES.has(err.name) || status === 401 || status === 403) return new UploadRefused(`${where} refused the upload: ${what}`);
    return new Error(`the upload to ${where} failed: ${what}`);
  }
  // Not an S3 error: a network failure, or an answer that was not S3's (a proxy's 502 page).
  const status = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
  const message = `${(err instanceof Error ? err.message : String(err)).split('\n')[0]}${status ? ` (HTTP ${status})` : ''}`;
  if (status === 401 || status === 403) return new UploadRefused(scrub(`${where} refused the upload: ${message}`));
  return new Error(scrub(`the upload to ${where} failed: ${message}`));
}
