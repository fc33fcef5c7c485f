import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertAllowedLiteral, checkedLookup, PrivateAddressError, resolveAllowed } from '../outbound-http/guarded-network';
import { DestinationType, type HttpDestination, type UploadContext, type UploadResult, type UploadSource, type UploadTarget, UploadRefused } from './port';

/** A connection idle this long (nothing sent, nothing answered) fails the attempt. */
const IDLE_MS = 120_000;

/** Headers the destination may not set: they describe this connection or this body, which are ours. */
const OWN_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'expect',
]);

/**
 * Uploads to an HTTP endpoint (Impossible's `http` destination): PUT with the output as the body,
 * or POST as multipart/form-data with the output as one file field. Either way the body is
 * streamed with a Content-Length, never held in memory, and redirects are not followed (a
 * redirect could lead anywhere, and the body cannot be sent twice).
 */
export class HttpUploadTarget implements UploadTarget<DestinationType.Http> {
  readonly type = DestinationType.Http;

  async upload(destination: HttpDestination, source: UploadSource, ctx: UploadContext): Promise<UploadResult> {
    const url = parseUrl(destination.url);
    const where = describeUrl(url);
    if (ctx.signal.aborted) throw new Error(`the upload to ${where} was aborted before it started`);
    try {
      assertAllowedLiteral(url.hostname, ctx.allowPrivateAddresses);
      // Judged before the output is opened; the connection resolves through the checked lookup
      // again, so a second, rebinding DNS answer is refused all the same.
      await resolveAllowed(url.hostname, ctx.allowPrivateAddresses);
    } catch (err) {
      if (err instanceof PrivateAddressError) throw new UploadRefused(`${where} is not allowed: ${err.message}`);
      throw new Error(`${where} cannot be reached: ${(err as Error).message}`);
    }

    const body = destination.method === 'POST' ? multipartBody(destination, source) : undefined;
    const headers: Record<string, string> = {
      ...allowedHeaders(destination.headers, destination.method === 'POST'),
      'content-length': String(body ? body.length : source.size),
    };
    if (body) headers['content-type'] = `multipart/form-data; boundary=${body.boundary}`;
    else if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = source.contentType;

    const stream = await source.open();
    try {
      const response = await send(url, destination.method, headers, stream, source.size, body, ctx);
      return outcome(url, response);
    } catch (err) {
      if (err instanceof UploadRefused) throw err;
      if (ctx.signal.aborted) throw new Error(`the upload to ${where} was aborted`);
      throw new Error(`the upload to ${where} failed: ${(err as Error).message}`);
    } finally {
      stream.destroy();
    }
  }
}

interface Answer {
  status: number;
  location?: string;
}

/**
 * Sends the request and the streamed body; resolves with the answer once it has been read. An
 * answer that came counts even if the connection broke afterwards (a server may refuse and close
 * before taking the whole body); a break with no answer is a failure to retry.
 */
function send(url: URL, method: string, headers: Record<string, string>, stream: Readable, size: number, envelope: MultipartBody | undefined, ctx: UploadContext): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(url, {
      method,
      headers,
      agent: false,
      lookup: checkedLookup(ctx.allowPrivateAddresses),
      timeout: IDLE_MS,
    });
    let answer: Answer | undefined;
    let sent = 0;
    let settled = false;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      ctx.signal.removeEventListener('abort', onAbort);
      // A success before the output was read to its end would be a success for a part of it.
      const bodySent = sent === size;
      if (answer && !ctx.signal.aborted && (bodySent || answer.status < 200 || answer.status >= 300)) resolve(answer);
      else if (answer && !err && !bodySent) reject(new Error(`HTTP ${answer.status} came before the whole output was sent`));
      else reject(err ?? new Error('the connection closed without an answer'));
      request.destroy();
    };
    const onAbort = () => settle(new Error('aborted'));
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    request.on('timeout', () => settle(new Error(`no progress for ${IDLE_MS / 1000} s`)));
    request.on('error', (err) => settle(err));
    request.on('close', () => settle());
    request.on('response', (response) => {
      answer = { status: response.statusCode ?? 0, location: header(response.headers.location) };
      // What the server said in the body is not needed: read it off so the exchange ends cleanly.
      response.resume();
      response.on('end', () => settle());
      response.on('error', (err) => settle(err));
    });

    const counted = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        sent += chunk.length;
        if (sent > size) return done(new Error(`the output gave more than its ${size} bytes`));
        done(null, chunk);
        ctx.onProgress(sent);
      },
      flush(done) {
        done(sent === size ? null : new Error(`the output ended after ${sent} of its ${size} bytes`));
      },
    });
    pipeline(
      stream,
      counted,
      async function* (file: AsyncIterable<Buffer>) {
        if (envelope) yield envelope.head;
        yield* file;
        if (envelope) yield envelope.tail;
      },
      request,
    ).catch((err: Error) => settle(err));
  });
}

