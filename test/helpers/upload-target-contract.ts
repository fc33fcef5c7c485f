import { execFile } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { PrivateAddressError } from '../../src/repositories/outbound-http/guarded-network';
import {
  type DestinationOf,
  type DestinationType,
  type UploadContext,
  type UploadSource,
  type UploadTarget,
  UploadRefused,
} from '../../src/repositories/upload-target/port';
import { probe } from './media';

const run = promisify(execFile);

export interface ContractSubject<T extends DestinationType> {
  target: () => UploadTarget<T>;
  /** A destination that stores under `name` (a fresh name per test). */
  destination: (name: string) => DestinationOf<T>;
  /** The bytes stored under `name`, or undefined when nothing is there (nothing half-written either). */
  readBack: (name: string) => Promise<Buffer | undefined>;
  /** A destination whose credentials are wrong: upload throws UploadRefused. */
  badCredentials?: (name: string) => DestinationOf<T>;
  /** The destination's host given as 127.0.0.1/localhost: refused (UploadRefused or PrivateAddressError) when allowPrivateAddresses is false. */
  privateHost?: (name: string) => DestinationOf<T>;
  /** Whether readBack can see a partial object; when true the "failed stream leaves nothing" case is asserted. */
  atomic?: boolean;
}

/** An UploadSource that also counts how often it was opened, and from where. */
export interface CountedSource extends UploadSource {
  /** The `start` of every `open` so far. */
  readonly opens: number[];
}

/** The output file as storage would hand it over: a fresh read stream per `open(start)`. */
export function fileSource(file: string, contentType = 'video/mp4', name = path.basename(file)): CountedSource {
  const opens: number[] = [];
  return {
    size: fs.statSync(file).size,
    contentType,
    name,
    opens,
    open: async (start = 0) => {
      opens.push(start);
      return fs.createReadStream(file, { start });
    },
  };
}

export interface GeneratedSource extends CountedSource {
  /** sha256 (hex) of all `size` bytes. */
  readonly sha256: string;
}

const CHUNK = 64 * 1024;

/**
 * `size` pseudo-random bytes (AES-CTR over zeros: incompressible, the same for the same seed)
 * made on the fly, 64 KiB at a time as the reader asks, so nothing whole sits in memory.
 * With `failAfter`, every stream errors once it has given about that many bytes, as a storage
 * read that breaks mid-way.
 */
export function generatedSource(size: number, options: { seed?: string; failAfter?: number; name?: string; contentType?: string } = {}): GeneratedSource {
  const seed = createHash('sha256').update(options.seed ?? randomBytes(8).toString('hex')).digest();
  const bytes = (): Generator<Buffer> => generate(seed, size);
  const whole = createHash('sha256');
  for (const chunk of bytes()) whole.update(chunk);
  const opens: number[] = [];
  return {
    size,
    contentType: options.contentType ?? 'application/octet-stream',
    name: options.name ?? `generated-${size}.bin`,
    opens,
    sha256: whole.digest('hex'),
    open: async (start = 0) => {
      opens.push(start);
      const chunks = bytes();
      let offset = 0;
      return new Readable({
        highWaterMark: CHUNK,
        read() {
          for (;;) {
            if (options.failAfter !== undefined && offset >= options.failAfter) {
              this.destroy(new Error('the stored output could not be read (disk error)'));
              return;
            }
            const next = chunks.next();
            if (next.done) {
              this.push(null);
              return;
            }
            const chunk = next.value;
            const from = Math.max(0, start - offset);
            offset += chunk.length;
            if (from >= chunk.length) continue; // before `start`
            if (!this.push(from ? chunk.subarray(from) : chunk)) return;
          }
        },
      });
    },
  };
}

function* generate(seed: Buffer, size: number): Generator<Buffer> {
  const cipher = createCipheriv('aes-128-ctr', seed.subarray(0, 16), seed.subarray(16, 32));
  const zeros = Buffer.alloc(CHUNK);
  for (let left = size; left > 0; left -= CHUNK) yield cipher.update(left >= CHUNK ? zeros : zeros.subarray(0, left));
}

/** An UploadContext as the upload worker makes one, with what the driver reported kept for checks. */
export interface TestContext extends UploadContext {
  readonly controller: AbortController;
  /** Every onProgress value, in order. */
  readonly progress: number[];
  /** What saveResume was last given (also put in `resume`, as the next attempt would see it). */
  saved?: Record<string, unknown>;
}

export function testContext(overrides: Partial<Pick<UploadContext, 'allowPrivateAddresses' | 'resume'>> & { controller?: AbortController } = {}): TestContext {
  const controller = overrides.controller ?? new AbortController();
  const ctx: TestContext = {
    controller,
    signal: controller.signal,
    progress: [],
    allowPrivateAddresses: overrides.allowPrivateAddresses ?? true,
    resume: overrides.resume,
    onProgress: (bytes) => ctx.progress.push(bytes),
    saveResume: async (state) => {
      ctx.saved = state;
      ctx.resume = state;
    },
  };
  return ctx;
}

