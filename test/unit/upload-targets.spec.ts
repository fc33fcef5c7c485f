import { S3ServiceException } from '@aws-sdk/client-s3';
import { RestError } from '@azure/storage-blob';
import { PrivateAddressError } from '../../src/repositories/outbound-http/guarded-network';
import { plainError as azureError } from '../../src/repositories/upload-target/azure.target';
import { allowedHeaders, describeUrl, multipartEnvelope } from '../../src/repositories/upload-target/http.target';
import { DestinationType, type S3Destination, UploadRefused } from '../../src/repositories/upload-target/port';
import { objectUrl, plainError as s3Error } from '../../src/repositories/upload-target/s3.target';

// The pure parts of the S3, HTTP and Azure drivers: the multipart envelope, which headers go
// out, the URL an S3 upload reports, and which failures are final. The drivers themselves are
// tested against real servers in test/integration/upload-targets.s3-http-azure.spec.ts.

describe('multipart/form-data envelope', () => {
  const file = Buffer.from('\x00\x01binary\r\n--not-a-boundary\r\n\xff', 'latin1');

  it("is read by the platform's own parser: every field, the file's field, name, type and exact bytes", async () => {
    const envelope = multipartEnvelope({
      boundary: '----MontageUploadabc123',
      field: 'video',
      filename: 'render "42".mp4',
      contentType: 'video/mp4',
      fields: { title: 'Ünïcode title', empty: '', multi: 'a\r\nb' },
      size: file.length,
    });
    const body = Buffer.concat([envelope.head, file, envelope.tail]);
    expect(envelope.length).toBe(body.length);
    const form = await new Response(body, { headers: { 'content-type': `multipart/form-data; boundary=${envelope.boundary}` } }).formData();
    expect(form.get('title')).toBe('Ünïcode title');
    expect(form.get('empty')).toBe('');
    expect(form.get('multi')).toBe('a\r\nb');
    const sent = form.get('video') as File;
    expect(sent.name).toBe('render "42".mp4'); // sent escaped as browsers do (%22), read back whole
    expect(sent.type).toBe('video/mp4');
    expect(Buffer.from(await sent.arrayBuffer()).equals(file)).toBe(true);
  });

  it('cannot be broken by a line break in a field name or a content type', () => {
    const envelope = multipartEnvelope({ boundary: 'B', field: 'f\r\nX-Evil: 1', filename: 'a\nb', contentType: 'video/mp4\r\nX-Evil: 2', size: 0 });
    const head = envelope.head.toString('utf8');
    expect(head).not.toMatch(/\r\nX-Evil/);
    expect(head).toContain('name="f%0D%0AX-Evil: 1"; filename="a%0Ab"');
  });
});

describe('headers of an HTTP upload', () => {
  it("drop what is the connection's or the body's own, keep the rest", () => {
    const kept = allowedHeaders(
      { Host: 'evil', 'Content-Length': '1', 'Transfer-Encoding': 'chunked', Connection: 'close', TE: 'x', Upgrade: 'h2c', Expect: '100-continue', Authorization: 'Bearer t', 'Content-Type': 'x/y', 'X-A': 'b' },
      false,
    );
    expect(kept).toEqual({ Authorization: 'Bearer t', 'Content-Type': 'x/y', 'X-A': 'b' });
    // The multipart boundary is in the content type: it is ours.
    expect(allowedHeaders({ 'content-type': 'text/plain', 'X-A': 'b' }, true)).toEqual({ 'X-A': 'b' });
  });

  it('refuse a value with a line break or a name that is not a token', () => {
    expect(() => allowedHeaders({ 'X-A': 'a\r\nX-B: c' }, false)).toThrow(UploadRefused);
    expect(() => allowedHeaders({ 'X A': 'a' }, false)).toThrow(UploadRefused);
  });

  it('are described in messages without user, password or query', () => {
    expect(describeUrl(new URL('https://user:pa55@example.com:8443/up/load?token=secret#x'))).toBe('https://example.com:8443/up/load');
  });
});