function outcome(url: URL, answer: Answer): UploadResult {
  const where = describeUrl(url);
  const { status } = answer;
  if (status >= 200 && status < 300) {
    let location = url.toString();
    if (answer.location) {
      try {
        location = new URL(answer.location, url).toString();
      } catch {
        // an unreadable Location: the URL we sent to is what we know
      }
    }
    return { url: location };
  }
  if (status >= 300 && status < 400) throw new UploadRefused(`${where} answered HTTP ${status} (a redirect, which uploads do not follow)`);
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) throw new UploadRefused(`${where} refused the upload: HTTP ${status}`);
  throw new Error(`the upload to ${where} failed: HTTP ${status}`);
}

function parseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UploadRefused('the upload URL is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UploadRefused(`the upload URL must be http or https, not ${url.protocol.replace(/:$/, '')}`);
  return url;
}

/** The URL as messages may show it: no user, password or query (any of which may be a credential). */
export function describeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The destination's headers less those that are the connection's or the body's own. */
export function allowedHeaders(given: Record<string, string> | undefined, multipart: boolean): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, value] of Object.entries(given ?? {})) {
    const lower = name.toLowerCase();
    if (OWN_HEADERS.has(lower) || (multipart && lower === 'content-type')) continue;
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(String(value))) throw new UploadRefused(`the header ${JSON.stringify(name)} cannot be sent`);
    kept[name] = String(value);
  }
  return kept;
}

export interface MultipartBody {
  boundary: string;
  /** The other fields and the file part's headers: what goes before the file's bytes. */
  head: Buffer;
  /** The closing boundary. */
  tail: Buffer;
  /** The whole body's length: head + the file + tail. */
  length: number;
}

function multipartBody(destination: HttpDestination, source: UploadSource): MultipartBody {
  return multipartEnvelope({
    boundary: `----MontageUpload${randomBytes(16).toString('hex')}`,
    field: destination.field || 'file',
    filename: destination.filename || source.name,
    contentType: source.contentType,
    fields: destination.fields,
    size: source.size,
  });
}

/**
 * multipart/form-data (RFC 7578) around a file whose bytes are streamed in between, so the
 * whole length is known up front and no chunked encoding is needed. Names are escaped as
 * browsers do (`"` → %22, CR and LF → %0D %0A).
 */
export function multipartEnvelope(parts: { boundary: string; field: string; filename: string; contentType: string; fields?: Record<string, string>; size: number }): MultipartBody {
  const quote = (text: string) => text.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  let head = '';
  for (const [name, value] of Object.entries(parts.fields ?? {})) {
    head += `--${parts.boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${value}\r\n`;
  }
  head += `--${parts.boundary}\r\nContent-Disposition: form-data; name="${quote(parts.field)}"; filename="${quote(parts.filename)}"\r\n`;
  head += `Content-Type: ${parts.contentType.replace(/[\r\n]/g, '')}\r\n\r\n`;
  const headBytes = Buffer.from(head, 'utf8');
  const tail = Buffer.from(`\r\n--${parts.boundary}--\r\n`, 'utf8');
  return { boundary: parts.boundary, head: headBytes, tail, length: headBytes.length + parts.size + tail.length };
}
