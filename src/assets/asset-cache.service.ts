import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { unusableMedia } from '../common/errors';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { HttpFetchRepository } from '../repositories/http-fetch.repository';
import {
  ASSET_FILE_STORE,
  MEDIA_PROBE,
  type AssetFileStore,
  type CachedAsset,
  type MediaKind,
  type MediaProbe,
  type ProbeResult,
} from './asset-cache.types';
import { UsedMarker } from '../retention/used-marker';
import { displayUrl, parseMediaUrl } from './url-policy';

/** What an index file records for one URL; the file path is derived, so the data dir can move. */
interface IndexEntry {
  url: string;
  sha256: string;
  bytes: number;
  probe: ProbeResult;
}

const USABLE_AS: Record<MediaKind, (probe: ProbeResult) => boolean> = {
  image: (probe) => probe.isImage,
  video: (probe) => probe.hasVideo,
  audio: (probe) => probe.hasAudio,
};

/**
 * Downloads media params once and keeps them by content hash under `<dataDir>/cache/assets`:
 * `<sha256>` holds the bytes, `urls/<sha256(url)>.json` says which content a URL had and what
 * the probe found, so a repeated URL costs no network and no probe.
 */
@Injectable()
export class AssetCacheService {
  private readonly cacheDir: string;
  private readonly indexDir: string;
  /** Fetches under way, so concurrent requests for the same URL share one download. */
  private readonly inFlight = new Map<string, Promise<CachedAsset>>();

  constructor(
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
    private readonly fetcher: HttpFetchRepository,
    @Inject(ASSET_FILE_STORE) private readonly store: AssetFileStore,
    @Inject(MEDIA_PROBE) private readonly prober: MediaProbe,
  ) {
    this.cacheDir = path.join(config.dataDir, 'cache', 'assets');
    this.indexDir = path.join(this.cacheDir, 'urls');
  }

  async fetch(rawUrl: string, kind: MediaKind): Promise<CachedAsset> {
    const url = parseMediaUrl(rawUrl);
    // Keyed by kind too: a download that fails one kind's check must not fail another kind's caller.
    const key = `${kind} ${url.href}`;
    const existing = this.inFlight.get(key);
    if (existing) return existing;
    const pending = this.load(url, kind).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, pending);
    return pending;
  }

  private async load(url: URL, kind: MediaKind): Promise<CachedAsset> {
    const indexPath = path.join(this.indexDir, `${sha256Hex(url.href)}.json`);
    const cached = await this.readIndex(indexPath, url.href);
    if (cached) {
      // The content is fine for whoever cached it, so a kind mismatch here deletes nothing.
      requireKind(cached.url, cached.probe, kind);
      this.usage.used(cached.path);
      this.usage.used(indexPath); // both, or the index would go first and the URL be fetched again
      return cached;
    }

    await this.store.ensureDir(this.indexDir);
    // Downloaded into the cache dir itself so the final rename stays on one filesystem.
    const download = await this.fetcher.download(url, { destDir: this.cacheDir, ...this.config.media });
    const blobPath = this.blobPath(download.sha256);
    let probe: ProbeResult;
    try {
      probe = await this.prober.probe(download.tempPath);
      requireKind(url.href, probe, kind);
      // A readable header over damaged data would pass the probe and stall a render later.
      const problem = await this.prober.decodeProblem(download.tempPath, kind);
      if (problem) {
        throw unusableMedia(`Media URL ${displayUrl(url.href)} does not decode as ${kind === 'image' ? 'an' : 'a'} ${kind} (its data is damaged or unsupported)`, [], {
          internal: problem,
        });
      }
      // Only probed, usable content ever appears under its hash.
      await this.store.rename(download.tempPath, blobPath);
    } catch (error) {
      await this.store.remove(download.tempPath);
      throw error;
    }
    const entry: IndexEntry = { url: url.href, sha256: download.sha256, bytes: download.bytes, probe };
    await this.store.writeTextAtomic(indexPath, JSON.stringify(entry));
    return { ...entry, path: blobPath };
  }

  /** The cached asset for a URL, or undefined when the index is missing, unreadable or stale. */
  private async readIndex(indexPath: string, href: string): Promise<CachedAsset | undefined> {
    const text = await this.store.readText(indexPath);
    if (text === undefined) return undefined;
    let entry: unknown;
    try {
      entry = JSON.parse(text);
    } catch {
      return undefined;
    }
    if (!isIndexEntry(entry) || entry.url !== href) return undefined;
    const blobPath = this.blobPath(entry.sha256);
    // The content may have been evicted while its index entry survived; then it is fetched again.
    if (!(await this.store.exists(blobPath))) return undefined;
    return { ...entry, path: blobPath };
  }

  private blobPath(sha256: string): string {
    return path.join(this.cacheDir, sha256);
  }

  /** The sweeper evicts least recently used blobs first: a hit marks the blob used. */
  private readonly usage = new UsedMarker((file) => this.store.touch(file));
}

function requireKind(href: string, probe: ProbeResult, kind: MediaKind): void {
  if (!USABLE_AS[kind](probe)) {
    throw unusableMedia(`Media URL ${displayUrl(href)} is not a valid ${kind} (${describeProbe(probe)})`);
  }
}

function isIndexEntry(value: unknown): value is IndexEntry {
  const entry = value as Partial<IndexEntry> | null;
  return (
    typeof entry === 'object' &&
    entry !== null &&
    typeof entry.url === 'string' &&
    typeof entry.sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(entry.sha256) &&
    typeof entry.bytes === 'number' &&
    typeof entry.probe === 'object' &&
    entry.probe !== null
  );
}

function describeProbe(probe: ProbeResult): string {
  const found = [
    probe.isImage && 'an image',
    probe.hasVideo && 'a video stream',
    probe.hasAudio && 'an audio stream',
  ].filter((part): part is string => typeof part === 'string');
  return found.length > 0 ? `found ${found.join(', ')}` : 'no image, video or audio found';
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
