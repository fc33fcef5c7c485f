import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { AssetCacheService } from '../../src/assets/asset-cache.service';
import type { AssetFileStore, MediaProbe, ProbeResult } from '../../src/assets/asset-cache.types';
import { MontageError } from '../../src/common/errors';
import { loadConfig } from '../../src/config/config';
import type {
  DownloadOptions,
  DownloadResult,
  HttpFetchRepository,
} from '../../src/repositories/http-fetch.repository';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const config = loadConfig({ MONTAGE_DATA_DIR: '/data' }, '/');
const cacheDir = '/data/cache/assets';
const IMAGE: ProbeResult = { isImage: true, hasVideo: false, hasAudio: false, width: 4, height: 4 };
const AUDIO: ProbeResult = { isImage: false, hasVideo: false, hasAudio: true, durationSec: 2 };
const NOTHING: ProbeResult = { isImage: false, hasVideo: false, hasAudio: false };

/** An in-memory filesystem: path → file contents. */
class MemoryStore implements AssetFileStore {
  readonly files = new Map<string, string>();
  async ensureDir(): Promise<void> {}
  async exists(file: string): Promise<boolean> {
    return this.files.has(file);
  }
  async readText(file: string): Promise<string | undefined> {
    return this.files.get(file);
  }
  async writeTextAtomic(file: string, text: string): Promise<void> {
    this.files.set(file, text);
  }
  async rename(from: string, to: string): Promise<void> {
    const content = this.files.get(from);
    if (content === undefined) throw new Error(`ENOENT ${from}`);
    this.files.delete(from);
    this.files.set(to, content);
  }
  async remove(file: string): Promise<void> {
    this.files.delete(file);
  }
  readonly touched: string[] = [];
  async touch(file: string): Promise<void> {
    this.touched.push(file);
  }
  partFiles(): string[] {
    return [...this.files.keys()].filter((file) => file.endsWith('.part'));
  }
}

/** Serves every URL with a body of `content:<url>`, written as a .part file into the store. */
class FakeFetcher {
  private count = 0;
  /** Lets a test hold downloads open to overlap concurrent fetches. */
  gate: Promise<void> = Promise.resolve();
  failWith: Error | undefined;
  readonly download = jest.fn(async (url: URL, opts: DownloadOptions): Promise<DownloadResult> => {
    await this.gate;
    if (this.failWith) throw this.failWith;
    const body = `content:${url.href}`;
    const tempPath = path.join(opts.destDir, `download-${++this.count}.part`);
    this.store.files.set(tempPath, body);
    return { tempPath, sha256: sha256(body), bytes: body.length, contentType: 'image/png', finalUrl: url.href };
  });
  constructor(private readonly store: MemoryStore) {}
}

function setup(probeResult: ProbeResult = IMAGE, store = new MemoryStore()) {
  const fetcher = new FakeFetcher(store);
  const probe = {
    probe: jest.fn<Promise<ProbeResult>, [string]>(async () => probeResult),
    decodeProblem: jest.fn<Promise<string | undefined>, [string, string]>(async () => undefined),
  } satisfies MediaProbe;
  const service = new AssetCacheService(config, fetcher as unknown as HttpFetchRepository, store, probe);
  return { service, store, fetcher, probe };
}

async function expectMontageError(promise: Promise<unknown>, kind: string, message: RegExp): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MontageError);
  expect((error as MontageError).kind).toBe(kind);
  expect((error as MontageError).message).toMatch(message);
}

