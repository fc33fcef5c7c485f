import type { OutputFormat } from '../formats/output-formats';
import type { UploadResult } from '../repositories/upload-target/port';

export type UploadStatus = 'pending' | 'queued' | 'uploading' | 'retrying' | 'done' | 'failed';

/** One upload task of a token. Everything that could carry a credential is sealed. */
export interface UploadDoc {
  _id: string;
  token: string;
  project: string;
  /** Its place in the request's `upload` list. */
  index: number;
  extension: OutputFormat;
  async: boolean;
  type: string;
  /** Where it goes, without credentials or query strings: what progress shows. */
  summary: string;
  /** SecretBox-sealed JSON: `{ destination }` (whole, names rendered) or `{ connection, overrides }`; and the callbacks (a URL can hold a token). */
  sealed: string;
  status: UploadStatus;
  bytesSent: number;
  size?: number;
  result?: UploadResult;
  error?: string;
  /** Attempts started (a retry, a restart after a crash). */
  attempts: number;
  /** Sealed resume state of a resumable destination (a YouTube session URL is a credential). */
  resume?: string;
  createdAt: string;
  updatedAt: string;
  startedAt?: string;
  finishedAt?: string;
}

/** What the sealed field holds. */
export interface SealedTask {
  destination?: Record<string, unknown>;
  connection?: string;
  overrides?: Record<string, unknown>;
  onsuccess?: string;
  onerror?: string;
}

/** An upload as answers show it: never a credential. */
export interface UploadView {
  id: string;
  type: string;
  extension: OutputFormat;
  async: boolean;
  destination: string;
  status: UploadStatus;
  bytesSent: number;
  size?: number;
  result?: UploadResult;
  error?: string;
  attempts: number;
}

export function uploadView(doc: UploadDoc): UploadView {
  return {
    id: doc._id,
    type: doc.type,
    extension: doc.extension,
    async: doc.async,
    destination: doc.summary,
    status: doc.status,
    bytesSent: doc.bytesSent,
    ...(doc.size !== undefined ? { size: doc.size } : {}),
    ...(doc.result ? { result: doc.result } : {}),
    ...(doc.error ? { error: doc.error } : {}),
    attempts: doc.attempts,
  };
}
