import { Injectable } from '@nestjs/common';
import { createReadStream } from 'node:fs';
import { type Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import * as yauzl from 'yauzl';
import * as yazl from 'yazl';

/** One entry of an uploaded archive, as its headers say (names undecoded by policy: the caller checks them). */
export interface ArchiveEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'link' | 'device' | 'other';
  /** What the header claims (only a hint: bytes are counted while reading). */
  size: number;
}

export interface ZipSource {
  name: string;
  size: number;
  mtime?: Date;
  open: () => Promise<Readable>;
}

/** The total of an archive's bytes went past its cap while inflating. */
export class ArchiveTooLarge extends Error {
  constructor(readonly maxBytes: number) {
    super(`the archive unpacks to more than ${maxBytes} bytes`);
  }
}

/** Archives the farm reads (uploads: zip and tar) and writes (downloads of frames: zip, streamed). */
@Injectable()
export class ArchiveRepository {
  /**
   * Every entry's header, without reading any body (zip: the central directory), stopping after
   * `maxEntries + 1` (the caller refuses that many).
   */
  async listEntries(file: string, format: 'zip' | 'tar', maxEntries: number): Promise<ArchiveEntry[]> {
    const entries: ArchiveEntry[] = [];
    if (format === 'zip') {
      const zip = await openZip(file);
      try {
        await new Promise<void>((resolve, reject) => {
          zip.on('entry', (entry: yauzl.Entry) => {
            entries.push(zipEntry(entry));
            if (entries.length > maxEntries) return resolve();
            zip.readEntry();
          });
          zip.on('end', () => resolve());
          zip.on('error', reject);
          zip.readEntry();
        });
      } finally {
        zip.close();
      }
      return entries;
    }
    await this.walkTar(file, async (header, body) => {
      entries.push(tarEntry(header));
      body.resume();
      return entries.length <= maxEntries;
    });
    return entries;
  }

  /**
   * Each regular file's bytes, one entry at a time, in archive order. Bytes are counted as they
   * are inflated: past `maxTotalBytes` in all, it rejects with ArchiveTooLarge (headers are not trusted).
   */
  async eachFile(file: string, format: 'zip' | 'tar', maxTotalBytes: number, onFile: (name: string, body: Readable) => Promise<void>): Promise<void> {
    let total = 0;
    const counted = () =>
      new Transform({
        transform(chunk: Buffer, _enc, done) {
          total += chunk.length;
          if (total > maxTotalBytes) return done(new ArchiveTooLarge(maxTotalBytes));
          done(null, chunk);
        },
      });
    if (format === 'zip') {
      const zip = await openZip(file);
      try {
        await new Promise<void>((resolve, reject) => {
          zip.on('entry', (entry: yauzl.Entry) => {
            if (zipEntry(entry).type !== 'file') return zip.readEntry();
            zip.openReadStream(entry, (err, stream) => {
              if (err) return reject(err);
              const body = stream.pipe(counted());
              stream.on('error', (e) => body.destroy(e));
              onFile(zipEntry(entry).name, body).then(() => zip.readEntry(), reject);
            });
          });
          zip.on('end', () => resolve());
          zip.on('error', reject);
          zip.readEntry();
        });
      } finally {
        zip.close();
      }
      return;
    }
    await this.walkTar(file, async (header, body) => {
      if (tarEntry(header).type !== 'file') {
        body.resume();
        return true;
      }
      const out = body.pipe(counted());
      body.on('error', (e: Error) => out.destroy(e));
      await onFile(header.name, out);
      return true;
    });
  }

  /** Each header of a tar with its body; `visit` drains or reads the body, false stops early. */
  private async walkTar(file: string, visit: (header: tar.Header, body: Readable) => Promise<boolean>): Promise<void> {
    const extract = tar.extract();
    const source = createReadStream(file);
    const done = pipeline(source, extract as unknown as Writable).catch((err: Error) => {
      if (!stopped) throw err;
    });
    let stopped = false;
    try {
      for await (const entry of extract) {
        if (!(await visit(entry.header, entry as unknown as Readable))) {
          stopped = true;
          break;
        }
      }
    } catch (err) {
      stopped = true;
      throw err;
    } finally {
      if (stopped) source.destroy();
    }
    await done;
  }

  /**
   * A zip of `entries` written to `out` as it is made: STORE (frames are compressed already),
   * each entry opened only when the zip reaches it, so one entry's stream is open at a time and
   * nothing is held whole. A failing entry, or `signal`, ends `out` with the error.
   */
  async writeZip(entries: ZipSource[], out: Writable, signal?: AbortSignal): Promise<void> {
    const zip = new yazl.ZipFile();
    const written = pipeline(zip.outputStream, out, signal ? { signal } : {});
    let failed: Error | undefined;
    const fail = (err: Error) => {
      failed ??= err;
      (zip.outputStream as Readable).destroy(err);
    };
    signal?.addEventListener('abort', () => fail(new Error('the download was stopped')), { once: true });
    for (const entry of entries) {
      if (failed) break;
      // yazl reads an added stream only when the zip gets to it: open the next one once this one has ended.
      const body = await entry.open().catch((err: Error) => {
        fail(err);
        return undefined;
      });
      if (!body) break;
      const ended = new Promise<void>((resolve) => {
        body.once('end', resolve);
        body.once('close', resolve);
        body.once('error', (err) => {
          fail(err);
          resolve();
        });
      });
      zip.addReadStream(body, entry.name, { compress: false, size: entry.size, mtime: entry.mtime ?? new Date() });
      await ended;
    }
    if (!failed) zip.end();
    await written;
    if (failed) throw failed;
  }
}

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true, autoClose: false }, (err, zip) => (err ? reject(err) : resolve(zip))),
  );
}

function zipEntry(entry: yauzl.Entry): ArchiveEntry {
  const raw = entry.fileName as unknown as Buffer;
  // General purpose bit 11: the name is UTF-8; otherwise IBM 437, read as Latin-1 (its ASCII part agrees).
  const name = (entry.generalPurposeBitFlag & 0x800 ? raw.toString('utf8') : raw.toString('latin1'));
  const madeByUnix = entry.versionMadeBy >> 8 === 3;
  const mode = madeByUnix ? (entry.externalFileAttributes >>> 16) & 0o170000 : 0;
  let type: ArchiveEntry['type'] = name.endsWith('/') ? 'directory' : 'file';
  if (mode === 0o120000) type = 'symlink';
  else if (mode === 0o040000) type = 'directory';
  else if (mode !== 0 && mode !== 0o100000) type = 'device';
  return { name, type, size: entry.uncompressedSize };
}

function tarEntry(header: tar.Header): ArchiveEntry {
  const type: ArchiveEntry['type'] =
    header.type === 'file' || header.type === 'contiguous-file'
      ? 'file'
      : header.type === 'directory'
        ? 'directory'
        : header.type === 'symlink'
          ? 'symlink'
          : header.type === 'link'
            ? 'link'
            : header.type === 'block-device' || header.type === 'character-device' || header.type === 'fifo'
              ? 'device'
              : 'other';
  return { name: header.name, type, size: header.size };
}