describe('AssetCacheService', () => {
  const url = 'https://cdn.example.com/logo.png';
  const contentHash = sha256(`content:${url}`);
  const blobPath = path.join(cacheDir, contentHash);
  const indexPath = path.join(cacheDir, 'urls', `${sha256(url)}.json`);

  it('downloads into the cache dir, probes, and stores the file under its content hash', async () => {
    const { service, store, fetcher, probe } = setup();

    const asset = await service.fetch(url, 'image');

    expect(asset).toEqual({ url, sha256: contentHash, path: blobPath, bytes: `content:${url}`.length, probe: IMAGE });
    expect(fetcher.download).toHaveBeenCalledWith(new URL(url), { destDir: cacheDir, ...config.media });
    expect(probe.probe).toHaveBeenCalledWith(path.join(cacheDir, 'download-1.part'));
    expect(store.files.get(blobPath)).toBe(`content:${url}`);
    const entry: unknown = JSON.parse(store.files.get(indexPath)!);
    expect(entry).toEqual({ url, sha256: contentHash, bytes: asset.bytes, probe: IMAGE });
    expect(store.partFiles()).toEqual([]);
  });

  it('serves a repeated URL from the index without downloading or probing, across service instances', async () => {
    const first = setup();
    const asset = await first.service.fetch(url, 'image');
    await first.service.fetch(url, 'image');
    expect(first.fetcher.download).toHaveBeenCalledTimes(1);
    expect(first.probe.probe).toHaveBeenCalledTimes(1);

    const restarted = setup(IMAGE, first.store);
    await expect(restarted.service.fetch(url, 'image')).resolves.toEqual(asset);
    expect(restarted.fetcher.download).not.toHaveBeenCalled();
    expect(restarted.probe.probe).not.toHaveBeenCalled();
  });

  it('treats URLs that normalize to the same href as one entry', async () => {
    const { service, fetcher } = setup();
    await service.fetch('HTTPS://CDN.example.com/logo.png', 'image');
    await service.fetch(url, 'image');
    expect(fetcher.download).toHaveBeenCalledTimes(1);
  });

  it('shares one download between concurrent fetches of the same URL', async () => {
    const { service, fetcher, probe } = setup();
    let release!: () => void;
    fetcher.gate = new Promise((resolve) => (release = resolve));

    const fetches = [service.fetch(url, 'image'), service.fetch(url, 'image'), service.fetch(url, 'image')];
    release();
    const assets = await Promise.all(fetches);

    expect(fetcher.download).toHaveBeenCalledTimes(1);
    expect(probe.probe).toHaveBeenCalledTimes(1);
    expect(assets[1]).toEqual(assets[0]);
    expect(assets[2]).toEqual(assets[0]);
  });

  it('shares a failure between concurrent fetches, then lets a later fetch try again', async () => {
    const { service, fetcher } = setup();
    let release!: () => void;
    fetcher.gate = new Promise((resolve) => (release = resolve));
    fetcher.failWith = new MontageError('unusable_media', 'Media URL x returned HTTP 503');

    const fetches = [service.fetch(url, 'image'), service.fetch(url, 'image')];
    release();
    for (const attempt of fetches) await expectMontageError(attempt, 'unusable_media', /HTTP 503/);
    expect(fetcher.download).toHaveBeenCalledTimes(1);

    fetcher.failWith = undefined;
    await expect(service.fetch(url, 'image')).resolves.toMatchObject({ sha256: contentHash });
    expect(fetcher.download).toHaveBeenCalledTimes(2);
  });

  it.each([
    ['image', AUDIO, /is not a valid image \(found an audio stream\)/],
    ['video', IMAGE, /is not a valid video \(found an image\)/],
    ['audio', NOTHING, /is not a valid audio \(no image, video or audio found\)/],
  ] as const)('refuses a download that is not a valid %s and deletes it', async (kind, probeResult, message) => {
    const { service, store } = setup(probeResult);

    await expectMontageError(service.fetch(url, kind), 'unusable_media', message);

    expect(store.files.size).toBe(0); // no temp file, no blob, no index entry
  });

  it('names the URL when refusing the wrong kind', async () => {
    const { service } = setup(AUDIO);
    await expectMontageError(service.fetch(url, 'image'), 'unusable_media', /cdn\.example\.com\/logo\.png/);
  });

  it('deletes the download when the probe itself fails', async () => {
    const { service, store, probe } = setup();
    probe.probe.mockRejectedValueOnce(new MontageError('unusable_media', 'ffprobe could not read the file'));

    await expectMontageError(service.fetch(url, 'image'), 'unusable_media', /ffprobe could not read/);
    expect(store.files.size).toBe(0);
  });

  it('refuses a download whose header probes fine but whose data does not decode, keeping the tool output out of the message', async () => {
    const { service, store, probe } = setup();
    probe.decodeProblem.mockResolvedValueOnce('[png @ 0x55d8a662d980] inflate returned error -3');

    const error = (await service.fetch(url, 'image').catch((e: unknown) => e)) as MontageError;
    expect(error).toBeInstanceOf(MontageError);
    expect(error.kind).toBe('unusable_media');
    expect(error.message).toMatch(/cdn\.example\.com\/logo\.png does not decode as an image/);
    expect(error.message).not.toMatch(/0x55d8|inflate/);
    expect(error.internal).toMatch(/inflate returned error/);
    expect(probe.decodeProblem).toHaveBeenCalledWith(path.join(cacheDir, 'download-1.part'), 'image');
    expect(store.files.size).toBe(0); // nothing cached
  });

  it('marks a cached blob and its index entry as used on a hit (for least-recently-used eviction), at most once a minute', async () => {
    const { service, store } = setup();
    await service.fetch(url, 'image');
    expect(store.touched).toEqual([]);
    await service.fetch(url, 'image');
    await service.fetch(url, 'image');
    expect(store.touched).toEqual([blobPath, indexPath]);
  });

  it('refuses a cached asset of another kind without deleting it', async () => {
    const { service, store, fetcher } = setup(IMAGE);
    await service.fetch(url, 'image');

    await expectMontageError(service.fetch(url, 'audio'), 'unusable_media', /is not a valid audio/);
    expect(fetcher.download).toHaveBeenCalledTimes(1);
    expect(store.files.has(blobPath)).toBe(true);
  });

  it('downloads again when the indexed file has been evicted', async () => {
    const { service, store, fetcher } = setup();
    await service.fetch(url, 'image');
    store.files.delete(blobPath);

    await service.fetch(url, 'image');
    expect(fetcher.download).toHaveBeenCalledTimes(2);
    expect(store.files.has(blobPath)).toBe(true);
  });

  it.each([
    ['not JSON', '{oops'],
    [
      'the wrong URL',
      JSON.stringify({ url: 'https://other.example/', sha256: 'a'.repeat(64), bytes: 1, probe: IMAGE }),
    ],
    ['a hash that is not hex', JSON.stringify({ url, sha256: '../../etc/passwd', bytes: 1, probe: IMAGE })],
  ])('ignores an index entry holding %s', async (_what, text) => {
    const { service, store, fetcher } = setup();
    store.files.set(indexPath, text);
    store.files.set(path.join(cacheDir, 'a'.repeat(64)), 'stale');

    await expect(service.fetch(url, 'image')).resolves.toMatchObject({ sha256: contentHash });
    expect(fetcher.download).toHaveBeenCalledTimes(1);
  });

  it('refuses a non-http URL before any download', async () => {
    const { service, fetcher } = setup();
    await expectMontageError(service.fetch('file:///etc/passwd', 'image'), 'bad_input', /only http and https/);
    expect(fetcher.download).not.toHaveBeenCalled();
  });
});
