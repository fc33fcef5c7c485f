import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { ContainerClient } from '@azure/storage-blob';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { PrivateAddressError } from '../../src/repositories/outbound-http/guarded-network';
import { AzureUploadTarget, guardedPipeline } from '../../src/repositories/upload-target/azure.target';
import { HttpUploadTarget } from '../../src/repositories/upload-target/http.target';
import { type AzureDestination, DestinationType, type HttpDestination, type S3Destination, UploadRefused } from '../../src/repositories/upload-target/port';
import { S3UploadTarget } from '../../src/repositories/upload-target/s3.target';
import { type Azurite, startAzurite } from '../helpers/azurite';
import { type HttpUploadServer, SECURED_PREFIX, startHttpUploadServer } from '../helpers/http-upload-server';
import { eventually, freePort } from '../helpers/processes';
import { addStorageClass, createS3User, type S3Server, startS3Server } from '../helpers/s3-server';
import { fileSource, freshName, type GeneratedSource, generatedSource, sampleVideo, sha256, type TestContext, testContext, uploadTargetContract } from '../helpers/upload-target-contract';

// The S3, HTTP and Azure drivers against real servers: radosgw (a second user's own bucket and
// keys, as a customer's account would be), a loopback HTTP endpoint, and Azurite.
let s3: S3Server;
let web: HttpUploadServer;
let azurite: Azurite;
const WEB_TOKEN = `tok-${randomBytes(8).toString('hex')}`;
const customer = { uid: 'customer', accessKeyId: `CUST${randomBytes(6).toString('hex').toUpperCase()}`, secretAccessKey: randomBytes(20).toString('hex') };
const bucket = `montage-deliveries-${randomBytes(3).toString('hex')}`;
const container = `deliveries-${randomBytes(3).toString('hex')}`;
let sasUrl: string;

beforeAll(async () => {
  // Each assigned as soon as it runs, so afterAll stops whatever did start when another did not.
  await Promise.all([
    startS3Server().then((started) => (s3 = started)),
    startHttpUploadServer({ token: WEB_TOKEN }).then((started) => (web = started)),
    startAzurite().then((started) => (azurite = started)),
  ]);
  await addStorageClass(s3, 'REDUCED_REDUNDANCY');
  await createS3User(s3, customer.uid, customer.accessKeyId, customer.secretAccessKey);
  await customerClient().send(new CreateBucketCommand({ Bucket: bucket }));
  sasUrl = await azurite.containerSasUrl(container);
}, 150_000);
afterAll(async () => {
  await Promise.all([s3?.stop(), web?.stop(), azurite?.stop()]);
});

// ---------------------------------------------------------------------------------------------
// S3

const s3Host = () => new URL(s3.endpoint).host;
function customerClient(keys: { accessKeyId: string; secretAccessKey: string } = customer): S3Client {
  return new S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: keys.accessKeyId, secretAccessKey: keys.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
function s3Destination(key: string, extra: Partial<S3Destination> = {}): S3Destination {
  return {
    type: DestinationType.S3,
    bucket,
    filename: key,
    aws_access_key_id: customer.accessKeyId,
    aws_secret_access_key: customer.secretAccessKey,
    s3host: s3Host(),
    secure: false,
    ...extra,
  };
}
async function s3Object(key: string): Promise<Buffer | undefined> {
  try {
    const object = await customerClient().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await object.Body!.transformToByteArray());
  } catch (err) {
    if (err instanceof S3ServiceException && (err.name === 'NoSuchKey' || err.$metadata.httpStatusCode === 404)) return undefined;
    throw err;
  }
}
async function multipartUploadsOf(key: string): Promise<string[]> {
  const listed = await customerClient().send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
  return (listed.Uploads ?? []).filter((u) => u.Key === key).map((u) => u.UploadId!);
}
/**
 * A source that gives `breakAfter` bytes, waits until the driver has reported `sent` bytes as
 * accepted (so parts or blocks are really on the server), then fails as a broken disk read.
 */
