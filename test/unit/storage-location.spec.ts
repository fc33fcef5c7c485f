import { MontageError } from '../../src/common/errors';
import { describeStorage, parseStorageUrl } from '../../src/repositories/output-storage/location';

const parse = (raw: string | undefined, env: NodeJS.ProcessEnv = {}) => parseStorageUrl(raw, '/var/montage', env);

function errorOf(raw: string): MontageError {
  try {
    parse(raw);
  } catch (err) {
    return err as MontageError;
  }
  throw new Error(`${raw} was accepted`);
}

describe('STORAGE_URL', () => {
  it('defaults to the data dir, and takes local directories as paths or file URLs', () => {
    expect(parse(undefined)).toEqual({ kind: 'local', dir: '/var/montage' });
    expect(parse('  ')).toEqual({ kind: 'local', dir: '/var/montage' });
    expect(parse('/mnt/shared/montage/')).toEqual({ kind: 'local', dir: '/mnt/shared/montage/' });
    expect(parse('file:///mnt/shared%20disk/montage')).toEqual({ kind: 'local', dir: '/mnt/shared disk/montage' });
  });

  it('reads an S3-compatible server, bucket, prefix and credentials', () => {
    expect(parse('s3://AK:s%2Fe%40cret@videos/prod/montage?endpoint=http%3A%2F%2F127.0.0.1%3A7480')).toEqual({
      kind: 's3',
      bucket: 'videos',
      prefix: 'prod/montage/',
      endpoint: 'http://127.0.0.1:7480',
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'AK', secretAccessKey: 's/e@cret' },
    });
  });

  it('on AWS: no endpoint, host-style buckets, the region and credentials of the environment', () => {
    expect(parse('s3://videos', { AWS_REGION: 'eu-west-1' })).toEqual({
      kind: 's3',
      bucket: 'videos',
      prefix: '',
      endpoint: undefined,
      region: 'eu-west-1',
      forcePathStyle: false,
      credentials: undefined,
    });
    expect(parse('s3://videos/?region=ap-south-1&path_style=1')).toMatchObject({ prefix: '', region: 'ap-south-1', forcePathStyle: true });
  });

  it.each([
    ['ftp://host/dir', /unsupported scheme "ftp"/],
    ['relative/dir', /not a URL/],
    ['s3://Bad_Bucket', /"bad_bucket" is not a bucket name|"Bad_Bucket" is not a bucket name/],
    ['s3://videos:9000/x', /endpoint=/],
    ['s3://videos?endpont=http://x', /unknown option "endpont"/],
    ['s3://videos?endpoint=ftp://x', /endpoint "ftp:\/\/x" is not an http\(s\) URL/],
    ['s3://videos?path_style=maybe', /path_style must be 1 or 0/],
    ['s3://AK@videos', /both an access key and a secret/],
    ['file://host/dir', /without a host/],
  ])('refuses %s, naming what is wrong', (raw, message) => {
    const err = errorOf(raw);
    expect(err).toBeInstanceOf(MontageError);
    expect(err.kind).toBe('bad_input');
    expect(err.message).toMatch(/^STORAGE_URL: /);
    expect(err.message).toMatch(message);
  });

  it('never repeats a secret in an error or a description', () => {
    expect(errorOf('s3://AK:SECRET@videos?bogus=1').message).not.toContain('SECRET');
    expect(errorOf('s3://AK:SECRET@x').message).not.toContain('SECRET');
    // a secret with an unencoded `/` or `@` makes the URL unparseable: still never echoed
    expect(errorOf('s3://AK:se/CRET@videos').message).not.toContain('CRET');
    expect(errorOf('s3://AK:a@b:CRET/x@videos').message).not.toContain('CRET');
    expect(describeStorage(parse('s3://AK:SECRET@videos/p?endpoint=http://h:1'))).toBe('s3://videos/p/ at http://h:1');
  });
});
