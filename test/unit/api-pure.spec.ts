import { parseRange } from '../../src/delivery/byte-range';
import { apiKeyOf, splitFile } from '../../src/delivery/http-delivery';
import { canonicalRequest, sign, signedUrl, verify } from '../../src/projects/url-signing';
import { canonicalJson } from '../../src/common/canonical-json';
import { renderKey } from '../../src/renders/render-key';
import { coveredExtensions, movieFor, parseRenderRequest } from '../../src/tokens/render-request';
import { MontageError } from '../../src/common/errors';
import type { Request } from 'express';

describe('parseRange', () => {
  it.each([
    [undefined, 1000, undefined],
    ['bytes=0-99', 1000, { start: 0, end: 99 }],
    ['bytes=900-', 1000, { start: 900, end: 999 }],
    ['bytes=-100', 1000, { start: 900, end: 999 }],
    ['bytes=-5000', 1000, { start: 0, end: 999 }],
    ['bytes=0-5000', 1000, { start: 0, end: 999 }],
    ['bytes=1000-', 1000, 'unsatisfiable'],
    ['bytes=500-100', 1000, undefined], // invalid: ignored, the whole file
    ['bytes=-0', 1000, 'unsatisfiable'],
    ['bytes=0-1,5-9', 1000, undefined], // several ranges: the whole file
    ['items=0-1', 1000, undefined],
    ['bytes=-', 1000, undefined],
  ])('%s of %d bytes → %j', (header, size, expected) => expect(parseRange(header, size)).toEqual(expected));
});

describe('url signing', () => {
  const secret = 'a'.repeat(64);
  it('canonicalises by sorting names and leaving sig out', () => {
    expect(canonicalRequest('/v1/render/p/m.mp4', { sig: 'x', name: 'Zoë & co', a: '1' })).toBe('/v1/render/p/m.mp4?a=1&name=Zo%C3%AB%20%26%20co');
  });
  it('verifies its own signatures and nothing else', () => {
    const sig = sign(secret, '/v1/render/p/m.mp4', { name: 'A' });
    expect(verify(secret, '/v1/render/p/m.mp4', { name: 'A' }, sig)).toBe(true);
    expect(verify(secret, '/v1/render/p/m.mp4', { name: 'B' }, sig)).toBe(false);
    expect(verify(secret, '/v1/render/p/other.mp4', { name: 'A' }, sig)).toBe(false);
    expect(verify('b'.repeat(64), '/v1/render/p/m.mp4', { name: 'A' }, sig)).toBe(false);
    expect(verify(secret, '/v1/render/p/m.mp4', { name: 'A' }, undefined)).toBe(false);
    expect(verify(secret, '/v1/render/p/m.mp4', { name: 'A' }, 'zz')).toBe(false);
  });
  it('signedUrl puts the signature in the query of a URL whose own query verifies', () => {
    const url = new URL(signedUrl('http://h:8080/', 'demo', 'welcome', 'mp4', { name: 'Alex' }, secret));
    expect(url.pathname).toBe('/v1/render/demo/welcome.mp4');
    const query = Object.fromEntries(url.searchParams);
    expect(verify(secret, url.pathname, query, query.sig)).toBe(true);
  });
});

describe('render keys', () => {
  const id = { project: 'p', movie: 'm', templateVersion: 'v1', params: { b: 1, a: [1, { y: 2, x: 1 }] }, profile: { format: 'mp4' } };
  it('canonical JSON ignores key order and undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: undefined, c: 2 } })).toBe('{"a":{"c":2},"b":1}');
  });
  it('equal content gives the same key; any difference gives another', () => {
    expect(renderKey(id)).toBe(renderKey({ ...id, params: { a: [1, { x: 1, y: 2 }], b: 1 } }));
    expect(renderKey(id)).not.toBe(renderKey({ ...id, templateVersion: 'v2' }));
    expect(renderKey(id)).not.toBe(renderKey({ ...id, profile: { format: 'webm' } }));
    expect(renderKey(id)).not.toBe(renderKey({ ...id, params: { b: 2, a: [1, { x: 1, y: 2 }] } }));
    expect(renderKey(id)).toMatch(/^[0-9a-f]{40}$/);
  });
});

describe('render requests', () => {
  it('fills defaults', () => {
    expect(parseRenderRequest({ movie: 'a' })).toEqual({ movie: 'a', params: {}, parallel: 1, routingkey: 'default', upload: [], async: false, pin: false });
    expect(parseRenderRequest({ movie: 'a', ttl: 3600, pin: true })).toMatchObject({ ttl: 3600, pin: true });
    expect(() => parseRenderRequest({ movie: 'a', ttl: 5 })).toThrow(/ttl/);
  });
  it('names every problem, unknown fields included', () => {
    try {
      parseRenderRequest({ movie: { avi: 'x' }, parallel: 99, speed: 1 });
      throw new Error('expected a failure');
    } catch (err) {
      expect(err).toBeInstanceOf(MontageError);
      const fields = (err as MontageError).details.map((d) => d.field);
      expect(fields).toEqual(expect.arrayContaining(['movie', 'parallel', 'speed']));
    }
  });
  it('movie maps resolve per extension with "*" as the fallback', () => {
    const spec = { mp4: 'a', webm: 'b', '*': 'c' };
    expect([movieFor(spec, 'mp4'), movieFor(spec, 'webm'), movieFor(spec, 'gif')]).toEqual(['a', 'b', 'c']);
    expect(movieFor({ mp4: 'a' }, 'gif')).toBeUndefined();
    expect(coveredExtensions({ mp4: 'a', jpg: 'b' })).toEqual(['mp4', 'jpg']);
    expect(coveredExtensions('a')).toHaveLength(6);
  });
});

describe('request helpers', () => {
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as Request;
  it('reads the API key from Authorization: Bearer or X-Api-Key', () => {
    expect(apiKeyOf(req({ authorization: 'Bearer mk_1' }))).toBe('mk_1');
    expect(apiKeyOf(req({ 'x-api-key': ' mk_2 ' }))).toBe('mk_2');
    expect(apiKeyOf(req({ authorization: 'Basic abc' }))).toBeUndefined();
    expect(apiKeyOf(req({}))).toBeUndefined();
  });
  it('splits token.ext and refuses anything else', () => {
    expect(splitFile('abcDEF_-1.MP4')).toEqual({ token: 'abcDEF_-1', ext: 'mp4' });
    for (const bad of ['noext', '../x.mp4', 'a.b.mp4', 'a.', '.mp4']) expect(splitFile(bad)).toBeUndefined();
  });
});
