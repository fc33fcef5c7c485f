import { OAuth2Client } from 'google-auth-library';
import * as http from 'node:http';
import * as https from 'node:https';
import { pipeline, Readable } from 'node:stream';
import { assertAllowedLiteral, checkedLookup, PrivateAddressError } from '../outbound-http/guarded-network';
import { DestinationType, type UploadContext, type UploadResult, type UploadSource, type UploadTarget, UploadRefused, type YouTubeDestination } from './port';

/** Google's resumable protocol wants every chunk but the last to be a multiple of 256 KiB. */
const CHUNK_UNIT = 256 * 1024;

export interface YouTubeUrls {
  /** Base of the Data API (`https://www.googleapis.com`). */
  youtubeApiUrl: string;
  /** The OAuth token endpoint (`https://oauth2.googleapis.com/token`). */
  youtubeOauthUrl: string;
}

/**
 * YouTube's resumable upload, spoken here over node:http(s) rather than through
 * @googleapis/youtube: its videos.insert sends a stream as one multipart request
 * (uploadType=multipart), so a dropped connection means starting over and a retry after a
 * crash cannot find what the first attempt sent (a duplicate video). The session URI is saved
 * as soon as it exists; a later attempt asks it how much arrived and continues from there, or
 * finds the finished video. google-auth-library's OAuth2Client turns the refresh token into
 * access tokens (and refreshes them during a long upload).
 */
export class YouTubeUploadTarget implements UploadTarget<DestinationType.YouTube> {
  readonly type = DestinationType.YouTube;
  private readonly chunkBytes: number;
  private readonly timeoutMs: number;

  constructor(
    private readonly urls: YouTubeUrls,
    options: { chunkBytes?: number; timeoutMs?: number } = {},
  ) {
    this.chunkBytes = options.chunkBytes ?? 8 * 1024 * 1024;
    if (this.chunkBytes <= 0 || this.chunkBytes % CHUNK_UNIT !== 0) throw new Error('YouTube chunks must be a multiple of 256 KiB');
    this.timeoutMs = options.timeoutMs ?? 120_000;
  }

  async upload(destination: YouTubeDestination, source: UploadSource, ctx: UploadContext): Promise<UploadResult> {
    if (ctx.signal.aborted) throw aborted();
    if (source.size === 0) throw new UploadRefused('YouTube does not take an empty file');
    const api = new URL(this.urls.youtubeApiUrl);
    const tokenUrl = new URL(this.urls.youtubeOauthUrl);
    try {
      assertAllowedLiteral(api.hostname, ctx.allowPrivateAddresses);
      assertAllowedLiteral(tokenUrl.hostname, ctx.allowPrivateAddresses);
    } catch (err) {
      throw new UploadRefused((err as Error).message);
    }
    const call: Call = { allowPrivateAddresses: ctx.allowPrivateAddresses, signal: ctx.signal, timeoutMs: this.timeoutMs };
    const auth = new OAuth2Client({
      clientId: destination.client_id,
      clientSecret: destination.client_secret,
      endpoints: { oauth2TokenUrl: tokenUrl.toString() },
      // Gaxios's own fetch would skip the private-address policy (and loads node-fetch lazily).
      transporterOptions: { fetchImplementation: guardedFetch(call) },
    });
    auth.setCredentials({ refresh_token: destination.refresh_token });
    const bearer = async (): Promise<string> => {
      try {
        const { token } = await auth.getAccessToken();
        if (!token) throw new Error('no access token in the answer');
        return `Bearer ${token}`;
      } catch (err) {
        throw tokenError(err, ctx.signal);
      }
    };

    try {
      let session = typeof ctx.resume?.session === 'string' ? ctx.resume.session : undefined;
      let start = 0;
      if (session) {
        const state = await this.ask(session, source.size, await bearer(), call);
        if (state.video) return finished(state.video, source, ctx);
        if (state.gone) session = undefined;
        else if (state.next >= source.size) throw new Error('YouTube has every byte but did not finish the video');
        else start = state.next;
      }
      if (!session) {
        session = await this.startSession(api, destination, source, await bearer(), call);
        // Saved before a byte is sent: an attempt that dies from here on is continued, not repeated.
        await ctx.saveResume({ session });
      }
      if (start > 0) ctx.onProgress(Math.min(start, source.size));
      return await this.send(session, start, source, ctx, bearer, call);
    } catch (err) {
      if (ctx.signal.aborted) throw aborted();
      throw plain(err, 'YouTube');
    }
  }

