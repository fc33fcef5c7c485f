import { Inject, Injectable } from '@nestjs/common';
import { timingSafeEqual } from 'node:crypto';
import { forbidden } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { OUTPUT_STORAGE, type OutputStorage, type PresignedUpload } from '../repositories/output-storage/port';
import { canonicalRequest } from '../projects/url-signing';
import { SecretBox } from '../secrets/secret-box';

const MAC_PURPOSE = 'farm-url';

/**
 * URLs of the farm that work without an API key for a while: signed with the service's
 * secret key (every API process checks them), or presigned by the storage itself (S3).
 */
@Injectable()
export class FarmUrlsService {
  constructor(
    private readonly secrets: SecretBox,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
  ) {}

  /** `<base><path>?<params>&expires=<unix s>&sig=<hmac>`: good for `ttlSec` (FARM_URL_TTL_SEC by default). */
  signedApiUrl(base: string, path: string, params: Record<string, string> = {}, ttlSec = this.config.farm.urlTtlSec): string {
    const query = { ...params, expires: String(Math.floor(Date.now() / 1000) + ttlSec) };
    const search = new URLSearchParams({ ...query, sig: this.sign(path, query) });
    return `${base.replace(/\/+$/, '')}${path}?${search.toString()}`;
  }

  /** 403 JSON unless `query` carries a signature of `path` and its parameters that has not expired. */
  verifySignedApiUrl(path: string, query: Record<string, unknown>): Record<string, string> {
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(query)) {
      if (typeof v !== 'string') throw forbidden('invalid URL signature');
      params[k] = v;
    }
    const { sig, ...signed } = params;
    if (!sig || !/^[0-9a-f]{64}$/.test(sig) || !timingSafeEqual(Buffer.from(sig, 'hex'), Buffer.from(this.sign(path, signed), 'hex'))) {
      throw forbidden('missing or invalid URL signature (sig): ask the API for a new URL');
    }
    if (!/^\d{1,12}$/.test(signed.expires ?? '') || Number(signed.expires) * 1000 < Date.now()) throw forbidden('this URL has expired: ask the API for a new one');
    return signed;
  }

  /** Where a client posts a staged upload when the storage takes none itself: the API, with a signed form. */
  uploadTarget(base: string, stageId: string, ttlSec = this.config.farm.urlTtlSec): PresignedUpload {
    const expires = String(Math.floor(Date.now() / 1000) + ttlSec);
    return {
      url: `${base.replace(/\/+$/, '')}/v1/farm/upload-target`,
      fields: { key: stageId, expires, signature: this.sign(UPLOAD_TARGET_PATH, { key: stageId, expires }) },
      method: 'POST',
    };
  }

  /** The stage id of a signed upload form (its `key`), or 403. */
  verifyUploadTarget(fields: Record<string, string>): string {
    const { key, expires, signature } = fields;
    if (!key || !expires || !signature) throw forbidden('the upload form needs its fields key, expires and signature, sent before the file');
    this.verifySignedApiUrl(UPLOAD_TARGET_PATH, { key, expires, sig: signature });
    return key;
  }

  /** A download of a stored object: presigned by the storage when it can, else a signed API URL. */
  async objectUrl(base: string, storageKey: string, ext: string, options: { filename: string; contentType?: string; ttlSec?: number }): Promise<string> {
    const ttlSec = options.ttlSec ?? this.config.farm.urlTtlSec;
    const presigned = await this.storage.presignDownload(storageKey, ext, { expiresSec: ttlSec, filename: options.filename, contentType: options.contentType });
    if (presigned) return presigned;
    return this.signedApiUrl(base, `/v1/farm/objects/${storageKey}.${ext}`, { filename: options.filename, ...(options.contentType ? { type: options.contentType } : {}) }, ttlSec);
  }

  private sign(path: string, query: Record<string, string>): string {
    return this.secrets.mac(MAC_PURPOSE, canonicalRequest(path, query));
  }
}

const UPLOAD_TARGET_PATH = '/v1/farm/upload-target';