function breaksOnceSent(size: number, breakAfter: number, ctx: TestContext, sent: number): GeneratedSource {
  const whole = generatedSource(size, { seed: 'breaks' });
  return {
    ...whole,
    open: async (start = 0) => {
      whole.opens.push(start);
      const bytes = await generatedSource(size, { seed: 'breaks' }).open(start);
      return Readable.from(
        (async function* () {
          let given = 0;
          for await (const chunk of bytes as AsyncIterable<Buffer>) {
            if (given >= breakAfter) break;
            given += chunk.length;
            yield chunk;
          }
          bytes.destroy();
          await eventually('the driver to report progress', () => (Math.max(0, ...ctx.progress) >= sent ? true : undefined), 20_000).catch(() => undefined);
          throw new Error('the stored output could not be read (disk error)');
        })(),
        { objectMode: false },
      );
    },
  };
}
async function failure(upload: Promise<unknown>): Promise<Error> {
  try {
    await upload;
  } catch (err) {
    return err as Error;
  }
  throw new Error('the upload succeeded where it should have failed');
}

uploadTargetContract('S3 (radosgw, a customer bucket)', () => ({
  target: () => new S3UploadTarget(),
  destination: (name) => s3Destination(`renders/${name}`),
  readBack: (name) => s3Object(`renders/${name}`),
  badCredentials: (name) => s3Destination(`renders/${name}`, { aws_secret_access_key: 'not-the-secret-at-all' }),
  privateHost: (name) => s3Destination(`renders/${name}`, { s3host: `localhost:${new URL(s3.endpoint).port}` }),
  atomic: true,
}));

