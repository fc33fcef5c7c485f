import { randomBytes, randomInt } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FacebookVideo {
  id: string;
  pageId: string;
  bytes: Buffer;
  title?: string;
  description?: string;
}

export interface FacebookTestServer {
  /** For config.deliveries.facebookGraphUrl (a versioned base, as graph-video.facebook.com/v19.0). */
  graphUrl: string;
  pageId: string;
  pageToken: string;
  /** Videos published (finish phase), in order. */
  videos: FacebookVideo[];
  videoByTitle(title: string): FacebookVideo | undefined;
  /** Upload sessions started. */
  sessionsStarted(): number;
  /** Bytes of video received in all transfers, kept or not. */
  bytesReceived(): number;
  /** After `skip` more transfers, the next is read whole, then answered with a transient error (HTTP `status`) and not kept. */
  failTransfer(status?: number, skip?: number): void;
  /** After `skip` more transfers, the next is kept but its connection is cut before the answer (the client cannot know). */
  keepThenDrop(skip?: number): void;
  /** After `skip` more requests longer than `afterBytes` (transfers), the next one's connection is cut after `afterBytes` of its body; nothing of it is kept. */
  dropTransfer(afterBytes: number, skip?: number): void;
  /** Every session times out: transfers answer 1363030. */
  expireSessions(): void;
  stop(): Promise<void>;
}

interface Session {
  id: string;
  videoId: string;
  size: number;
  received: Buffer[];
  length: number;
  finished: boolean;
}

interface Form {
  fields: Record<string, string>;
  file?: Buffer;
}

/**
 * Facebook's resumable video upload (Graph API `POST /{page-id}/videos`, multipart) on
 * 127.0.0.1: start → session and first window; transfer at the window's start → next window
 * (a wrong start answers 1363037 with the expected window in error_data); finish publishes.
 * The page token is checked (190 OAuthException otherwise).
 */
