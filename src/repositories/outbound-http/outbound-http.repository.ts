import { Injectable } from '@nestjs/common';
import * as http from 'node:http';
import * as https from 'node:https';
import { assertAllowedLiteral, checkedLookup, PrivateAddressError } from './guarded-network';

export interface OutboundRequest {
  method: 'GET' | 'POST' | 'PUT';
  url: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** The whole exchange: connect, send, and the answer's head and body. */
  timeoutMs: number;
  allowPrivateAddresses: boolean;
  /** How much of the answer's body is kept (for a delivery log): the rest is read and dropped. */
  keepBodyBytes?: number;
}

export interface OutboundResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The answer's first `keepBodyBytes` (default 1 KiB), as text. */
  body: string;
  durationMs: number;
}

/** Why a request got no HTTP answer: said plainly, without node's stack. */
export class OutboundError extends Error {
  constructor(
    readonly kind: 'timeout' | 'private_address' | 'refused' | 'not_found' | 'network' | 'bad_url',
    message: string,
  ) {
    super(message);
    this.name = 'OutboundError';
  }
}

/**
 * One HTTP request to a URL a client gave (webhooks, onsuccess/onerror callbacks): redirects
 * are answers, never followed; hosts are checked against the private-address policy at
 * connection time (no DNS rebinding); one deadline covers everything.
 */
@Injectable()
export class OutboundHttpRepository {
  async send(req: OutboundRequest): Promise<OutboundResponse> {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      throw new OutboundError('bad_url', 'not a valid absolute URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OutboundError('bad_url', `only http and https URLs are allowed, not ${url.protocol.replace(/:$/, '')}`);
    try {
      assertAllowedLiteral(url.hostname, req.allowPrivateAddresses);
    } catch (err) {
      throw new OutboundError('private_address', (err as Error).message);
    }
    const started = Date.now();
    const keep = req.keepBodyBytes ?? 1024;
    const send = url.protocol === 'https:' ? https.request : http.request;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), req.timeoutMs);
    try {
      return await new Promise<OutboundResponse>((resolve, reject) => {
        const request = send(
          url,
          {
            method: req.method,
            headers: { 'user-agent': 'Montage', ...(req.body !== undefined ? { 'content-length': String(Buffer.byteLength(req.body)) } : {}), ...req.headers },
            lookup: checkedLookup(req.allowPrivateAddresses),
            agent: false, // a pooled socket would skip the checked lookup
            signal: timeout.signal,
          },
          (response) => {
            const chunks: Buffer[] = [];
            let kept = 0;
            response.on('data', (chunk: Buffer) => {
              if (kept < keep) {
                chunks.push(chunk.subarray(0, keep - kept));
                kept += Math.min(chunk.length, keep - kept);
              }
            });
            response.on('end', () =>
              resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8'), durationMs: Date.now() - started }),
            );
            response.on('error', reject);
          },
        );
        request.on('error', reject);
        request.end(req.body);
      });
    } catch (err) {
      throw describe(err, timeout.signal.aborted, url, req.timeoutMs);
    } finally {
      clearTimeout(timer);
    }
  }
}

function describe(err: unknown, timedOut: boolean, url: URL, timeoutMs: number): OutboundError {
  if (err instanceof OutboundError) return err;
  if (timedOut) return new OutboundError('timeout', `no answer within ${timeoutMs / 1000} s`);
  if (err instanceof PrivateAddressError) return new OutboundError('private_address', err.message);
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new OutboundError('not_found', `host ${url.hostname} was not found`);
  if (code === 'ECONNREFUSED') return new OutboundError('refused', `${url.host} refused the connection`);
  return new OutboundError('network', `${url.host}: ${code ?? 'the connection failed'}`);
}
