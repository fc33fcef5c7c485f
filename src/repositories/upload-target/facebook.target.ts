import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { assertAllowedLiteral } from '../outbound-http/guarded-network';
import { DestinationType, type FacebookDestination, type UploadContext, type UploadResult, type UploadSource, type UploadTarget, UploadRefused } from './port';
// The guarded HTTP and chunk reading of the YouTube driver: the same needs, one implementation.
import { aborted, type Call, ChunkReader, guardedRequest, type HttpAnswer, plain } from './youtube.target';

/** Where a resumable upload stands, as saved between attempts. */
interface FacebookResume {
  session: string;
  video_id: string;
  /** The next window the server asked for: [start_offset, end_offset). */
  start_offset: number;
  end_offset: number;
  /** The finish phase succeeded: the video exists. */
  finished?: boolean;
}

interface Window {
  start: number;
  end: number;
}

/** Facebook's answer to a transfer at the wrong offset (1363037) carries the window it wants. */
class WrongOffset extends Error {
  constructor(readonly window: Window) {
    super('Facebook expects another offset');
  }
}

/** The upload session is gone (1363030, timed out): a new one is needed. */
class SessionExpired extends Error {}

/** Graph API error codes that say "try again later", whatever the error's type. */
const TRANSIENT_CODES = new Set([1, 2, 4, 17, 32, 341, 613]);
const TRANSIENT_SUBCODES = new Set([1363019, 1363033]);

/**
 * Facebook's resumable video upload (Graph API `/{page-id}/videos`): `start` opens a session
 * and names the first window of bytes, each `transfer` sends the window asked for and gets the
 * next, `finish` publishes with the title and description. Where it stands is saved after each
 * step, so a retry continues the session (the server corrects a stale offset with 1363037) or
 * only finishes, and never makes a second video.
 */
export class FacebookUploadTarget implements UploadTarget<DestinationType.Facebook> {
  readonly type = DestinationType.Facebook;
  private readonly timeoutMs: number;

  constructor(
    private readonly urls: { facebookGraphUrl: string },
    options: { timeoutMs?: number } = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 120_000;
  }

  async upload(destination: FacebookDestination, source: UploadSource, ctx: UploadContext): Promise<UploadResult> {
    if (ctx.signal.aborted) throw aborted();
    if (source.size === 0) throw new UploadRefused('Facebook does not take an empty file');
    const graph = new URL(this.urls.facebookGraphUrl);
    try {
      assertAllowedLiteral(graph.hostname, ctx.allowPrivateAddresses);
    } catch (err) {
      throw new UploadRefused((err as Error).message);
    }
    const endpoint = new URL(`${graph.pathname.replace(/\/$/, '')}/${encodeURIComponent(destination.page_id)}/videos`, graph);
    const graphCall = new GraphCall(endpoint, destination.page_token, { allowPrivateAddresses: ctx.allowPrivateAddresses, signal: ctx.signal, timeoutMs: this.timeoutMs });
    const result = (videoId: string): UploadResult => {
      ctx.onProgress(source.size);
      return { id: videoId, url: `https://www.facebook.com/${encodeURIComponent(destination.page_id)}/videos/${encodeURIComponent(videoId)}` };
    };

    try {
      let state = savedState(ctx.resume, source.size);
      if (state?.finished) return result(state.video_id);
      for (let fresh = 0; ; fresh++) {
        try {
          if (!state) {
            state = await this.start(graphCall, source.size);
            await ctx.saveResume({ ...state });
          }
          await this.transfer(graphCall, state, source, ctx);
          await graphCall.post({ upload_phase: 'finish', upload_session_id: state.session, ...(destination.title !== undefined ? { title: destination.title } : {}), ...(destination.description !== undefined ? { description: destination.description } : {}) });
          await ctx.saveResume({ ...state, finished: true });
          return result(state.video_id);
        } catch (err) {
          // A session that timed out is replaced, once per attempt; its unfinished video is never published.
          if (!(err instanceof SessionExpired) || fresh > 0) throw err;
          state = undefined;
        }
      }
    } catch (err) {
      if (ctx.signal.aborted) throw aborted();
      throw plain(err, 'Facebook');
    }
  }

  private async start(graphCall: GraphCall, size: number): Promise<FacebookResume> {
    const answer = await graphCall.post({ upload_phase: 'start', file_size: String(size) });
    const session = String(answer.upload_session_id ?? '');
    const videoId = String(answer.video_id ?? '');
    if (!session || !videoId) throw new Error('Facebook started no upload session');
    const window = offsets(answer);
    return { session, video_id: videoId, start_offset: window.start, end_offset: window.end };
  }

