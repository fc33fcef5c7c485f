import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface YouTubeVideo {
  id: string;
  bytes: Buffer;
  snippet: { title?: string; description?: string; tags?: string[]; categoryId?: string };
  status: Record<string, unknown>;
  /** X-Upload-Content-Type of its session. */
  contentType: string;
}

export interface YouTubeTestServer {
  /** For config.deliveries.youtubeApiUrl. */
  apiUrl: string;
  /** For config.deliveries.youtubeOauthUrl. */
  oauthUrl: string;
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  /** Finished videos, in the order they were made. */
  videos: YouTubeVideo[];
  videoByTitle(title: string): YouTubeVideo | undefined;
  /** Upload sessions started (POSTs that got a Location). */
  sessionsStarted(): number;
  /** Bytes of video received in all chunk PUTs, kept or not. */
  bytesReceived(): number;
  /** Access tokens handed out. */
  tokensIssued(): number;
  /** After `skip` more chunk PUTs, the next is read whole, then answered with `status` and not kept. */
  failChunk(status?: number, skip?: number): void;
  /** After `skip` more chunk PUTs, the next one's connection is cut after `afterBytes` of its body; the whole 256 KiB blocks received are kept. */
  dropChunk(afterBytes: number, skip?: number): void;
  /** Every session forgets itself: asking one answers 404. */
  expireSessions(): void;
  stop(): Promise<void>;
}

interface Session {
  id: string;
  size: number;
  contentType: string;
  snippet: YouTubeVideo['snippet'];
  status: Record<string, unknown>;
  received: Buffer[];
  length: number;
  video?: YouTubeVideo;
}

const BLOCK = 256 * 1024;

/**
 * YouTube's resumable upload protocol on 127.0.0.1, with its OAuth token endpoint: POST
 * metadata → Location; PUT chunks with Content-Range → 308 + Range, then 200 + the video;
 * `bytes *\/size` asks where a session stands. Bearer tokens and the refresh token are checked.
 */