  /** POST the metadata; the answer's Location is the session URI. */
  private async startSession(api: URL, destination: YouTubeDestination, source: UploadSource, authorization: string, call: Call): Promise<string> {
    const url = new URL(`${api.pathname.replace(/\/$/, '')}/upload/youtube/v3/videos`, api);
    url.search = 'uploadType=resumable&part=snippet,status';
    const body = Buffer.from(JSON.stringify({ snippet: destination.snippet, status: destination.status ?? {} }));
    const answer = await guardedRequest(url, {
      ...call,
      method: 'POST',
      headers: {
        authorization,
        'content-type': 'application/json; charset=UTF-8',
        'content-length': String(body.length),
        'x-upload-content-length': String(source.size),
        'x-upload-content-type': source.contentType,
      },
      body,
    });
    const location = answer.headers.location;
    if (answer.status === 200 && location) return new URL(location, url).toString();
    throw apiError(answer, 'starting the upload');
  }

  /** Where a session stands: `PUT` with no bytes and `Content-Range: bytes *\/size`. */
  private async ask(session: string, size: number, authorization: string, call: Call): Promise<{ video?: VideoResource; gone?: boolean; next: number }> {
    const answer = await guardedRequest(new URL(session), {
      ...call,
      method: 'PUT',
      headers: { authorization, 'content-length': '0', 'content-range': `bytes */${size}` },
    });
    if (answer.status === 200 || answer.status === 201) return { video: video(answer), next: size };
    if (answer.status === 308) return { next: rangeEnd(answer.headers.range) };
    if (answer.status === 404 || answer.status === 410) return { gone: true, next: 0 };
    throw apiError(answer, 'asking the upload session where it stands');
  }

  /** The bytes from `start` in chunks; 308 says how much arrived (maybe less than sent: that part goes again). */
  private async send(session: string, start: number, source: UploadSource, ctx: UploadContext, bearer: () => Promise<string>, call: Call): Promise<UploadResult> {
    const size = source.size;
    const reader = new ChunkReader(await source.open(start));
    try {
      let offset = start;
      for (;;) {
        const chunk = await reader.read(Math.min(this.chunkBytes, size - offset));
        const last = offset + chunk.length - 1;
        const answer = await guardedRequest(new URL(session), {
          ...call,
          method: 'PUT',
          headers: { authorization: await bearer(), 'content-length': String(chunk.length), 'content-range': `bytes ${offset}-${last}/${size}` },
          body: chunk,
        });
        if (answer.status === 200 || answer.status === 201) return finished(video(answer), source, ctx);
        if (answer.status === 404 || answer.status === 410) {
          // The session expired: the next attempt finds it gone and starts a new one.
          throw new Error(`the YouTube upload session expired (HTTP ${answer.status})`);
        }
        if (answer.status !== 308) throw apiError(answer, 'sending the video');
        const next = rangeEnd(answer.headers.range);
        if (next < offset || next > last + 1) throw new Error(`YouTube reported an unexpected received range (${answer.headers.range ?? 'none'})`);
        if (next <= last) reader.unread(chunk.subarray(next - offset));
        if (next >= size) throw new Error('YouTube has every byte but did not finish the video');
        offset = next;
        ctx.onProgress(offset);
      }
    } finally {
      reader.close();
    }
  }
}

interface VideoResource {
  id: string;
}

function finished(resource: VideoResource, source: UploadSource, ctx: UploadContext): UploadResult {
  ctx.onProgress(source.size);
  return { id: resource.id, url: `https://www.youtube.com/watch?v=${encodeURIComponent(resource.id)}` };
}

