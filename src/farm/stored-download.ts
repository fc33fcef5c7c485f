import type { Response } from 'express';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { OutputStorage } from '../repositories/output-storage/port';

/** What frames and attachments are served as. */
export const FARM_CONTENT_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  exr: 'image/x-exr',
  tif: 'image/tiff',
  webp: 'image/webp',
  mp4: 'video/mp4',
  gif: 'image/gif',
};

/** How long the storage's own signed URL of a redirect works: it is followed at once. */
const REDIRECT_TTL_SEC = 300;

/** A stored frame or attachment: the storage's own presigned GET (S3) to redirect to, or its bytes through the API. */
export type StoredDownload = { redirect: string } | { stream: Readable; size: number; ext: string; name: string };

/**
 * One stored object for a client that showed a key or a signed URL: with S3, a presigned GET of
 * the bucket (the bytes never pass through the API); else read here.
 */
export async function storedDownload(storage: OutputStorage, key: string, ext: string, size: number, name: string): Promise<StoredDownload> {
  const contentType = FARM_CONTENT_TYPES[ext];
  const direct = await storage.presignDownload(key, ext, { expiresSec: REDIRECT_TTL_SEC, filename: name, ...(contentType ? { contentType } : {}) });
  if (direct) return { redirect: direct };
  return { stream: await storage.read(key, ext), size, ext, name };
}

/** Sends it: a 302 to the bucket, or the bytes with their type, length and file name. */
export async function sendStored(res: Response, found: StoredDownload): Promise<void> {
  if ('redirect' in found) {
    res.redirect(302, found.redirect);
    return;
  }
  res.status(200);
  res.setHeader('Content-Type', FARM_CONTENT_TYPES[found.ext] ?? 'application/octet-stream');
  res.setHeader('Content-Length', String(found.size));
  res.setHeader('Content-Disposition', `attachment; filename="${found.name.replace(/[^A-Za-z0-9._-]/g, '_')}"`);
  await pipeline(found.stream, res).catch(() => res.destroy());
}