  /** Sends windows until the server has every byte (start_offset == end_offset), saving each step. */
  private async transfer(graphCall: GraphCall, state: FacebookResume, source: UploadSource, ctx: UploadContext): Promise<void> {
    let window: Window = { start: state.start_offset, end: state.end_offset };
    let reader: ChunkReader | undefined;
    let position = -1;
    let corrections = 0;
    if (window.start > 0) ctx.onProgress(Math.min(window.start, source.size));
    try {
      while (window.start < window.end) {
        if (window.start < 0 || window.end > source.size) throw new Error(`Facebook asked for bytes ${window.start}–${window.end} of a ${source.size}-byte file`);
        if (!reader || position !== window.start) {
          reader?.close();
          reader = new ChunkReader(await source.open(window.start));
          position = window.start;
        }
        const length = window.end - window.start;
        let next: Window;
        try {
          const answer = await graphCall.post({ upload_phase: 'transfer', upload_session_id: state.session, start_offset: String(window.start) }, { pieces: reader.pieces(length), length });
          position += length;
          next = offsets(answer);
        } catch (err) {
          if (!(err instanceof WrongOffset) || ++corrections > 3) throw err;
          // What the reader had read is unknown now: the next window reopens the output.
          position = -1;
          window = err.window;
          continue;
        }
        if (next.start <= window.start && next.start < next.end) throw new Error(`Facebook did not move past offset ${window.start}`);
        window = next;
        Object.assign(state, { start_offset: window.start, end_offset: window.end });
        await ctx.saveResume({ ...state });
        ctx.onProgress(Math.min(window.start, source.size));
      }
    } finally {
      reader?.close();
    }
    if (window.start < source.size) throw new Error(`Facebook ended the transfer at ${window.start} of ${source.size} bytes`);
  }
}

/** POSTs to `/{page-id}/videos` as multipart/form-data, the page token in the form (never in a URL). */
class GraphCall {
  constructor(
    private readonly endpoint: URL,
    private readonly token: string,
    private readonly call: Call,
  ) {}

  async post(fields: Record<string, string>, chunk?: { pieces: AsyncIterable<Buffer>; length: number }): Promise<Record<string, unknown>> {
    const boundary = `----montage${randomBytes(12).toString('hex')}`;
    const head = Buffer.from(
      Object.entries({ access_token: this.token, ...fields })
        .map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
        .join('') + (chunk ? `--${boundary}\r\nContent-Disposition: form-data; name="video_file_chunk"; filename="chunk"\r\nContent-Type: application/octet-stream\r\n\r\n` : ''),
    );
    const tail = Buffer.from(`${chunk ? '\r\n' : ''}--${boundary}--\r\n`);
    const body = Readable.from(
      (async function* () {
        yield head;
        if (chunk) yield* chunk.pieces;
        yield tail;
      })(),
      { objectMode: false },
    );
    const answer = await guardedRequest(this.endpoint, {
      ...this.call,
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(head.length + (chunk?.length ?? 0) + tail.length) },
      body,
    });
    return this.parse(answer, fields.upload_phase);
  }

  private parse(answer: HttpAnswer, phase: string | undefined): Record<string, unknown> {
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>;
    } catch {
      parsed = undefined;
    }
    const error = parsed?.error as GraphError | undefined;
    if (answer.status === 200 && parsed && !error) return parsed;
    throw this.failure(answer.status, error, phase);
  }

  private failure(status: number, error: GraphError | undefined, phase: string | undefined): Error {
    const hide = (text: string) => text.split(this.token).join('***');
    const what = `Facebook answered HTTP ${status} to the ${phase ?? 'upload'} phase`;
    if (!error) return status >= 500 || status === 429 || status === 408 ? new Error(what) : new UploadRefused(what);
    const detail = hide(`${error.type ?? 'error'} ${error.code ?? ''}${error.error_subcode ? `/${error.error_subcode}` : ''}: ${String(error.message ?? '').slice(0, 300)}`);
    if (error.error_subcode === 1363037) {
      const window = errorWindow(error.error_data);
      if (window) return new WrongOffset(window);
    }
    if (error.error_subcode === 1363030) return new SessionExpired(`the Facebook upload session expired (${detail})`);
    const transient = error.is_transient === true || TRANSIENT_CODES.has(Number(error.code)) || TRANSIENT_SUBCODES.has(Number(error.error_subcode)) || status >= 500 || status === 429;
    if (transient) return new Error(`${what} (${detail})`);
    // OAuthException, 190 (token), 10/200–299 (permissions), and any other 4xx: another try would repeat it.
    return new UploadRefused(`${what} (${detail})`);
  }
}

interface GraphError {
  message?: string;
  type?: string;
  code?: number;
  error_subcode?: number;
  is_transient?: boolean;
  error_data?: unknown;
}

function offsets(answer: Record<string, unknown>): Window {
  const start = Number(answer.start_offset);
  const end = Number(answer.end_offset);
  if (!Number.isInteger(start) || !Number.isInteger(end) || end < start) throw new Error('Facebook answered without a valid start_offset and end_offset');
  return { start, end };
}

/** error_data arrives as an object or as a JSON string. */
function errorWindow(data: unknown): Window | undefined {
  try {
    const value = (typeof data === 'string' ? JSON.parse(data) : data) as Record<string, unknown>;
    return offsets(value);
  } catch {
    return undefined;
  }
}

function savedState(resume: Record<string, unknown> | undefined, size: number): FacebookResume | undefined {
  if (!resume || typeof resume.session !== 'string' || typeof resume.video_id !== 'string') return undefined;
  const start = Number(resume.start_offset ?? 0);
  const end = Number(resume.end_offset ?? size);
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > size) return undefined;
  return { session: resume.session, video_id: resume.video_id, start_offset: start, end_offset: end, finished: resume.finished === true };
}
