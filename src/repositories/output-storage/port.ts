import type { Readable } from 'node:stream';
import type { Leftover } from '../../retention/retention-plan';

/**
 * The storage port: finished outputs and the segments of distributed renders. One adapter
 * per backend (a local directory, an S3-compatible store), chosen by STORAGE_URL. Both the
 * API and render nodes use it; render nodes only for segments.
 *
 * Everything is written through `store*`: the caller writes a local staging file, and only
 * when that resolves does the object appear. A failed or interrupted write stores nothing.
 */
export interface OutputStorage {
  readonly kind: 'local' | 's3';
  /** Where, for logs and /health (no secrets). */
  readonly description: string;

  /** API start-up: prepares the store and removes what an interrupted run left behind. */
  init(): Promise<void>;
  /** Throws when the storage cannot be written. */
  ping(): Promise<void>;
  /**
   * The storage's identity: a random id kept in the storage itself (created by the API's
   * init). Two processes see the same storage exactly when they read the same id, whatever
   * endpoint or mount path each one uses.
   */
  identity(): Promise<string | undefined>;

  /** Size and modification time of a finished output, or undefined. */
  stat(key: string, ext: string): Promise<{ size: number; mtime: Date } | undefined>;
  /** A finished output's bytes, or an inclusive byte range of them. */
  read(key: string, ext: string, range?: { start: number; end: number }): Promise<Readable>;
  /** `write` produces the file at the path it is given; it becomes the output once it resolves. */
  storeOutput<T>(key: string, ext: string, write: (file: string) => Promise<T>): Promise<T>;
  remove(key: string, ext: string): Promise<void>;

  /**
   * Stored pieces that renders share by content (reusable segments `sg…`, sound tracks `sd…`, init segments `in…`),
   * with their size and when they were stored: what the sweeper expires.
   */
  listReusable(): Promise<ReusablePiece[]>;

  /** As storeOutput, for one segment of a distributed render (`name` is unique per render attempt). */
  storeSegment<T>(name: string, write: (file: string) => Promise<T>): Promise<T>;
  readSegment(name: string): Promise<Buffer>;
  removeSegment(name: string): Promise<void>;

  /**
   * What the sweeper looks at: segments, and staging files of segments and outputs kept in
   * the storage itself (a local directory; S3 stages on the writer's disk instead).
   */
  listLeftovers(): Promise<Leftover[]>;
  removeLeftover(leftover: Leftover): Promise<void>;

  /**
   * Where a client uploads an output itself (a browser-style POST: `fields` first, then the
   * `file` part), limited to `maxBytes` by the store; undefined when the storage cannot take
   * uploads directly (local: the API receives them).
   */
  presignUpload(key: string, ext: string, options: { maxBytes: number; expiresSec: number; contentType?: string }): Promise<PresignedUpload | undefined>;
  /** A URL that reads an output for `expiresSec`, saved as `filename`; undefined when the storage has none (local: the API serves it). */
  presignDownload(key: string, ext: string, options: { expiresSec: number; filename: string; contentType?: string }): Promise<string | undefined>;
}

export interface PresignedUpload {
  url: string;
  fields: Record<string, string>;
  method: 'POST';
}

export const OUTPUT_STORAGE = Symbol('OUTPUT_STORAGE');

/** A stored object's whole bytes (a segment, an init, a sound track: small, read at once). */
export async function readWhole(storage: OutputStorage, key: string, ext: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of await storage.read(key, ext)) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

export interface ReusablePiece {
  key: string;
  ext: string;
  bytes: number;
  storedMs: number;
}

/** The names of reusable pieces among the outputs: `sg` (a segment), `sd` (a sound track) or `in` (a play init segment), a 40-hex address, an extension. */
export const REUSABLE_NAME = /^((?:sg|sd|in)[0-9a-f]{40})\.([a-z0-9]+)$/;


/** Keys and names are made by Montage (hashes, ids); anything else is a bug, not a path or key to write. */
export function storageName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw new Error(`not a storage name: ${JSON.stringify(name)}`);
  return name;
}

/** `attachment; filename="…"` with an ASCII fallback and the UTF-8 name (RFC 6266); quotes, controls and slashes never pass. */
export function attachmentDisposition(filename: string): string {
  // eslint-disable-next-line no-control-regex -- replacing them is the point
  const clean = filename.replace(/[\u0000-\u001f\u007f"\\/]/g, '_').slice(0, 255) || 'download';
  const ascii = clean.replace(/[^\x20-\x7e]/g, '_');
  const encoded = encodeURIComponent(clean).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
