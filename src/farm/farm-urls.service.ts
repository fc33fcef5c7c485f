import { Inject, Injectable } from '@nestjs/common';
import { timingSafeEqual } from 'node:crypto';
import { forbidden } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import type { PresignedUpload } from '../repositories/output-storage/port';
import { canonicalRequest } from '../projects/url-signing';
import { SecretBox } from '../secrets/secret-box';

const MAC_PURPOSE = 'farm-url';

/**
 * The one signer of the farm's and the products' URLs that work without an API key for a
 * while (job zips, manifests, single frames, product attachments, the local upload form): an
 * HMAC of the path, every parameter and the expiry, keyed with the service's secret key
 * (SecretBox.mac), so every API process checks them and no project secret (which `sign-url`
 * hands out) can mint one. Expiry is never later than FARM_URL_TTL_SEC from now.
 */
@Injectable()
export class FarmUrlsService {
  constructor(
    private readonly secrets: SecretBox,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  /** When a URL made now expires (unix seconds): `ttlSec` from now, capped by FARM_URL_TTL_SEC. */
  expiresAt(ttlSec = this.config.farm.urlTtlSec): number {
    return Math.floor(Date.now() / 1000) + Math.min(ttlSec, this.config.farm.urlTtlSec);
  }

  /** `<base><path>?<params>&expires=<unix s>&sig=<hmac>`, expiring at `expires` (see expiresAt; later is capped). */
  signedApiUrl(base: string, path: string, params: Record<string, string> = {}, expires = this.expiresAt()): string {
    const query = { ...params, expires: String(Math.min(expires, this.expiresAt())) };
    const search = new URLSearchParams({ ...query, sig: this.sign(path, query) });
    return `${base.replace(/\/+$/, '')}${path}?${search.toString()}`;
  }

  /**
   * 403 JSON unless `query` carries a signature of `path` and all its parameters that has not
   * expired; `renew` says where a new URL comes from. Returns the signed parameters.
   */
  verifySignedApiUrl(path: string, query: Record<string, unknown>, renew = 'ask the API for a new URL'): Record<string, string> {
    const params: Record<string, string> = {};
    for (const [k, v] of Object.entries(query)) {
      if (typeof v !== 'string') throw forbidden(`this URL is not signed, or its signature does not match: ${renew}`);
      params[k] = v;
    }
    const { sig, ...signed } = params;
    if (!sig || !/^[0-9a-f]{64}$/.test(sig) || !timingSafeEqual(Buffer.from(sig, 'hex'), Buffer.from(this.sign(path, signed), 'hex'))) {
      throw forbidden(`this URL is not signed, or its signature does not match: ${renew}`);
    }
    if (!/^\d{1,12}$/.test(signed.expires ?? '') || Number(signed.expires) * 1000 < Date.now()) throw forbidden(`this URL has expired: ${renew}`);
    return signed;
  }

  /** Where a client posts a staged upload when the storage takes none itself: the API, with a signed form. */
  uploadTarget(base: string, stageId: string, ttlSec = this.config.farm.urlTtlSec): PresignedUpload {
    const expires = String(this.expiresAt(ttlSec));
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

  private sign(path: string, query: Record<string, string>): string {
    return this.secrets.mac(MAC_PURPOSE, canonicalRequest(path, query));
  }
}

const UPLOAD_TARGET_PATH = '/v1/farm/upload-target';
