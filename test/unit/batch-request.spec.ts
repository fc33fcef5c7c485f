import { MontageError } from '../../src/common/errors';
import { parseBatchRequest } from '../../src/batches/batch-request';
import { outputOf } from '../../src/batches/batch.types';

function refusal(body: unknown, max = 100): MontageError {
  try {
    parseBatchRequest(body, max);
  } catch (err) {
    return err as MontageError;
  }
  throw new Error('expected a refusal');
}

describe('parseBatchRequest', () => {
  it("takes ImageFactory's flat items and {key, params} items, with defaults", () => {
    const parsed = parseBatchRequest({ movie: 'badge', requests: [{ key: 'a', title: 'A' }, { key: 'b', params: { title: 'B' } }], webhook_url: 'https://hooks.example.com/b' }, 100);
    expect(parsed).toEqual({
      movie: 'badge',
      items: [
        { key: 'a', params: { title: 'A' } },
        { key: 'b', params: { title: 'B' } },
      ],
      formats: ['mp4'],
      webhook_url: 'https://hooks.example.com/b',
      parallel: 1,
      routingkey: 'default',
    });
  });

  it('refuses the whole request only when it cannot start, naming the items', () => {
    expect(refusal({ movie: 'badge', requests: [{ key: 'a' }, { key: 'a' }, { title: 'no key' }, { key: 'c', params: {}, title: 'both' }] }).details).toEqual([
      { field: 'requests.1.key', message: expect.stringContaining('also the key of requests.0') },
      { field: 'requests.2.key', message: 'Required' },
      { field: 'requests.3', message: expect.stringContaining('not both') },
    ]);
    expect(refusal({ movie: 'badge', requests: [] }).details[0].field).toBe('requests');
    expect(refusal({ movie: 'badge', requests: [{ key: 'a' }, { key: 'b' }] }, 1).message).toMatch(/at most 1 requests/);
    expect(refusal({ movie: '../x', requests: [{ key: 'a' }], formats: ['exe'], webhook_url: 'http://u:p@x/' }).details.map((d) => d.field)).toEqual(['movie', 'formats.0', 'webhook_url']);
    expect(refusal({ movie: 'badge', requests: [{ key: 'a\u0000' }] }).details[0].field).toBe('requests.0.key');
    expect(refusal({ movie: 'badge', requests: [{ key: 'a' }], theme_id: 3 }).message).toMatch(/unknown field: theme_id/);
  });
});

describe('outputOf', () => {
  it("says public_url for a done item and error for a failed one, as ImageFactory's webhook does", () => {
    expect(outputOf({ _id: 'x.0', batch: 'x', index: 0, key: 'k', status: 'done', public_url: 'https://h/v2/get/T.mp4', urls: { mp4: 'https://h/v2/get/T.mp4' } })).toEqual({
      key: 'k',
      public_url: 'https://h/v2/get/T.mp4',
      urls: { mp4: 'https://h/v2/get/T.mp4' },
    });
    expect(outputOf({ _id: 'x.1', batch: 'x', index: 1, key: 'j', status: 'failed', error: 'title: too long' })).toEqual({ key: 'j', error: 'title: too long' });
  });
});
