import { Injectable } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rm } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import * as path from 'node:path';
import { MontageError, tooLarge, unusableMedia } from '../common/errors';
import { displayUrl, isPublicAddress, mediaUrlProblem } from '../assets/url-policy';
import { checkedLookup } from './outbound-http/guarded-network';

export interface DownloadOptions {
  /** Directory the temporary file is written to; put it on the same filesystem as its final place. */
  destDir: string;
  maxBytes: number;
  /** Limit for the whole download: every redirect hop and the body together. */
  timeoutMs: number;
  maxRedirects: number;
  allowPrivateAddresses: boolean;
}

export interface DownloadResult {
  /** A `.part` file in destDir that the caller now owns (moves or deletes). */
  tempPath: string;
  sha256: string;
  bytes: number;
  contentType: string | undefined;
  /** The URL after redirects. */
  finalUrl: string;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Downloads hostile, user-supplied URLs to disk without letting them reach private networks. */
@Injectable()
export class HttpFetchRepository {
  async download(url: URL, opts: DownloadOptions): Promise<DownloadResult> {
    const described = `Media URL ${displayUrl(url)}`;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), opts.timeoutMs);
    let tempPath: string | undefined;
    let current = url;
    try {
      for (let redirects = 0; ; redirects++) {
        // Names the hop so a user can see which redirect target was at fault.
        const subject = current === url ? described : `${described} (redirected to ${displayUrl(current)})`;
        const response = await this.request(current, subject, opts.allowPrivateAddresses, timeout.signal);
        const status = response.statusCode ?? 0;
        const location = response.headers.location;

        if (REDIRECT_STATUSES.has(status) && location) {
          response.destroy();
          if (redirects >= opts.maxRedirects) {
            throw unusableMedia(`${described} redirected too many times (limit ${opts.maxRedirects})`);
          }
          current = redirectTarget(current, location, subject);
          continue;
        }
        if (status < 200 || status > 299) {
          response.destroy();
          throw unusableMedia(`${subject} returned HTTP ${status}`);
        }

        const declared = Number(response.headers['content-length']);
        if (Number.isFinite(declared) && declared > opts.maxBytes) {
          response.destroy();
          throw tooLarge(`${described} is ${declared} bytes, over the limit of ${opts.maxBytes} bytes`);
        }

        await mkdir(opts.destDir, { recursive: true });
        tempPath = path.join(opts.destDir, `download-${randomBytes(8).toString('hex')}.part`);
        const { sha256, bytes } = await saveBody(response, tempPath, opts.maxBytes, described);
        return { tempPath, sha256, bytes, contentType: response.headers['content-type'], finalUrl: current.href };
      }
    } catch (error) {
      if (tempPath) await rm(tempPath, { force: true });
      throw describeFailure(error, timeout.signal.aborted, described, current, opts.timeoutMs);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends one GET and resolves with the response head; the body is left unread. */
  private request(
    url: URL,
    subject: string,
    allowPrivateAddresses: boolean,
    signal: AbortSignal,
  ): Promise<http.IncomingMessage> {
    const problem = mediaUrlProblem(url);
    if (problem) return Promise.reject(unusableMedia(`${subject} is not allowed: ${problem}`));

    // Node connects to IP literals without calling `lookup`, so they are checked here instead.
    const literal = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(literal) && !allowPrivateAddresses && !isPublicAddress(literal)) {
      return Promise.reject(privateAddress(subject, literal));
    }

    const send = url.protocol === 'https:' ? https.request : http.request;
    return new Promise((resolve, reject) => {
      const req = send(
        url,
        {
          method: 'GET',
          headers: { accept: '*/*', 'user-agent': 'Montage' },
          lookup: mediaLookup(subject, allowPrivateAddresses),
          // A pooled socket would skip `lookup`, and could have been opened under a laxer policy.
          agent: false,
          signal,
        },
        resolve,
      );
      req.on('error', reject);
      req.end();
    });
  }
}

/** The shared checked lookup, refusing with a media error that names the URL. */
function mediaLookup(subject: string, allowPrivateAddresses: boolean): LookupFunction {
  return checkedLookup(allowPrivateAddresses, (_host, address) => privateAddress(subject, address));
}

/** Streams a response body to a new file, hashing and counting as it goes. */
async function saveBody(
  response: http.IncomingMessage,
  tempPath: string,
  maxBytes: number,
  described: string,
): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  // Opened before any write so the file exists (and is cleaned up) only once we own its handle.
  const file = await open(tempPath, 'wx');
  try {
    for await (const chunk of response as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        response.destroy();
        throw tooLarge(`${described} is over the limit of ${maxBytes} bytes`);
      }
      hash.update(chunk);
      await file.write(chunk);
    }
  } finally {
    await file.close();
  }
  return { sha256: hash.digest('hex'), bytes };
}

function redirectTarget(current: URL, location: string, subject: string): URL {
  try {
    return new URL(location, current);
  } catch {
    throw unusableMedia(`${subject} redirected to an invalid URL`);
  }
}

function privateAddress(subject: string, address: string): MontageError {
  return unusableMedia(
    `${subject} resolves to a private/loopback address (${address}); set MEDIA_ALLOW_PRIVATE=1 to allow`,
  );
}

/** Turns whatever went wrong into a MontageError that names the URL; node's own messages stay out. */
function describeFailure(
  error: unknown,
  timedOut: boolean,
  described: string,
  current: URL,
  timeoutMs: number,
): MontageError {
  if (error instanceof MontageError) return error;
  if (timedOut) return unusableMedia(`${described} timed out after ${timeoutMs} ms`);
  const code = (error as NodeJS.ErrnoException).code;
  const host = current.hostname;
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return unusableMedia(`${described} could not be downloaded: host ${host} was not found`);
    case 'ECONNREFUSED':
      return unusableMedia(`${described} could not be downloaded: ${host} refused the connection`);
    default:
      return unusableMedia(`${described} could not be downloaded from ${host} (${code ?? 'connection failed'})`);
  }
}
