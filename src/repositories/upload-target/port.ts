import type { Readable } from 'node:stream';

/** Where an upload task sends an output (Impossible's destination types, and Azure, FTP, SFTP). */
export enum DestinationType {
  S3 = 's3',
  Http = 'http',
  Azure = 'azure',
  Ftp = 'ftp',
  Sftp = 'sftp',
  YouTube = 'youtube',
  Facebook = 'facebook',
}

/**
 * Destinations as drivers receive them: validated, Handlebars already applied to names,
 * credentials already opened (they are sealed everywhere else). Field names follow
 * Impossible's upload task definition where it has one.
 */
export interface S3Destination {
  type: DestinationType.S3;
  bucket: string;
  /** The object key. */
  filename: string;
  aws_access_key_id: string;
  aws_secret_access_key: string;
  /** Host (and port) of an S3-compatible service; default AWS (`s3.<region>.amazonaws.com`). */
  s3host?: string;
  /** https (default) or http to s3host. */
  secure?: boolean;
  region?: string;
  /** Path-style addressing (`host/bucket/key`): the default with s3host. */
  path_style?: boolean;
  contenttype?: string;
  contentdisposition?: string;
  /** Canned ACL; default `public-read` as Impossible's. */
  acl?: string;
  reduced_redundancy?: boolean;
  cachecontrol?: string;
  metadata?: Record<string, string>;
}

export interface HttpDestination {
  type: DestinationType.Http;
  url: string;
  /** PUT sends the bytes as the body; POST sends multipart/form-data with the file in `field`. */
  method: 'PUT' | 'POST';
  headers?: Record<string, string>;
  /** POST: the form field of the file (default `file`) and the file name sent with it. */
  field?: string;
  filename?: string;
  /** POST: other form fields. */
  fields?: Record<string, string>;
}

export interface AzureDestination {
  type: DestinationType.Azure;
  /** A container SAS URL (`https://acct.blob.core.windows.net/container?sv=…&sig=…`): needs create and write. */
  sas_url: string;
  /** The blob name inside the container. */
  filename: string;
  contenttype?: string;
  cachecontrol?: string;
  metadata?: Record<string, string>;
}

export interface FtpDestination {
  type: DestinationType.Ftp;
  host: string;
  port?: number;
  user: string;
  password: string;
  /** Explicit FTPS (AUTH TLS). */
  secure?: boolean;
  /** The remote path, directories made as needed. */
  filename: string;
}

export interface SftpDestination {
  type: DestinationType.Sftp;
  host: string;
  port?: number;
  username: string;
  password?: string;
  private_key?: string;
  passphrase?: string;
  /** SHA-256 of the server's host key (base64, as `ssh-keygen -l` prints after `SHA256:`): checked when given. */
  host_fingerprint?: string;
  filename: string;
}

export interface YouTubeDestination {
  type: DestinationType.YouTube;
  client_id: string;
  client_secret: string;
  refresh_token: string;
  /** videos.insert's snippet and status (title, description, tags, categoryId; privacyStatus…). */
  snippet: { title: string; description?: string; tags?: string[]; categoryId?: string };
  status?: { privacyStatus?: 'public' | 'unlisted' | 'private'; madeForKids?: boolean; publishAt?: string };
}

export interface FacebookDestination {
  type: DestinationType.Facebook;
  page_id: string;
  page_token: string;
  title?: string;
  description?: string;
}

export type Destination = S3Destination | HttpDestination | AzureDestination | FtpDestination | SftpDestination | YouTubeDestination | FacebookDestination;
export type DestinationOf<T extends DestinationType> = Extract<Destination, { type: T }>;

/** The output to send: read from storage as a stream, never whole in memory. */
export interface UploadSource {
  size: number;
  contentType: string;
  /** A name for it where the destination wants one (`<token>.mp4`). */
  name: string;
  /** A fresh stream of bytes [start, size): every attempt (and a resumed one) opens its own. */
  open(start?: number): Promise<Readable>;
}

export interface UploadContext {
  /** Aborts when the process shuts down (the job goes back to the queue): stop, clean up, throw. */
  signal: AbortSignal;
  /** Bytes the destination has accepted so far (called often; the caller throttles). */
  onProgress(bytesSent: number): void;
  /** Private, loopback and link-local destination hosts are allowed (tests, intranets). */
  allowPrivateAddresses: boolean;
  /**
   * What an earlier attempt of this task saved (a resumable session's URL, an upload id), so a
   * retry after a crash resumes or finds the finished upload instead of making a duplicate.
   */
  resume?: Record<string, unknown>;
  /** Saves resume state for the next attempt (sealed at rest: a session URL is a credential). */
  saveResume(state: Record<string, unknown>): Promise<void>;
}

/** What the destination made: Impossible's upload responses (S3/HTTP URL, YouTube video id, Facebook object id). */
export interface UploadResult {
  url?: string;
  /** YouTube video id; Facebook video object id. */
  id?: string;
  /** S3 ETag, Azure ETag… */
  etag?: string;
}

/**
 * A destination driver. `upload` throws `UploadRefused` (nothing to gain from retrying: a 4xx,
 * bad credentials, a forbidden host) or any other error (retried with backoff). A failed
 * attempt leaves nothing half-written under the final name: S3 multipart uploads are aborted,
 * Azure blocks stay uncommitted, FTP/SFTP write a temporary name and rename it.
 */
export interface UploadTarget<T extends DestinationType = DestinationType> {
  readonly type: T;
  upload(destination: DestinationOf<T>, source: UploadSource, ctx: UploadContext): Promise<UploadResult>;
}

/** A failure that another attempt would repeat (credentials, permissions, a refused host): the task fails now. */
export class UploadRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UploadRefused';
  }
}

export const UPLOAD_TARGETS = Symbol('UPLOAD_TARGETS');
/** Every driver by type: the registry the upload service uses. */
export type UploadTargets = { [T in DestinationType]: UploadTarget<T> };