export async function startFacebookServer(options: { chunkBytes?: number } = {}): Promise<FacebookTestServer> {
  const chunkBytes = options.chunkBytes ?? 1024 * 1024;
  const pageId = String(100000000000000 + randomInt(1e9));
  const pageToken = `EAAB${randomBytes(16).toString('hex')}`;
  const sessions = new Map<string, Session>();
  const videos: FacebookVideo[] = [];
  let sessionsStarted = 0;
  let bytesReceived = 0;
  let failPlan: { status: number; skip: number } | undefined;
  let keepDropPlan: { skip: number } | undefined;
  let dropPlan: { afterBytes: number; skip: number } | undefined;

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(JSON.stringify(body));
  };
  const graphError = (res: http.ServerResponse, status: number, error: Record<string, unknown>) => json(res, status, { error: { fbtrace_id: randomBytes(6).toString('hex'), ...error } });
  const window = (s: Session) => ({ start_offset: String(s.length), end_offset: String(Math.min(s.length + chunkBytes, s.size)) });
  const plan = <T extends { skip: number }>(p: T | undefined): T | undefined => (p && p.skip-- === 0 ? p : undefined);

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = /^\/v19\.0\/([^/]+)\/videos$/.exec(url.pathname);
    if (req.method !== 'POST' || !match) return graphError(res, 400, { message: 'Unknown path components', type: 'OAuthException', code: 2500 });

    // Only a request longer than the cut (one carrying a chunk) counts towards a planned cut.
    const drop = Number(req.headers['content-length']) > (dropPlan?.afterBytes ?? Infinity) ? plan(dropPlan) : undefined;
    if (drop) {
      dropPlan = undefined;
      let n = 0;
      req.on('data', (chunk: Buffer) => {
        n += chunk.length;
        if (n >= drop.afterBytes) req.socket.destroy();
      });
      req.on('end', () => req.socket.destroy());
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const form = parseMultipart(Buffer.concat(chunks), String(req.headers['content-type'] ?? ''));
    if (!form) return graphError(res, 400, { message: 'The request body is not multipart/form-data', type: 'OAuthException', code: 100 });
    const { fields, file } = form;
    if (fields.access_token !== pageToken) {
      return graphError(res, 400, { message: 'Invalid OAuth access token - Cannot parse access token', type: 'OAuthException', code: 190 });
    }
    if (match[1] !== pageId) {
      return graphError(res, 400, { message: `Unsupported post request. Object with ID '${match[1]}' does not exist`, type: 'GraphMethodException', code: 100, error_subcode: 33 });
    }

    if (fields.upload_phase === 'start') {
      const size = Number(fields.file_size);
      if (!Number.isInteger(size) || size < 1) return graphError(res, 400, { message: 'No Video Detected', type: 'OAuthException', code: 6000, error_subcode: 1363022 });
      const session: Session = { id: String(randomInt(1e12)), videoId: String(randomInt(1e12)), size, received: [], length: 0, finished: false };
      sessions.set(session.id, session);
      sessionsStarted++;
      return json(res, 200, { video_id: session.videoId, upload_session_id: session.id, ...window(session) });
    }

    const session = sessions.get(fields.upload_session_id ?? '');
    if (!session) return graphError(res, 400, { message: 'Video Upload Timeout', type: 'OAuthException', code: 6001, error_subcode: 1363030 });

    if (fields.upload_phase === 'transfer') {
      if (!file) return graphError(res, 400, { message: 'No Video Selected', type: 'OAuthException', code: 6001, error_subcode: 1363020 });
      bytesReceived += file.length;
      const fail = plan(failPlan);
      if (fail) {
        failPlan = undefined;
        return graphError(res, fail.status, { message: 'An unexpected error has occurred. Please retry your request later.', type: 'OAuthException', code: 2, is_transient: true });
      }
      if (Number(fields.start_offset) !== session.length) {
        return graphError(res, 400, {
          message: 'There was a problem uploading your video. Please try uploading it again.',
          type: 'OAuthException',
          code: 6001,
          error_subcode: 1363037,
          error_data: JSON.stringify(window(session)),
        });
      }
      if (file.length === 0 || session.length + file.length > session.size) {
        return graphError(res, 400, { message: 'The chunk does not fit the file size', type: 'OAuthException', code: 6001, error_subcode: 1363019 });
      }
      session.received.push(file);
      session.length += file.length;
      if (plan(keepDropPlan)) {
        keepDropPlan = undefined;
        return req.socket.destroy();
      }
      return json(res, 200, window(session));
    }

    if (fields.upload_phase === 'finish') {
      if (session.length !== session.size) return graphError(res, 400, { message: 'The video is not complete', type: 'OAuthException', code: 6001, error_subcode: 1363019 });
      if (!session.finished) {
        session.finished = true;
        videos.push({ id: session.videoId, pageId, bytes: Buffer.concat(session.received), title: fields.title, description: fields.description });
      }
      return json(res, 200, { success: true });
    }
    return graphError(res, 400, { message: 'upload_phase must be start, transfer or finish', type: 'OAuthException', code: 100 });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    graphUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v19.0`,
    pageId,
    pageToken,
    videos,
    videoByTitle: (title) => videos.find((v) => v.title === title),
    sessionsStarted: () => sessionsStarted,
    bytesReceived: () => bytesReceived,
    failTransfer: (status = 500, skip = 0) => {
      failPlan = { status, skip };
    },
    keepThenDrop: (skip = 0) => {
      keepDropPlan = { skip };
    },
    dropTransfer: (afterBytes, skip = 0) => {
      dropPlan = { afterBytes, skip };
    },
    expireSessions: () => sessions.clear(),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** multipart/form-data: text fields, and the bytes of `video_file_chunk`. */
function parseMultipart(body: Buffer, contentType: string): Form | undefined {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType);
  if (!contentType.startsWith('multipart/form-data') || !boundary) return undefined;
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]}`);
  const form: Form = { fields: {} };
  let at = body.indexOf(delimiter);
  while (at !== -1) {
    const partStart = at + delimiter.length;
    if (body.subarray(partStart, partStart + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, partStart);
    if (next === -1) return undefined;
    const part = body.subarray(partStart + 2, next - 2); // between the CRLF after the delimiter and the CRLF before the next
    const split = part.indexOf('\r\n\r\n');
    const head = part.subarray(0, split).toString('utf8');
    const content = part.subarray(split + 4);
    const name = /name="([^"]*)"/.exec(head)?.[1];
    if (name === 'video_file_chunk') form.file = Buffer.from(content);
    else if (name) form.fields[name] = content.toString('utf8');
    at = next;
  }
  return form;
}