/** A 1 s, 10 fps, 160×90 H.264 MP4 (10 frames), made once per test file. */
let sampleMp4: Promise<string> | undefined;
export function sampleVideo(): Promise<string> {
  sampleMp4 ??= (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-upload-contract-'));
    const file = path.join(dir, 'sample.mp4');
    await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=160x90:rate=10', '-t', '1', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-movflags', '+faststart', file]);
    return file;
  })();
  return sampleMp4;
}

export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

let counter = 0;
/** A fresh name per test: letters, digits, dashes and one extension, which every destination takes. */
export function freshName(ext = 'mp4'): string {
  return `contract-${Date.now().toString(36)}-${(counter++).toString(36)}-${randomBytes(3).toString('hex')}.${ext}`;
}

/** How an upload failed: the error, so a test can look at its type and message. */
async function failure(upload: Promise<unknown>): Promise<Error> {
  try {
    await upload;
  } catch (err) {
    return err as Error;
  }
  throw new Error('the upload succeeded where it should have failed');
}

/**
 * The behaviour every upload driver has, against a real server of its kind: what is stored is
 * what was sent (bytes, and a playable video), progress is told, a big output is streamed, a
 * failed attempt leaves nothing half-written, wrong credentials and forbidden hosts are refused
 * for good (before the output is even opened), and an aborted attempt stores nothing.
 */
export function uploadTargetContract<T extends DestinationType>(label: string, subject: () => ContractSubject<T>): void {
  describe(label, () => {
    let s: ContractSubject<T>;
    beforeAll(() => {
      s = subject();
    });

    it('uploads a real MP4 that reads back byte-identical and plays as 10 frames of H.264', async () => {
      const file = await sampleVideo();
      const source = fileSource(file);
      const name = freshName();
      const result = await s.target().upload(s.destination(name), source, testContext());
      expect(result.url ?? result.id).toBeTruthy();

      const stored = await s.readBack(name);
      expect(stored).toBeDefined();
      expect(sha256(stored!)).toBe(sha256(fs.readFileSync(file)));
      const copy = path.join(path.dirname(file), `back-${name}`);
      fs.writeFileSync(copy, stored!);
      const probed = await probe(copy);
      expect(probed.video?.codec_name).toBe('h264');
      expect(Number(probed.video?.nb_read_frames)).toBe(10);
    });

    it('tells progress that only grows and ends at the size of the source', async () => {
      const source = generatedSource(7 * 1024 * 1024 + 123);
      const ctx = testContext();
      const name = freshName('bin');
      await s.target().upload(s.destination(name), source, ctx);
      expect(ctx.progress.length).toBeGreaterThan(0);
      for (let i = 1; i < ctx.progress.length; i++) expect(ctx.progress[i]).toBeGreaterThanOrEqual(ctx.progress[i - 1]);
      expect(ctx.progress[ctx.progress.length - 1]).toBe(source.size);
      expect(Math.max(...ctx.progress)).toBe(source.size);
    });

    it('streams a 20 MB output made on the fly, opened once, and it arrives intact', async () => {
      const source = generatedSource(20 * 1024 * 1024 + 5);
      const name = freshName('bin');
      await s.target().upload(s.destination(name), source, testContext());
      expect(source.opens).toEqual([0]);
      const stored = await s.readBack(name);
      expect(stored?.length).toBe(source.size);
      expect(sha256(stored!)).toBe(source.sha256);
    });

    it('fails, to be tried again, when the output cannot be read mid-way; nothing is left under the name', async () => {
      const source = generatedSource(3 * 1024 * 1024, { failAfter: 1024 * 1024 });
      const name = freshName('bin');
      const err = await failure(s.target().upload(s.destination(name), source, testContext()));
      // A storage read error is no reason to give up on the destination.
      expect(err).not.toBeInstanceOf(UploadRefused);
      if (s.atomic) expect(await s.readBack(name)).toBeUndefined();
    });

    it('refuses for good when the credentials are wrong, and stores nothing', async () => {
      if (!s.badCredentials) return;
      const name = freshName();
      const err = await failure(s.target().upload(s.badCredentials(name), fileSource(await sampleVideo()), testContext()));
      expect(err).toBeInstanceOf(UploadRefused);
      expect(err.message).not.toMatch(/\n\s+at /); // a plain message, no stack of a library
      expect(await s.readBack(name)).toBeUndefined();
    });

    it('refuses a loopback host when private addresses are not allowed, before opening the output', async () => {
      if (!s.privateHost) return;
      const name = freshName();
      const source = fileSource(await sampleVideo());
      const err = await failure(s.target().upload(s.privateHost(name), source, testContext({ allowPrivateAddresses: false })));
      expect(err instanceof UploadRefused || err instanceof PrivateAddressError).toBe(true);
      // The host is judged before anything is read or sent: the server never saw the upload.
      expect(source.opens).toEqual([]);
      expect(await s.readBack(name)).toBeUndefined();
    });

    it('stores nothing when the attempt is aborted before it starts (the process is shutting down)', async () => {
      const controller = new AbortController();
      controller.abort();
      const name = freshName();
      await failure(s.target().upload(s.destination(name), fileSource(await sampleVideo()), testContext({ controller })));
      expect(await s.readBack(name)).toBeUndefined();
    });
  });
}