describe('S3 upload target', () => {
  it("stores Impossible's headers, metadata, storage class and a public-read ACL; the URL it gives serves the bytes to anyone", async () => {
    const file = await sampleVideo();
    const key = `renders/a clip (1)+ü/${freshName()}`;
    const destination = s3Destination(key, {
      contenttype: 'video/x-montage',
      contentdisposition: 'attachment; filename="clip.mp4"',
      cachecontrol: 'public, max-age=60',
      metadata: { project: 'montage', 'render-id': 'r-1' },
      reduced_redundancy: true,
    });
    const result = await new S3UploadTarget().upload(destination, fileSource(file), testContext());

    const head = await customerClient().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ContentType).toBe('video/x-montage');
    expect(head.ContentDisposition).toBe('attachment; filename="clip.mp4"');
    expect(head.CacheControl).toBe('public, max-age=60');
    expect(head.Metadata).toEqual({ project: 'montage', 'render-id': 'r-1' });
    expect(head.StorageClass).toBe('REDUCED_REDUNDANCY');
    expect(result.etag).toBe(head.ETag!.replace(/"/g, ''));

    const acl = await customerClient().send(new GetObjectAclCommand({ Bucket: bucket, Key: key }));
    const everyone = (acl.Grants ?? []).filter((g) => g.Grantee?.URI === 'http://acs.amazonaws.com/groups/global/AllUsers').map((g) => g.Permission);
    expect(everyone).toEqual(['READ']);

    // Path style with each key segment encoded: the URL works as it is, without credentials.
    expect(result.url).toBe(`${s3.endpoint}/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`);
    const anonymous = await fetch(result.url!);
    expect(anonymous.status).toBe(200);
    expect(sha256(Buffer.from(await anonymous.arrayBuffer()))).toBe(sha256(await import('node:fs').then((fs) => fs.readFileSync(file))));
  });

  it("defaults the content type to the source's and the storage class to standard; a private ACL is not served to anyone", async () => {
    const key = `renders/${freshName()}`;
    await new S3UploadTarget().upload(s3Destination(key, { acl: 'private' }), fileSource(await sampleVideo()), testContext());
    const head = await customerClient().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.ContentType).toBe('video/mp4');
    expect(head.StorageClass ?? 'STANDARD').toBe('STANDARD');
    expect((await fetch(`${s3.endpoint}/${bucket}/${key}`)).status).toBe(403);
  });

  it('aborts its multipart upload when the output breaks after parts were sent: nothing stored, no parts left', async () => {
    const key = `renders/${freshName('bin')}`;
    const source = generatedSource(16 * 1024 * 1024, { failAfter: 11 * 1024 * 1024 });
    const ctx = testContext();
    const err = await failure(new S3UploadTarget().upload(s3Destination(key), source, ctx));
    expect(err).not.toBeInstanceOf(UploadRefused);
    expect(err.message).toMatch(/could not be read/);
    expect(Math.max(0, ...ctx.progress)).toBeGreaterThanOrEqual(5 * 1024 * 1024); // parts did go out
    expect(await s3Object(key)).toBeUndefined();
    expect(await multipartUploadsOf(key)).toEqual([]);
  });

  it('stops on abort mid-upload (the process is shutting down): nothing stored, no parts left', async () => {
    const key = `renders/${freshName('bin')}`;
    const controller = new AbortController();
    const ctx = testContext({ controller });
    const origin = ctx.onProgress;
    ctx.onProgress = (bytes) => {
      origin(bytes);
      if (bytes >= 5 * 1024 * 1024) controller.abort();
    };
    await failure(new S3UploadTarget().upload(s3Destination(key), generatedSource(40 * 1024 * 1024), ctx));
    expect(ctx.progress.length).toBeGreaterThan(0);
    expect(Math.max(...ctx.progress)).toBeLessThan(40 * 1024 * 1024);
    expect(await s3Object(key)).toBeUndefined();
    expect(await multipartUploadsOf(key)).toEqual([]);
  });

  it('a retry after a process died mid-upload aborts the parts that attempt left, then stores the whole object', async () => {
    const key = `renders/${freshName('bin')}`;
    // What a killed attempt leaves: a multipart upload with a part, never completed nor aborted.
    const client = customerClient();
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: randomBytes(5 * 1024 * 1024) }));
    // Another key's unfinished upload (a longer name with the same prefix) is not this upload's to abort.
    const { UploadId: otherId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: `${key}.other` }));
    expect(await multipartUploadsOf(key)).toEqual([UploadId]);
    expect(await s3Object(key)).toBeUndefined();

    const source = generatedSource(6 * 1024 * 1024);
    await new S3UploadTarget().upload(s3Destination(key), source, testContext());
    expect(sha256((await s3Object(key))!)).toBe(source.sha256);
    expect(await multipartUploadsOf(key)).toEqual([]);
    expect(await multipartUploadsOf(`${key}.other`)).toEqual([otherId]);
  });

  it("refuses for good, in plain words without the secret, a bucket of someone else's and a bucket that does not exist", async () => {
    const video = fileSource(await sampleVideo());
    const others = await failure(
      new S3UploadTarget().upload(s3Destination(`renders/${freshName()}`, { aws_access_key_id: s3.accessKeyId, aws_secret_access_key: s3.secretAccessKey }), video, testContext()),
    );
    expect(others).toBeInstanceOf(UploadRefused);
    expect(others.message).toMatch(/AccessDenied|HTTP 403/);
    expect(others.message).not.toContain(s3.secretAccessKey);

    const missing = await failure(new S3UploadTarget().upload(s3Destination('x.mp4', { bucket: 'no-such-bucket-here' }), video, testContext()));
    expect(missing).toBeInstanceOf(UploadRefused);
    expect(missing.message).toMatch(/NoSuchBucket/);
    expect(missing.message).not.toContain(customer.secretAccessKey);

    const badSecret = await failure(new S3UploadTarget().upload(s3Destination('x.mp4', { aws_secret_access_key: 'wrong-secret-123456' }), video, testContext()));
    expect(badSecret).toBeInstanceOf(UploadRefused);
    expect(badSecret.message).not.toContain('wrong-secret-123456');
    expect(badSecret.message).not.toMatch(/\n\s+at /);
  });

  it('refuses an IP-literal loopback s3host when private addresses are not allowed, without reading the output', async () => {
    const key = `renders/${freshName()}`;
    const source = fileSource(await sampleVideo());
    const err = await failure(new S3UploadTarget().upload(s3Destination(key, { s3host: `127.0.0.1:${new URL(s3.endpoint).port}` }), source, testContext({ allowPrivateAddresses: false })));
    expect(err).toBeInstanceOf(UploadRefused);
    expect(err.message).toMatch(/127\.0\.0\.1/);
    expect(source.opens).toEqual([]);
    expect(await s3Object(key)).toBeUndefined();
  });

  it('fails plainly, to be tried again, when the service answers 5xx or does not answer at all', async () => {
    web.answerNext(503, { times: 10 });
    const unavailable = await failure(new S3UploadTarget().upload(s3Destination('x.mp4', { s3host: new URL(web.url).host }), fileSource(await sampleVideo()), testContext()));
    web.clearAnswers();
    expect(unavailable).not.toBeInstanceOf(UploadRefused);
    expect(unavailable.message).toMatch(/HTTP 503/);
    expect(unavailable.message).not.toContain(customer.secretAccessKey);

    const closed = await freePort();
    const refused = await failure(new S3UploadTarget().upload(s3Destination('x.mp4', { s3host: `127.0.0.1:${closed}` }), fileSource(await sampleVideo()), testContext()));
    expect(refused).not.toBeInstanceOf(UploadRefused);
    expect(refused.message).toMatch(/ECONNREFUSED/);
  });
});

