import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as the server saw it. */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** Bytes of body received. */
  bytes: number;
  /** The whole body arrived (the client did not break off). */
  complete: boolean;
  /** The status it was answered with (0 when it never got an answer). */
  status: number;
  /** multipart/form-data, parsed: the other fields, and the file's field name, name and type. */
  form?: { fields: Record<string, string>; fileField?: string; filename?: string; fileType?: string };
}

export interface HttpUploadServer {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Every request so far, in the order they started. */
  requests: ReceivedRequest[];
  /** TCP connections accepted so far. */
  connections(): number;
  /** What a complete, accepted upload stored under `path` (PUT: the body; POST: the file part). */
  stored(path: string): Buffer | undefined;
  /** Answers the next `times` requests with `status` (after reading their bodies), with a Location header when given. */
  answerNext(status: number, options?: { times?: number; location?: string }): void;
  /** Forgets the answers answerNext scripted and did not give yet. */
  clearAnswers(): void;
  stop(): Promise<void>;
}

/** Paths under this need `Authorization: Bearer <token>`; others are open. */
export const SECURED_PREFIX = '/secured/';

/**
 * A loopback upload endpoint: takes PUT (the body is the file) and POST multipart/form-data
 * (parsed with the platform's own parser, undici's FormData, not ours), keeps complete uploads
 * in memory, and records every request. A PUT is answered 201 with a relative Location
 * (`<path>?stored=1`), a POST 200 without one. An upload broken off mid-body stores nothing.
 */
export async function startHttpUploadServer(options: { token?: string } = {}): Promise<HttpUploadServer> {
  const files = new Map<string, Buffer>();
  const requests: ReceivedRequest[] = [];
  const scripted: { status: number; location?: string }[] = [];
  let connections = 0;

  const server = http.createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const seen: ReceivedRequest = { method: req.method ?? '', path, headers: req.headers, bytes: 0, complete: false, status: 0 };
    requests.push(seen);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => {
      seen.bytes += chunk.length;
      chunks.push(chunk);
    });
    req.on('end', () => {
      seen.complete = true;
      void answer(req, res, seen, Buffer.concat(chunks)).catch((err: Error) => {
        seen.status = 400;
        res.writeHead(400, { 'content-type': 'text/plain' }).end(err.message);
      });
    });
  });

  async function answer(req: http.IncomingMessage, res: http.ServerResponse, seen: ReceivedRequest, body: Buffer): Promise<void> {
    const reply = (status: number, headers: Record<string, string> = {}) => {
      seen.status = status;
      res.writeHead(status, { 'content-type': 'text/plain', ...headers }).end(`${status}\n`);
    };
    const next = scripted.shift();
    if (next) return reply(next.status, next.location ? { location: next.location } : {});
    if (seen.path.startsWith(SECURED_PREFIX) && req.headers.authorization !== `Bearer ${options.token}`) return reply(401);
    if (req.method === 'PUT') {
      files.set(seen.path, body);
      return reply(201, { location: `${seen.path}?stored=1` });
    }
    if (req.method === 'POST') {
      const form = await new Response(body, { headers: { 'content-type': req.headers['content-type'] ?? '' } }).formData();
      seen.form = { fields: {} };
      for (const [name, value] of form.entries()) {
        if (typeof value === 'string') {
          seen.form.fields[name] = value;
        } else {
          seen.form.fileField = name;
          seen.form.filename = value.name;
          seen.form.fileType = value.type;
          files.set(seen.path, Buffer.from(await value.arrayBuffer()));
        }
      }
      return reply(200);
    }
    reply(405);
  }

  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    connections: () => connections,
    stored: (path) => files.get(path),
    answerNext: (status, { times = 1, location } = {}) => {
      for (let i = 0; i < times; i++) scripted.push({ status, location });
    },
    clearAnswers: () => {
      scripted.length = 0;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