function video(answer: HttpAnswer): VideoResource {
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const id = (parsed as { id?: unknown } | undefined)?.id;
  if (typeof id !== 'string' || !id) throw new Error('YouTube finished the upload without a video id');
  return { id };
}

/** `Range: bytes=0-1234` → 1235 (the next byte to send); no Range: nothing arrived yet. */
function rangeEnd(range: string | undefined): number {
  const match = /bytes=\d+-(\d+)/.exec(range ?? '');
  return match ? Number(match[1]) + 1 : 0;
}

/** Google's JSON error (`{error: {code, message, errors: [{reason}]}}`) as a refusal or a retry. */
function apiError(answer: HttpAnswer, doing: string): Error {
  let detail = '';
  try {
    const error = (JSON.parse(answer.body.toString('utf8')) as { error?: { message?: string; errors?: Array<{ reason?: string }> } }).error;
    detail = [error?.errors?.[0]?.reason, error?.message].filter(Boolean).join(': ');
  } catch {
    // not JSON: the status says enough
  }
  const message = `YouTube answered HTTP ${answer.status} ${doing}${detail ? ` (${detail.slice(0, 300)})` : ''}`;
  const retryable = answer.status >= 500 || answer.status === 408 || answer.status === 429;
  return retryable ? new Error(message) : new UploadRefused(message);
}

/** The token endpoint's answer: wrong client or refresh token (400 invalid_grant, 401, 403) are refusals. */
function tokenError(err: unknown, signal: AbortSignal): Error {
  if (signal.aborted) return aborted();
  const refused = privateAddress(err);
  if (refused) return new UploadRefused(refused.message);
  const response = (err as { response?: { status?: number; data?: { error?: unknown } } }).response;
  const status = response?.status;
  const reason = typeof response?.data?.error === 'string' ? ` ${response.data.error}` : '';
  if (status === 400 || status === 401 || status === 403) return new UploadRefused(`YouTube's token endpoint refused the OAuth client or refresh token (HTTP ${status}${reason})`);
  if (status) return new Error(`YouTube's token endpoint answered HTTP ${status}${reason}`);
  return new Error(`YouTube's token endpoint could not be reached (${networkReason(err)})`);
}

// ---------------------------------------------------------------------------------------------
// Guarded HTTP for resumable protocols (the Facebook driver uses these too).

export interface Call {
  allowPrivateAddresses: boolean;
  signal: AbortSignal;
  /** A socket idle this long fails the request. */
  timeoutMs: number;
}

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The answer's first 1 MiB. */
  body: Buffer;
}

const KEEP_BYTES = 1024 * 1024;

/**
 * One request through the private-address policy (checked lookup, IP literals judged, no pooled
 * socket). `body` may be a stream (its length in `content-length`): if it fails, that error is
 * what the request fails with.
 */