export async function startYouTubeServer(): Promise<YouTubeTestServer> {
  const clientId = 'montage-test.apps.googleusercontent.com';
  const clientSecret = `secret-${randomBytes(6).toString('hex')}`;
  const refreshToken = `1//refresh-${randomBytes(8).toString('hex')}`;
  const accessTokens = new Set<string>();
  const sessions = new Map<string, Session>();
  const videos: YouTubeVideo[] = [];
  let sessionsStarted = 0;
  let bytesReceived = 0;
  let failPlan: { status: number; skip: number } | undefined;
  let dropPlan: { afterBytes: number; skip: number } | undefined;

  const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
    res.end(JSON.stringify(body));
  };
  const error = (res: http.ServerResponse, status: number, reason: string, message: string) =>
    json(res, status, { error: { code: status, message, errors: [{ reason, message }] } });
  const readAll = async (req: http.IncomingMessage): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  const authorized = (req: http.IncomingMessage) => accessTokens.has((req.headers.authorization ?? '').replace(/^Bearer /, ''));
  const range = (session: Session) => (session.length > 0 ? { range: `bytes=0-${session.length - 1}` } : {});
  const keep = (session: Session, bytes: Buffer) => {
    session.received.push(bytes);
    session.length += bytes.length;
  };
  const finish = (session: Session): YouTubeVideo => {
    session.video ??= (() => {
      const made: YouTubeVideo = { id: randomBytes(8).toString('base64url').slice(0, 11), bytes: Buffer.concat(session.received), snippet: session.snippet, status: session.status, contentType: session.contentType };
      videos.push(made);
      return made;
    })();
    return session.video;
  };
  const resource = (v: YouTubeVideo) => ({ kind: 'youtube#video', id: v.id, snippet: v.snippet, status: { uploadStatus: 'uploaded', ...v.status } });

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (req.method === 'POST' && url.pathname === '/token') {
        const form = new URLSearchParams((await readAll(req)).toString('utf8'));
        if (form.get('grant_type') !== 'refresh_token') return json(res, 400, { error: 'unsupported_grant_type' });
        if (form.get('client_id') !== clientId || form.get('client_secret') !== clientSecret) return json(res, 401, { error: 'invalid_client', error_description: 'The OAuth client was not found.' });
        if (form.get('refresh_token') !== refreshToken) return json(res, 400, { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' });
        const token = `ya29.${randomBytes(12).toString('hex')}`;
        accessTokens.add(token);
        return json(res, 200, { access_token: token, expires_in: 3599, token_type: 'Bearer', scope: 'https://www.googleapis.com/auth/youtube.upload' });
      }

      if (req.method === 'POST' && url.pathname === '/upload/youtube/v3/videos') {
        const body = await readAll(req);
        if (!authorized(req)) return error(res, 401, 'authError', 'Invalid Credentials');
        if (url.searchParams.get('uploadType') !== 'resumable') return error(res, 400, 'badRequest', 'uploadType must be resumable');
        const size = Number(req.headers['x-upload-content-length']);
        if (!Number.isInteger(size) || size <= 0) return error(res, 400, 'badContent', 'X-Upload-Content-Length is missing');
        const metadata = JSON.parse(body.toString('utf8')) as { snippet?: YouTubeVideo['snippet']; status?: Record<string, unknown> };
        if (!metadata.snippet?.title) return error(res, 400, 'invalidTitle', 'The video title is missing');
        const id = randomBytes(12).toString('hex');
        sessions.set(id, { id, size, contentType: String(req.headers['x-upload-content-type'] ?? ''), snippet: metadata.snippet, status: metadata.status ?? {}, received: [], length: 0 });
        sessionsStarted++;
        const location = `http://${req.headers.host}/upload/youtube/v3/videos?uploadType=resumable&upload_id=${id}`;
        res.writeHead(200, { location, 'content-length': '0' });
        return res.end();
      }

      if (req.method === 'PUT' && url.pathname === '/upload/youtube/v3/videos') {
        if (!authorized(req)) {
          await readAll(req);
          return error(res, 401, 'authError', 'Invalid Credentials');
        }
        const session = sessions.get(url.searchParams.get('upload_id') ?? '');
        if (!session) {
          await readAll(req);
          return error(res, 404, 'notFound', 'The upload session does not exist');
        }
        const contentRange = String(req.headers['content-range'] ?? '');
        if (/^bytes \*\/\d+$/.test(contentRange)) {
          await readAll(req);
          if (session.video) return json(res, 200, resource(session.video));
          res.writeHead(308, { ...range(session), 'content-length': '0' });
          return res.end();
        }
        const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(contentRange);
        if (!match) {
          await readAll(req);
          return error(res, 400, 'badContent', 'Content-Range is missing or malformed');
        }
        const [first, last, total] = match.slice(1).map(Number);
        const drop = dropPlan && dropPlan.skip-- === 0 ? dropPlan.afterBytes : undefined;
        const fail = failPlan && failPlan.skip-- === 0 ? failPlan.status : undefined;
        if (drop !== undefined) dropPlan = undefined;
        if (fail !== undefined) failPlan = undefined;
        if (drop !== undefined) {
          const got: Buffer[] = [];
          let n = 0;
          req.on('data', (chunk: Buffer) => {
            if (n >= drop) return;
            const take = Math.min(chunk.length, drop - n);
            got.push(chunk.subarray(0, take));
            n += take;
            bytesReceived += take;
            if (n < drop) return;
            // What arrived before the cut is kept in whole blocks, as Google's servers persist it.
            if (first === session.length) keep(session, Buffer.concat(got).subarray(0, Math.floor(n / BLOCK) * BLOCK));
            req.socket.destroy();
          });
          req.on('end', () => req.socket.destroy()); // a body shorter than the cut is cut at its end
          return;
        }
        const body = await readAll(req);
        bytesReceived += body.length;
        if (fail !== undefined) return error(res, fail, 'backendError', 'Backend Error');
        if (total !== session.size || body.length !== last - first + 1) return error(res, 400, 'badContent', 'Content-Range does not match the body or the session');
        // A chunk that starts elsewhere than where the session stands is not taken: 308 says where.
        if (first === session.length) keep(session, body);
        if (session.length >= session.size) return json(res, 200, resource(finish(session)));
        res.writeHead(308, { ...range(session), 'content-length': '0' });
        return res.end();
      }

      json(res, 404, { error: { code: 404, message: 'Not Found' } });
    } catch (err) {
      if (!res.headersSent) json(res, 500, { error: { code: 500, message: (err as Error).message } });
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    apiUrl: base,
    oauthUrl: `${base}/token`,
    clientId,
    clientSecret,
    refreshToken,
    videos,
    videoByTitle: (title) => videos.find((v) => v.snippet.title === title),
    sessionsStarted: () => sessionsStarted,
    bytesReceived: () => bytesReceived,
    tokensIssued: () => accessTokens.size,
    failChunk: (status = 503, skip = 0) => {
      failPlan = { status, skip };
    },
    dropChunk: (afterBytes, skip = 0) => {
      dropPlan = { afterBytes, skip };
    },
    expireSessions: () => sessions.clear(),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
