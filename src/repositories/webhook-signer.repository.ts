import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/** The Standard Webhooks headers of one attempt. */
export interface SignedHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * Standard Webhooks signatures through the `standardwebhooks` package (the only place that
 * imports it): `v1,<base64 HMAC-SHA256 of id.timestamp.body>` with a `whsec_<base64>` secret.
 */
@Injectable()
export class WebhookSignerRepository {
  /** A new signing secret: `whsec_` and 24 random bytes in base64 (the spec allows 24 to 64). */
  newSecret(): string {
    return `whsec_${randomBytes(24).toString('base64')}`;
  }

  /** Whether `secret` is one the package can sign with. */
  isUsableSecret(secret: string): boolean {
    if (!/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(secret)) return false;
    const bytes = Buffer.from(secret.slice('whsec_'.length), 'base64').length;
    return bytes >= 24 && bytes <= 64;
  }

  /**
   * The headers for sending `body` as message `id` at `at` (this attempt's time). With several
   * secrets (a rotation under way) the signature header lists one signature per secret,
   * space-separated, as the spec says; a receiver with either secret verifies it.
   */
  sign(id: string, at: Date, body: string, secrets: readonly string[]): SignedHeaders {
    if (secrets.length === 0) throw new Error('no secret to sign with');
    return {
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
      'webhook-signature': secrets.map((s) => new Webhook(s).sign(id, at, body)).join(' '),
    };
  }

  /** Throws when the headers do not carry a valid, recent signature of `body` by `secret`. */
  verify(secret: string, body: string, headers: Record<string, string>): void {
    new Webhook(secret).verify(body, headers, { jsonParse: false });
  }
}