export function guardedRequest(url: URL, options: Call & { method: string; headers: Record<string, string>; body?: Buffer | Readable }): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    try {
      assertAllowedLiteral(url.hostname, options.allowPrivateAddresses);
    } catch (err) {
      return reject(err);
    }
    let settled = false;
    let answered = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      reject(err);
    };
    const request = (url.protocol === 'https:' ? https : http).request(url, {
      method: options.method,
      headers: { 'user-agent': 'Montage', ...options.headers },
      lookup: checkedLookup(options.allowPrivateAddresses),
      agent: false, // a pooled socket would skip the checked lookup
      signal: options.signal,
    });
    request.setTimeout(options.timeoutMs, () => request.destroy(Object.assign(new Error(`no answer within ${options.timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
    request.on('error', (err) => {
      // Once the head arrived, a server closing early (not reading all of the body) is its answer.
      if (!answered) fail(err);
    });
    request.on('response', (response) => {
      answered = true;
      const chunks: Buffer[] = [];
      let kept = 0;
      response.on('data', (chunk: Buffer) => {
        if (kept < KEEP_BYTES) chunks.push(chunk.subarray(0, KEEP_BYTES - kept));
        kept += chunk.length;
      });
      response.on('error', fail);
      response.on('aborted', () => fail(Object.assign(new Error('the connection closed mid-answer'), { code: 'ECONNRESET' })));
      response.on('end', () => {
        if (settled) return;
        settled = true;
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) });
      });
    });
    if (options.body instanceof Readable) {
      pipeline(options.body, request, (err) => {
        if (err && !answered) fail(err);
      });
    } else {
      request.end(options.body);
    }
  });
}

/** A `fetch` for gaxios (google-auth-library's transport) over guardedRequest. */
function guardedFetch(call: Call): (input: string | URL | Request, init?: RequestInit) => Promise<Response> {
  return async (input, init) => {
    const request = new Request(input, init);
    const body = request.body ? Buffer.from(await request.arrayBuffer()) : undefined;
    const headers: Record<string, string> = {};
    request.headers.forEach((value, key) => (headers[key] = value));
    if (body) headers['content-length'] = String(body.length);
    const answer = await guardedRequest(new URL(request.url), { ...call, method: request.method, headers, body });
    const responseHeaders = new Headers();
    for (const [key, value] of Object.entries(answer.headers)) {
      for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value]) responseHeaders.append(key, one);
    }
    const empty = [204, 205, 304].includes(answer.status);
    return new Response(empty ? null : answer.body, { status: answer.status, headers: responseHeaders });
  };
}

/**
 * Exact-size pieces of a stream, read in order: what a chunked protocol sends next. Bytes a
 * server did not keep go back with `unread`, to be sent again before the rest.
 */
export class ChunkReader {
  private readonly iterator: AsyncIterator<Buffer>;
  private readonly pending: Buffer[] = [];

  constructor(private readonly stream: Readable) {
    this.iterator = stream[Symbol.asyncIterator]();
  }

  /** Exactly `n` bytes in one Buffer (a chunk held in memory: at most the chunk size). */
  async read(n: number): Promise<Buffer> {
    const pieces: Buffer[] = [];
    for await (const piece of this.pieces(n)) pieces.push(piece);
    return pieces.length === 1 ? pieces[0] : Buffer.concat(pieces);
  }

  /** Exactly `n` bytes as they come, without gathering them: a stream to send as a request body. */
  async *pieces(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      let piece = this.pending.shift();
      if (!piece) {
        const next = await this.iterator.next();
        if (next.done) throw new Error(`the output ended ${left} bytes short of its size`);
        piece = next.value;
      }
      if (piece.length > left) {
        this.pending.unshift(piece.subarray(left));
        piece = piece.subarray(0, left);
      }
      left -= piece.length;
      yield piece;
    }
  }

  unread(bytes: Buffer): void {
    if (bytes.length > 0) this.pending.unshift(bytes);
  }

  close(): void {
    this.stream.destroy();
  }
}

export function aborted(): Error {
  return new Error('the upload was aborted');
}

/** A PrivateAddressError anywhere in an error's causes (gaxios wraps what the fetch threw). */
export function privateAddress(err: unknown): PrivateAddressError | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof PrivateAddressError) return e;
  }
  return undefined;
}

function networkReason(err: unknown): string {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  }
  return 'the connection failed';
}

/**
 * What leaves a driver: refusals as they are, a forbidden address as a refusal, network errors
 * as a short line naming the service (never a session URL: it is a credential), the rest (a
 * source that failed to read) unchanged.
 */
export function plain(err: unknown, service: string): Error {
  if (err instanceof UploadRefused) return err;
  const refused = privateAddress(err);
  if (refused) return new UploadRefused(refused.message);
  const code = (err as NodeJS.ErrnoException)?.code;
  if (typeof code === 'string' && /^(E[A-Z]+|UND_ERR_\w+)$/.test(code)) return new Error(`${service} upload failed: ${err instanceof Error ? err.message : code}`);
  return err instanceof Error ? err : new Error(String(err));
}