// ---------------------------------------------------------------------------------------------
// HTTP

function httpDestination(path: string, extra: Partial<HttpDestination> = {}): HttpDestination {
  return { type: DestinationType.Http, url: `${web.url}${path}`, method: 'PUT', headers: { Authorization: `Bearer ${WEB_TOKEN}` }, ...extra };
}

uploadTargetContract('HTTP PUT (a loopback endpoint)', () => ({
  target: () => new HttpUploadTarget(),
  destination: (name) => httpDestination(`${SECURED_PREFIX}put/${name}`),
  readBack: async (name) => web.stored(`${SECURED_PREFIX}put/${name}`),
  badCredentials: (name) => httpDestination(`${SECURED_PREFIX}put/${name}`, { headers: { Authorization: 'Bearer wrong' } }),
  privateHost: (name) => httpDestination(`${SECURED_PREFIX}put/${name}`),
  // The endpoint keeps only bodies that arrived whole, as a real one would.
  atomic: true,
}));

uploadTargetContract('HTTP POST multipart/form-data (a loopback endpoint)', () => ({
  target: () => new HttpUploadTarget(),
  destination: (name) => httpDestination(`${SECURED_PREFIX}post/${name}`, { method: 'POST' }),
  readBack: async (name) => web.stored(`${SECURED_PREFIX}post/${name}`),
  badCredentials: (name) => httpDestination(`${SECURED_PREFIX}post/${name}`, { method: 'POST', headers: { Authorization: 'Bearer wrong' } }),
  privateHost: (name) => httpDestination(`${SECURED_PREFIX}post/${name}`, { method: 'POST' }),
  atomic: true,
}));

