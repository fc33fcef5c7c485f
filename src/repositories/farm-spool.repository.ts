import { Inject, Injectable } from '@nestjs/common';
import busboy from 'busboy';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import * as path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { signalable } from './processes.repository';

/** A file copied to this machine while hashed: what confirm checks before anything is kept. */
export interface SpooledFile {
  file: string;
  sha256: string;
  size: number;
  /** Its first bytes (up to 512: a tar header's magic is at 257). */
  head: Buffer;
}

/** A stream went past its cap while being copied; nothing of it was kept. */
export class SpoolTooLarge extends Error {
  constructor(readonly maxBytes: number) {
    super(`more than ${maxBytes} bytes`);
  }
}

/** The multipart form was cut off, malformed, or carried no file. */
export class MultipartProblem extends Error {}

const HEAD_BYTES = 512;
/** A scratch file this old whose writer is gone is an orphan. */
const ORPHAN_AGE_MS = 24 * 3600_000;

/** An HTTP request as the form parser reads it. */
export type FormRequest = Readable & { headers: IncomingHttpHeaders };

/**
 * Local scratch files of farm uploads (`<dataDir>/farm-spool`, named `<pid>-<random>`), and the
 * multipart parser of uploads the API receives itself (local storage).
 */
@Injectable()
export class FarmSpoolRepository {
  private readonly dir: string;

  constructor(@Inject(MONTAGE_CONFIG) config: MontageConfig) {
    this.dir = path.join(config.dataDir, 'farm-spool');
  }

  /**
   * Scratch files of processes that are gone (an API killed in the middle of a confirm), left
   * a day at least: another host sharing the data dir may reuse a pid, so age decides as well.
   */
  async removeOrphans(now = Date.now()): Promise<number> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    let removed = 0;
    for (const name of names) {
      const m = /^(\d+)-[0-9a-f]+$/.exec(name);
      // This process's, or a live one's (its writer may still be at work): kept.
      if (!m || Number(m[1]) === process.pid || signalable(Number(m[1]))) continue;
      const file = path.join(this.dir, name);
      const stat = await fs.stat(file).catch(() => undefined);
      if (!stat || now - stat.mtimeMs < ORPHAN_AGE_MS) continue;
      await fs.rm(file, { recursive: true, force: true }).catch(() => undefined);
      removed++;
    }
    return removed;
  }

  /** `source` copied to a scratch file, hashed and counted as it goes; over `maxBytes`: SpoolTooLarge, nothing left. */
  async spool(source: Readable, maxBytes: number): Promise<SpooledFile> {
    await fs.mkdir(this.dir, { recursive: true });
    const file = path.join(this.dir, `${process.pid}-${randomBytes(8).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    const heads: Buffer[] = [];
    let headBytes = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, done) {
        size += chunk.length;
        if (size > maxBytes) return done(new SpoolTooLarge(maxBytes));
        if (headBytes < HEAD_BYTES) {
          heads.push(chunk.subarray(0, HEAD_BYTES - headBytes));
          headBytes += Math.min(chunk.length, HEAD_BYTES - headBytes);
        }
        hash.update(chunk);
        done(null, chunk);
      },
    });
    try {
      await pipeline(source, meter, createWriteStream(file, { flags: 'wx' }));
    } catch (err) {
      await fs.rm(file, { force: true });
      throw err;
    }
    return { file, sha256: hash.digest('hex'), size, head: Buffer.concat(heads) };
  }

  /** A stream written whole into `file` (a storage's staging file). */
  async writeTo(body: Readable, file: string): Promise<void> {
    await pipeline(body, createWriteStream(file));
  }

  async readRange(file: string, start: number, length: number): Promise<Buffer> {
    const handle = await fs.open(file, 'r');
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buf, 0, length, start);
      return buf.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  /** Into a storage's staging file (`storage.storeOutput`'s write). */
  async copyTo(file: string, target: string): Promise<void> {
    await fs.copyFile(file, target);
  }

  async remove(file: string): Promise<void> {
    await fs.rm(file, { force: true });
  }

  /**
   * A browser-style POST form: fields first, then one `file` part. `onFile` gets the fields
   * sent before the file and the file's bytes (cut at `maxFileBytes + 1`: SpoolTooLarge);
   * its result counts only once the whole form has arrived (a cut connection rejects).
   */
  async receiveForm<T>(req: FormRequest, maxFileBytes: number, onFile: (fields: Record<string, string>, body: Readable) => Promise<T>): Promise<T> {
    const form = (() => {
      try {
        return busboy({ headers: req.headers, limits: { fields: 32, fieldSize: 8192, files: 1, fileSize: maxFileBytes, parts: 40 } });
      } catch (err) {
        throw new MultipartProblem((err as Error).message); // not multipart/form-data, no boundary
      }
    })();
    const fields: Record<string, string> = {};
    return new Promise<T>((resolve, reject) => {
      let result: Promise<T> | undefined;
      let closed = false;
      let overLimit = false;
      const fail = (err: Error) => {
        req.unpipe(form);
        req.resume(); // the rest of the body is read and dropped, so the answer can be sent
        reject(err);
      };
      form.on('field', (name, value) => {
        if (!/^[\x21-\x7e]{1,64}$/.test(name)) return;
        fields[name] = value;
      });
      form.on('file', (name, stream) => {
        if (name !== 'file' || result) {
          stream.resume();
          return;
        }
        const capped = new Transform({
          transform(chunk: Buffer, _enc, done) {
            done(null, chunk);
          },
          flush(done) {
            done(stream.truncated ? new SpoolTooLarge(maxFileBytes) : null);
          },
        });
        capped.on('error', () => undefined); // the writer sees it (it may attach after an await)
        stream.on('limit', () => {
          overLimit = true;
          capped.destroy(new SpoolTooLarge(maxFileBytes));
        });
        stream.on('error', (err: Error) => capped.destroy(err));
        stream.pipe(capped);
        result = onFile({ ...fields }, capped);
        result.catch((err: Error) => fail(err));
      });
      form.on('error', (err) => fail(new MultipartProblem(err.message)));
      form.on('close', () => {
        closed = true;
        if (!result) return fail(new MultipartProblem('the form has no "file" part'));
        result.then((value) => (overLimit ? fail(new SpoolTooLarge(maxFileBytes)) : resolve(value)), () => undefined);
      });
      req.on('aborted', () => !closed && fail(new MultipartProblem('the upload was cut off')));
      req.pipe(form);
    });
  }
}
