import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';

/** Stored form: `enc:v1:<key id>:<iv>:<tag>:<ciphertext>`, base64url parts. */
const PREFIX = 'enc:v1:';

/**
 * Credentials at rest: AES-256-GCM with the service's key (MONTAGE_SECRET_KEY, or the key
 * generated into the data dir on first start). The key id in each value says which key sealed
 * it, so a store read with the wrong key fails with a clear message instead of garbage.
 */
export class SecretBox {
  readonly keyId: string;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('the secret key must be 32 bytes');
    this.keyId = createHash('sha256').update(key).digest('base64url').slice(0, 8);
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `${PREFIX}${this.keyId}:${iv.toString('base64url')}:${cipher.getAuthTag().toString('base64url')}:${body.toString('base64url')}`;
  }

  open(sealed: string): string {
    if (!SecretBox.isSealed(sealed)) throw new Error('not a sealed value');
    const [keyId, iv, tag, body] = sealed.slice(PREFIX.length).split(':');
    if (keyId !== this.keyId) throw new Error(`this value was sealed with another secret key (${keyId}; this service has ${this.keyId}): set MONTAGE_SECRET_KEY to the key it was stored with`);
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
  }

  sealJson(value: unknown): string {
    return this.seal(JSON.stringify(value));
  }

  openJson<T>(sealed: string): T {
    return JSON.parse(this.open(sealed)) as T;
  }

  /**
   * HMAC-SHA256 (hex) of `data` with a key derived from the service's key for `purpose`: signed
   * URLs every process of the deployment can check, without exposing the sealing key itself.
   */
  mac(purpose: string, data: string): string {
    const key = createHmac('sha256', this.key).update(`montage-mac:${purpose}`).digest();
    return createHmac('sha256', key).update(data).digest('hex');
  }

  static isSealed(value: unknown): value is string {
    return typeof value === 'string' && value.startsWith(PREFIX);
  }
}

/** MONTAGE_SECRET_KEY: 32 bytes as 64 hex digits or base64 (either alphabet). */
export function parseSecretKey(raw: string): Buffer {
  const text = raw.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (key.length !== 32) throw new Error('MONTAGE_SECRET_KEY must be 32 bytes: 64 hex digits or 44 base64 characters (openssl rand -base64 32)');
  return key;
}
