import type { Request, Response } from 'express';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Delivery } from './delivery.types';
import { parseRange } from './byte-range';

/** Sends a stored output (ETag, Range, HEAD) or a live one (streamed as it is written). */
export async function sendDelivery(req: Request, res: Response, delivery: Delivery): Promise<void> {
  res.setHeader('Content-Type', delivery.contentType);
  if (delivery.kind === 'live') {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Montage-Status', 'rendering');
    res.status(200);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    res.flushHeaders();
    for await (const chunk of delivery.body) {
      if (res.destroyed) break;
      if (!res.write(chunk)) await drainOrClose(res);
    }
    res.end();
    return;
  }
  const etag = `"${delivery.key}"`;
  res.setHeader('ETag', etag);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
  res.setHeader('X-Montage-Status', 'done');
  if (req.headers['if-none-match'] === etag) {
    res.status(304).end();
    return;
  }
  const range = parseRange(req.headers.range, delivery.size);
  if (range === 'unsatisfiable') {
    res.setHeader('Content-Range', `bytes */${delivery.size}`);
    res.status(416).json({ statusCode: 416, error: 'Range Not Satisfiable', message: `the output is ${delivery.size} bytes` });
    return;
  }
  // Opened before the status is set, so a storage that fails gets a proper (uncached) error.
  let body: Readable | undefined;
  try {
    body = req.method === 'HEAD' ? undefined : await delivery.open(range || undefined);
  } catch (err) {
    for (const name of ['ETag', 'Cache-Control', 'Accept-Ranges', 'X-Montage-Status']) res.removeHeader(name);
    throw err;
  }
  if (range) {
    res.status(206);
    res.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${delivery.size}`);
    res.setHeader('Content-Length', String(range.end - range.start + 1));
  } else {
    res.status(200);
    res.setHeader('Content-Length', String(delivery.size));
  }
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await pipeline(body!, res).catch(() => undefined); // a client that leaves is not an error
}

/** Waits for the socket to take more, or to go away; leaves no listener behind either way. */
function drainOrClose(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** `Authorization: Bearer <key>` or `X-Api-Key: <key>`. */
export function apiKeyOf(req: Request): string | undefined {
  const auth = req.headers.authorization;
  if (auth && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '').trim() || undefined;
  const key = req.headers['x-api-key'];
  return typeof key === 'string' && key.trim() ? key.trim() : undefined;
}

/** `abc123.mp4` → token and extension; undefined when it is not that shape. */
export function splitFile(file: string): { token: string; ext: string } | undefined {
  const m = /^([A-Za-z0-9_-]{1,128})\.([A-Za-z0-9]{1,8})$/.exec(file);
  return m ? { token: m[1], ext: m[2].toLowerCase() } : undefined;
}

export function baseUrlOf(req: Request, configured?: string): string {
  if (configured) return configured.replace(/\/+$/, '');
  return `${req.protocol}://${req.get('host') ?? 'localhost'}`;
}
