import { randomBytes } from 'node:crypto';
import { MontageError } from '../../src/common/errors';
import { loadConfig } from '../../src/config/config';
import { farmKeyOf } from '../../src/farm/farm-auth';
import { FarmUrlsService } from '../../src/farm/farm-urls.service';
import { sign } from '../../src/projects/url-signing';
import { SecretBox } from '../../src/secrets/secret-box';

// The farm's one URL signer (the service's key, path + every parameter + expiry) and its one key reader.

const refusal = (f: () => unknown): MontageError => {
  try {
    f();
  } catch (err) {
    return err as MontageError;
  }
  throw new Error('accepted');
};

describe('FarmUrlsService', () => {
  const config = loadConfig({ FARM_URL_TTL_SEC: '600' });
  const urls = new FarmUrlsService(new SecretBox(randomBytes(32)), config);
  const query = (url: string) => Object.fromEntries(new URL(url).searchParams);

  it('signs the path, every parameter and the expiry; anything changed is 403', () => {
    const url = urls.signedApiUrl('http://api.test/', '/v1/farm/jobs/job_a/frames.zip', { d: 'dl_1' });
    expect(url).toMatch(/^http:\/\/api\.test\/v1\/farm\/jobs\/job_a\/frames\.zip\?d=dl_1&expires=\d+&sig=[0-9a-f]{64}$/);
    const q = query(url);
    expect(urls.verifySignedApiUrl('/v1/farm/jobs/job_a/frames.zip', q)).toEqual({ d: 'dl_1', expires: q.expires });
    for (const [path, changed] of [
      ['/v1/farm/jobs/job_b/frames.zip', q],
      ['/v1/farm/jobs/job_a/frames.zip', { ...q, d: 'dl_2' }],
      ['/v1/farm/jobs/job_a/frames.zip', { ...q, extra: '1' }],
      ['/v1/farm/jobs/job_a/frames.zip', { ...q, expires: String(Number(q.expires) + 1) }],
      ['/v1/farm/jobs/job_a/frames.zip', { d: 'dl_1', expires: q.expires }],
      ['/v1/farm/jobs/job_a/frames.zip', { ...q, d: ['dl_1', 'dl_1'] }],
    ] as const) {
      expect(refusal(() => urls.verifySignedApiUrl(path, changed as Record<string, unknown>, 'ask again'))).toMatchObject({ httpStatus: 403, message: expect.stringContaining('ask again') });
    }
  });

  it('never signs past FARM_URL_TTL_SEC, and refuses expired URLs', () => {
    const now = Math.floor(Date.now() / 1000);
    expect(urls.expiresAt()).toBeLessThanOrEqual(now + 601);
    expect(urls.expiresAt(10 * 24 * 3600)).toBeLessThanOrEqual(now + 601);
    const far = query(urls.signedApiUrl('http://api.test', '/x', {}, now + 10 * 24 * 3600));
    expect(Number(far.expires)).toBeLessThanOrEqual(now + 601);
    const expired = query(urls.signedApiUrl('http://api.test', '/x', {}, now - 5));
    expect(refusal(() => urls.verifySignedApiUrl('/x', expired)).message).toMatch(/expired/);
  });

  it("refuses a URL signed with a project's signing secret, or with another service's key", () => {
    const forever = { expires: '99999999999' };
    expect(refusal(() => urls.verifySignedApiUrl('/x', { ...forever, sig: sign('s'.repeat(64), '/x', forever) })).httpStatus).toBe(403);
    const other = new FarmUrlsService(new SecretBox(randomBytes(32)), config);
    expect(refusal(() => urls.verifySignedApiUrl('/x', query(other.signedApiUrl('http://a', '/x')))).httpStatus).toBe(403);
  });

  it('signs the local upload form the same way', () => {
    const form = urls.uploadTarget('http://api.test', 'stage1');
    expect(form.url).toBe('http://api.test/v1/farm/upload-target');
    expect(urls.verifyUploadTarget(form.fields)).toBe('stage1');
    expect(refusal(() => urls.verifyUploadTarget({ ...form.fields, key: 'stage2' })).httpStatus).toBe(403);
  });
});

describe('farmKeyOf', () => {
  const req = (headers: Record<string, string>) => ({ headers });
  it("reads Rentaflop's body key, Montage's headers and VNTANA's X-AUTH-TOKEN", () => {
    expect(farmKeyOf(req({ authorization: 'Bearer h1' }), { api_key: 'b1' })).toBe('b1');
    expect(farmKeyOf(req({ authorization: 'Bearer h1' }), { api_key: '' })).toBe('h1');
    expect(farmKeyOf(req({ 'x-api-key': 'h2' }))).toBe('h2');
    expect(farmKeyOf(req({ 'x-auth-token': 'Bearer v1' }))).toBe('v1');
    expect(farmKeyOf(req({ 'x-auth-token': 'v2' }))).toBe('v2');
    expect(farmKeyOf(req({ 'x-auth-token': 'Bearer ' }))).toBeUndefined();
    expect(farmKeyOf(req({}), [{ api_key: 'x' }])).toBeUndefined();
  });

  it('refuses an api_key that is not a string (400 naming it)', () => {
    expect(refusal(() => farmKeyOf(req({}), { api_key: 42 }))).toMatchObject({ httpStatus: 400, details: [{ field: 'api_key', message: 'not a string' }] });
  });
});