describe('S3 upload results and failures', () => {
  const destination = (extra: Partial<S3Destination> = {}): S3Destination => ({
    type: DestinationType.S3,
    bucket: 'my-bucket',
    filename: 'renders/a b+c/ü.mp4',
    aws_access_key_id: 'AKIAEXAMPLEKEY',
    aws_secret_access_key: 'very/secret+key',
    ...extra,
  });

  it('reports the object URL: AWS virtual host by default, path style with s3host, key segments encoded', () => {
    expect(objectUrl(destination())).toBe('https://my-bucket.s3.us-east-1.amazonaws.com/renders/a%20b%2Bc/%C3%BC.mp4');
    expect(objectUrl(destination({ region: 'eu-west-3' }))).toBe('https://my-bucket.s3.eu-west-3.amazonaws.com/renders/a%20b%2Bc/%C3%BC.mp4');
    expect(objectUrl(destination({ path_style: true }))).toBe('https://s3.us-east-1.amazonaws.com/my-bucket/renders/a%20b%2Bc/%C3%BC.mp4');
    expect(objectUrl(destination({ s3host: 'minio.local:9000', secure: false }))).toBe('http://minio.local:9000/my-bucket/renders/a%20b%2Bc/%C3%BC.mp4');
    expect(objectUrl(destination({ s3host: 'storage.example.com', path_style: false }))).toBe('https://my-bucket.storage.example.com/renders/a%20b%2Bc/%C3%BC.mp4');
  });

  const s3Exception = (name: string, status: number, message = name) => new S3ServiceException({ name, $fault: status < 500 ? 'client' : 'server', $metadata: { httpStatusCode: status }, message });

  it.each([
    ['InvalidAccessKeyId', 403],
    ['SignatureDoesNotMatch', 403],
    ['AccessDenied', 403],
    ['NoSuchBucket', 404],
    ['InvalidArgument', 400],
    ['SomethingNew', 401],
  ])('%s (HTTP %i) is refused for good', (name, status) => {
    const err = s3Error(s3Exception(name, status, `${name}: key AKIAEXAMPLEKEY with very/secret+key`), destination());
    expect(err).toBeInstanceOf(UploadRefused);
    expect(err.message).toContain(name);
    expect(err.message).not.toContain('very/secret+key');
    expect(err.message).not.toContain('AKIAEXAMPLEKEY');
  });

  it.each([
    ['SlowDown', 503],
    ['InternalError', 500],
    ['RequestTimeout', 400],
    ['NoSuchUpload', 404],
  ])('%s (HTTP %i) is a failure to retry', (name, status) => {
    const err = s3Error(s3Exception(name, status), destination());
    expect(err).not.toBeInstanceOf(UploadRefused);
    expect(err.message).toContain(`${name} (HTTP ${status})`);
  });

  it('refuses a private host for good; a network error, or a proxy page in the place of S3, is retried, said in one line', () => {
    expect(s3Error(new PrivateAddressError('localhost', '127.0.0.1'), destination())).toBeInstanceOf(UploadRefused);
    const network = s3Error(Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443\n    at TCPConnectWrap.afterConnect'), { code: 'ECONNREFUSED' }), destination());
    expect(network).not.toBeInstanceOf(UploadRefused);
    expect(network.message).toMatch(/ECONNREFUSED 10\.0\.0\.1:443$/);
    const proxyPage = s3Error(Object.assign(new Error('@aws-sdk XML parse error'), { $metadata: { httpStatusCode: 502 } }), destination());
    expect(proxyPage).not.toBeInstanceOf(UploadRefused);
    expect(proxyPage.message).toMatch(/HTTP 502/);
  });
});

describe('Azure upload failures', () => {
  const sas = 'https://acct.blob.core.windows.net/c?sv=2024-11-04&sp=racwl&sig=S3cr3tSig%3D';

  it.each([
    ['AuthenticationFailed', 403],
    ['AuthorizationPermissionMismatch', 403],
    ['ContainerNotFound', 404],
  ])('%s (HTTP %i) is refused for good, without the SAS', (code, status) => {
    const err = azureError(new RestError(`Server failed. ${sas}\nRequestId:1`, { code, statusCode: status }), 'Azure container acct/c', sas);
    expect(err).toBeInstanceOf(UploadRefused);
    expect(err.message).toContain(code);
    expect(err.message).not.toContain('S3cr3tSig');
    expect(err.message).not.toContain('RequestId');
  });

  it('server errors and network errors are retried; a private address is refused', () => {
    expect(azureError(new RestError('busy', { code: 'ServerBusy', statusCode: 503 }), 'Azure', sas)).not.toBeInstanceOf(UploadRefused);
    expect(azureError(new RestError('socket hang up', { code: 'REQUEST_SEND_ERROR' }), 'Azure', sas)).not.toBeInstanceOf(UploadRefused);
    expect(azureError(new PrivateAddressError('acct.blob.core.windows.net', '10.0.0.5'), 'Azure', sas)).toBeInstanceOf(UploadRefused);
  });
});