describe('HTTP upload target', () => {
  const lastRequest = () => web.requests[web.requests.length - 1];

  it('PUTs the bytes with their length and type (no chunked encoding); the URL is the Location the server gave', async () => {
    const path = `/put/${freshName()}`;
    const file = await sampleVideo();
    const source = fileSource(file);
    const result = await new HttpUploadTarget().upload(httpDestination(path, { headers: { 'X-Project': 'montage' } }), source, testContext());
    const seen = lastRequest();
    expect(seen).toMatchObject({ method: 'PUT', path, complete: true, bytes: source.size, status: 201 });
    expect(seen.headers['content-length']).toBe(String(source.size));
    expect(seen.headers['transfer-encoding']).toBeUndefined();
    expect(seen.headers['content-type']).toBe('video/mp4');
    expect(seen.headers['x-project']).toBe('montage');
    expect(result.url).toBe(`${web.url}${encodeURI(path)}?stored=1`);
  });

  it('POSTs multipart/form-data that a standard parser reads: the other fields, the file field and name, the same bytes', async () => {
    const path = `/post/${freshName()}`;
    const file = await sampleVideo();
    const source = fileSource(file, 'video/mp4', 'render-42.mp4');
    const result = await new HttpUploadTarget().upload(
      httpDestination(path, { method: 'POST', field: 'video', fields: { title: 'A "quoted" title', note: 'line one\r\nline two' } }),
      source,
      testContext(),
    );
    const seen = lastRequest();
    expect(seen.status).toBe(200);
    expect(seen.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(seen.headers['transfer-encoding']).toBeUndefined();
    expect(Number(seen.headers['content-length'])).toBe(seen.bytes);
    expect(seen.form).toEqual({ fields: { title: 'A "quoted" title', note: 'line one\r\nline two' }, fileField: 'video', filename: 'render-42.mp4', fileType: 'video/mp4' });
    expect(sha256(web.stored(path)!)).toBe(sha256(await import('node:fs').then((fs) => fs.readFileSync(file))));
    expect(result.url).toBe(`${web.url}${path}`);

    await new HttpUploadTarget().upload(httpDestination(`${path}-2`, { method: 'POST', filename: 'given.mp4' }), source, testContext());
    expect(lastRequest().form).toMatchObject({ fileField: 'file', filename: 'given.mp4' });
  });

  it('drops headers that would describe another connection or body (Host, Content-Length, Transfer-Encoding, Connection)', async () => {
    const path = `/put/${freshName()}`;
    const source = fileSource(await sampleVideo());
    await new HttpUploadTarget().upload(
      httpDestination(path, { headers: { Host: 'evil.example', 'Content-Length': '1', 'Transfer-Encoding': 'chunked', Connection: 'upgrade', 'X-Kept': 'yes' } }),
      source,
      testContext(),
    );
    const seen = lastRequest();
    expect(seen.headers.host).toBe(new URL(web.url).host);
    expect(seen.headers['content-length']).toBe(String(source.size));
    expect(seen.headers['transfer-encoding']).toBeUndefined();
    expect(seen.headers['x-kept']).toBe('yes');
    expect(web.stored(path)?.length).toBe(source.size);
  });

  it.each([
    [401, true],
    [403, true],
    [404, true],
    [413, true],
    [408, false],
    [429, false],
    [500, false],
    [503, false],
  ])('answered %i: refused for good = %s', async (status, refused) => {
    web.answerNext(status);
    const err = await failure(new HttpUploadTarget().upload(httpDestination(`/put/${freshName()}`), fileSource(await sampleVideo()), testContext()));
    expect(err instanceof UploadRefused).toBe(refused);
    expect(err.message).toContain(`HTTP ${status}`);
    expect(err.message).not.toContain(WEB_TOKEN);
  });

  it('does not follow a redirect: the upload is refused and the other place never asked', async () => {
    const before = web.requests.length;
    web.answerNext(307, { location: `${web.url}/put/elsewhere.mp4` });
    const err = await failure(new HttpUploadTarget().upload(httpDestination(`/put/${freshName()}`), fileSource(await sampleVideo()), testContext()));
    expect(err).toBeInstanceOf(UploadRefused);
    expect(err.message).toMatch(/HTTP 307/);
    expect(web.requests.length).toBe(before + 1);
    expect(web.stored('/put/elsewhere.mp4')).toBeUndefined();
  });

  it('refuses localhost (a name that resolves to loopback) and 127.0.0.1 without connecting, when private addresses are not allowed', async () => {
    const connections = web.connections();
    for (const host of [`localhost:${web.port}`, `127.0.0.1:${web.port}`, `[::ffff:127.0.0.1]:${web.port}`]) {
      const source = fileSource(await sampleVideo());
      const err = await failure(
        new HttpUploadTarget().upload({ type: DestinationType.Http, url: `http://${host}/put/${freshName()}`, method: 'PUT' }, source, testContext({ allowPrivateAddresses: false })),
      );
      expect(err).toBeInstanceOf(UploadRefused);
      expect(source.opens).toEqual([]);
    }
    expect(web.connections()).toBe(connections);
  });

  it('stops sending on abort mid-body: the server saw a broken-off request and stored nothing', async () => {
    const path = `/put/${freshName('bin')}`;
    const controller = new AbortController();
    const ctx = testContext({ controller });
    const origin = ctx.onProgress;
    ctx.onProgress = (bytes) => {
      origin(bytes);
      if (bytes >= 2 * 1024 * 1024) controller.abort();
    };
    const err = await failure(new HttpUploadTarget().upload(httpDestination(path), generatedSource(30 * 1024 * 1024), ctx));
    expect(err.message).toMatch(/aborted/);
    await new Promise((r) => setTimeout(r, 200));
    const seen = web.requests.find((r) => r.path === path)!;
    expect(seen.complete).toBe(false);
    expect(seen.bytes).toBeLessThan(30 * 1024 * 1024);
    expect(web.stored(path)).toBeUndefined();
  });

  it('refuses a URL that is not http(s) and a header with a line break', async () => {
    const video = fileSource(await sampleVideo());
    expect(await failure(new HttpUploadTarget().upload({ type: DestinationType.Http, url: 'ftp://example.com/x', method: 'PUT' }, video, testContext()))).toBeInstanceOf(UploadRefused);
    expect(await failure(new HttpUploadTarget().upload(httpDestination('/put/x', { headers: { 'X-A': 'a\r\nX-Injected: 1' } }), video, testContext()))).toBeInstanceOf(UploadRefused);
  });
});

// ---------------------------------------------------------------------------------------------
// Azure

function azureDestination(name: string, extra: Partial<AzureDestination> = {}): AzureDestination {
  return { type: DestinationType.Azure, sas_url: sasUrl, filename: name, ...extra };
}

uploadTargetContract('Azure Blob (Azurite, a container SAS)', () => ({
  target: () => new AzureUploadTarget(),
  destination: (name) => azureDestination(`renders/${name}`),
  readBack: (name) => azurite.readBlob(container, `renders/${name}`),
  badCredentials: (name) => azureDestination(`renders/${name}`, { sas_url: sasUrl.replace(/sig=[^&]+/, `sig=${encodeURIComponent(randomBytes(32).toString('base64'))}`) }),
  privateHost: (name) => azureDestination(`renders/${name}`),
  atomic: true,
}));

describe('Azure upload target', () => {
  it('stores the content type, cache control and metadata; gives the blob URL without the SAS and the ETag', async () => {
    const name = `renders/${freshName()}`;
    const result = await new AzureUploadTarget().upload(
      azureDestination(name, { contenttype: 'video/x-montage', cachecontrol: 'public, max-age=60', metadata: { project: 'montage', renderid: 'r1' } }),
      fileSource(await sampleVideo()),
      testContext(),
    );
    const props = await azurite.blobProperties(container, name);
    expect(props).toMatchObject({ contentType: 'video/x-montage', cacheControl: 'public, max-age=60', metadata: { project: 'montage', renderid: 'r1' } });
    expect(result.etag).toBe(props.etag!.replace(/"/g, ''));
    expect(result.url).toBe(`${azurite.accountUrl}/${container}/${name}`);

    await new AzureUploadTarget().upload(azureDestination(`${name}-2`), fileSource(await sampleVideo()), testContext());
    expect((await azurite.blobProperties(container, `${name}-2`)).contentType).toBe('video/mp4');
  });

  it('an output that breaks after blocks were staged leaves them uncommitted: no blob under the name', async () => {
    const name = `renders/${freshName('bin')}`;
    const ctx = testContext();
    const source = breaksOnceSent(20 * 1024 * 1024, 13 * 1024 * 1024, ctx, 8 * 1024 * 1024);
    const err = await failure(new AzureUploadTarget().upload(azureDestination(name), source, ctx));
    expect(Math.max(...ctx.progress)).toBeGreaterThanOrEqual(8 * 1024 * 1024);
    expect(err).not.toBeInstanceOf(UploadRefused);
    expect(err.message).toMatch(/could not be read/);
    expect(await azurite.readBlob(container, name)).toBeUndefined();
    expect((await azurite.uncommittedBlocks(container, name)).length).toBeGreaterThan(0);
  });

  it('stops on abort mid-upload: no blob under the name', async () => {
    const name = `renders/${freshName('bin')}`;
    const controller = new AbortController();
    const ctx = testContext({ controller });
    const origin = ctx.onProgress;
    ctx.onProgress = (bytes) => {
      origin(bytes);
      if (bytes >= 4 * 1024 * 1024) controller.abort();
    };
    const err = await failure(new AzureUploadTarget().upload(azureDestination(name), generatedSource(40 * 1024 * 1024), ctx));
    expect(err.message).toMatch(/aborted/);
    expect(await azurite.readBlob(container, name)).toBeUndefined();
  });

  it('refuses for good, without the SAS in the message, a read-only SAS and a container that does not exist', async () => {
    const video = fileSource(await sampleVideo());
    const readOnly = await azurite.containerSasUrl(container, { permissions: 'rl' });
    const denied = await failure(new AzureUploadTarget().upload(azureDestination(`renders/${freshName()}`, { sas_url: readOnly }), video, testContext()));
    expect(denied).toBeInstanceOf(UploadRefused);
    expect(denied.message).toMatch(/AuthorizationPermissionMismatch|HTTP 403/);
    expect(denied.message).not.toMatch(/sig=[^*]/);

    const otherSas = await azurite.containerSasUrl(`gone-${randomBytes(3).toString('hex')}`);
    const goneContainer = new URL(otherSas).pathname.split('/')[2];
    await azurite.service.getContainerClient(goneContainer).delete();
    const missing = await failure(new AzureUploadTarget().upload(azureDestination('x.mp4', { sas_url: otherSas }), video, testContext()));
    expect(missing).toBeInstanceOf(UploadRefused);
    expect(missing.message).toMatch(/ContainerNotFound/);
    expect(missing.message).not.toContain(new URL(otherSas).searchParams.get('sig')!);
  });

  it("routes every connection of the SDK through the checked lookup (a host that passed the first check cannot turn private later)", async () => {
    // localhost resolves to loopback only at connect time here: the first check is skipped on purpose.
    const viaName = sasUrl.replace('127.0.0.1', 'localhost');
    const refusing = guardedPipeline(false);
    const allowing = guardedPipeline(true);
    try {
      const blobVia = (pipeline: typeof refusing.pipeline) => new ContainerClient(viaName, pipeline).getBlobClient('nothing-here.mp4');
      const err = await failure(blobVia(refusing.pipeline).exists());
      const cause = (err as { cause?: unknown }).cause;
      expect(err instanceof PrivateAddressError || cause instanceof PrivateAddressError || /private, loopback or link-local/.test(err.message)).toBe(true);
      await expect(blobVia(allowing.pipeline).exists()).resolves.toBe(false);
    } finally {
      refusing.close();
      allowing.close();
    }
  });
});
