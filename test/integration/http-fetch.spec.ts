import { createHash } from 'node:crypto';
// The module object itself, so spies on it are seen by the repository.
import dns from 'node:dns';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import * as urlPolicy from '../../src/assets/url-policy';
import { MontageError } from '../../src/common/errors';
import { type DownloadOptions, HttpFetchRepository } from '../../src/repositories/http-fetch.repository';

const MAX_BYTES = 4096;
const BIG = Buffer.alloc(MAX_BYTES * 4, 0x61);

let png: Buffer;
let server: http.Server;
let base: string;
let destDir: string;
const repository = new HttpFetchRepository();

function options(overrides: Partial<DownloadOptions> = {}): DownloadOptions {
  return { destDir, maxBytes: MAX_BYTES, timeoutMs: 2000, maxRedirects: 5, allowPrivateAddresses: true, ...overrides };
}

function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', base);
  const hop = /^\/hop\/(\d+)$/.exec(url.pathname);
  if (hop) {
    const left = Number(hop[1]);
    res.writeHead(302, { location: left > 0 ? `/hop/${left - 1}` : '../image.png' }).end();
    return;
  }
  switch (url.pathname) {
    case '/image.png':
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length }).end(png);
      return;
    case '/missing':
      res.writeHead(404, { 'content-type': 'text/plain' }).end('secret internal details');
      return;
    case '/to-ftp':
      res.writeHead(302, { location: 'ftp://files.example.com/a.png' }).end();
      return;
    case '/to-ipv6-loopback':
      res.writeHead(302, { location: `http://[::1]:${(server.address() as AddressInfo).port}/image.png` }).end();
      return;
    case '/to-localhost':
      res.writeHead(302, { location: `http://localhost:${(server.address() as AddressInfo).port}/image.png` }).end();
      return;
    case '/hang':
      return; // never answers
    case '/trickle': {
      // Headers and a first byte arrive at once, then the body stalls.
      res.writeHead(200, { 'content-type': 'video/mp4' });
      res.write('x');
      return;
    }
    case '/big-declared':
      res.writeHead(200, { 'content-length': BIG.length }).end(BIG);
      return;
    case '/big-undeclared': {
      // Chunked and endless: only the byte counter can stop it.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const timer = setInterval(() => res.write(BIG.subarray(0, 1024)), 5);
      res.on('close', () => clearInterval(timer));
      return;
    }
    default:
      res.writeHead(404).end();
  }
}

type LookupCallback = (error: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void;

/** Answers every DNS lookup with the given addresses or error, as the real resolver would (asynchronously). */
function fakeDns(answer: dns.LookupAddress[] | NodeJS.ErrnoException) {
  const lookup = (_host: string, _options: dns.LookupAllOptions, callback: LookupCallback) =>
    process.nextTick(() => (answer instanceof Error ? callback(answer, []) : callback(null, answer)));
  return jest.spyOn(dns, 'lookup').mockImplementation(lookup as unknown as typeof dns.lookup);
}

async function partFiles(): Promise<string[]> {
  return (await readdir(destDir)).filter((name) => name.endsWith('.part'));
}

async function expectFailure(url: string, opts: DownloadOptions, kind: string, message: RegExp): Promise<MontageError> {
  const error = await repository.download(new URL(url), opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MontageError);
  const failure = error as MontageError;
  expect({ kind: failure.kind, message: failure.message }).toEqual({ kind, message: expect.stringMatching(message) });
  expect(await partFiles()).toEqual([]);
  return failure;
}

beforeAll(async () => {
  png = await sharp({ create: { width: 4, height: 4, channels: 3, background: '#f00' } })
    .png()
    .toBuffer();
  server = http.createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(async () => {
  destDir = await mkdtemp(path.join(os.tmpdir(), 'montage-fetch-'));
});

afterEach(async () => {
  jest.restoreAllMocks();
  await rm(destDir, { recursive: true, force: true });
});

describe('HttpFetchRepository.download', () => {
  it('downloads to a .part file in destDir with the right hash, size and type', async () => {
    const result = await repository.download(new URL(`${base}/image.png`), options());

    expect(path.dirname(result.tempPath)).toBe(destDir);
    expect(result.tempPath).toMatch(/\.part$/);
    expect(await readFile(result.tempPath)).toEqual(png);
    expect(result).toMatchObject({
      sha256: createHash('sha256').update(png).digest('hex'),
      bytes: png.length,
      contentType: 'image/png',
      finalUrl: `${base}/image.png`,
    });
  });

  it('refuses a loopback literal when private addresses are not allowed', async () => {
    const error = await expectFailure(
      `${base}/image.png`,
      options({ allowPrivateAddresses: false }),
      'unusable_media',
      /resolves to a private\/loopback address \(127\.0\.0\.1\); set MEDIA_ALLOW_PRIVATE=1 to allow/,
    );
    expect(error.message).toContain(`${base}/image.png`);
  });

  it('refuses a host name that resolves to loopback', async () => {
    const port = (server.address() as AddressInfo).port;
    await expectFailure(
      `http://localhost:${port}/image.png`,
      options({ allowPrivateAddresses: false }),
      'unusable_media',
      /localhost.*resolves to a private\/loopback address/,
    );
  });

  it('connects to the address its own lookup checked, resolving only once', async () => {
    const lookup = fakeDns([{ address: '127.0.0.1', family: 4 }]);
    const port = (server.address() as AddressInfo).port;

    const result = await repository.download(new URL(`http://media.example.test:${port}/image.png`), options());

    expect(result.sha256).toBe(createHash('sha256').update(png).digest('hex'));
    expect(lookup).toHaveBeenCalledTimes(1);
    expect(lookup.mock.calls[0][0]).toBe('media.example.test');
  });

  it('refuses a host if any of its addresses is private, not just the first', async () => {
    fakeDns([
      { address: '8.8.8.8', family: 4 },
      { address: '10.0.0.7', family: 4 },
    ]);
    await expectFailure(
      'http://media.example.test/a.png',
      options({ allowPrivateAddresses: false }),
      'unusable_media',
      /\(10\.0\.0\.7\)/,
    );
  });

  it('follows a redirect chain within the limit, including relative locations', async () => {
    const result = await repository.download(new URL(`${base}/hop/2`), options({ maxRedirects: 3 }));
    expect(result.finalUrl).toBe(`${base}/image.png`);
    expect(result.sha256).toBe(createHash('sha256').update(png).digest('hex'));
  });

  it('stops after maxRedirects', async () => {
    const opts = options({ maxRedirects: 2 });
    await expectFailure(`${base}/hop/2`, opts, 'unusable_media', /redirected too many times \(limit 2\)/);
  });

  it('re-checks the scheme at every hop', async () => {
    await expectFailure(`${base}/to-ftp`, options(), 'unusable_media', /redirected to ftp:.*only http and https/);
  });

  describe('re-checks the address at every hop', () => {
    // Pretend 127.0.0.1 is public so the first hop is allowed and only the redirect target is judged.
    beforeEach(() => {
      const real = urlPolicy.isPublicAddress;
      jest.spyOn(urlPolicy, 'isPublicAddress').mockImplementation((ip) => ip === '127.0.0.1' || real(ip));
    });

    it('for a literal address', async () => {
      await expectFailure(
        `${base}/to-ipv6-loopback`,
        options({ allowPrivateAddresses: false }),
        'unusable_media',
        /redirected to http:\/\/\[::1\].*private\/loopback address \(::1\)/,
      );
    });

    it('for a resolved host name', async () => {
      fakeDns([{ address: '169.254.169.254', family: 4 }]);
      await expectFailure(
        `${base}/to-localhost`,
        options({ allowPrivateAddresses: false }),
        'unusable_media',
        /redirected to http:\/\/localhost.*\(169\.254\.169\.254\)/,
      );
    });
  });

  it('reports a non-2xx status without the response body', async () => {
    const error = await expectFailure(`${base}/missing`, options(), 'unusable_media', /\/missing returned HTTP 404/);
    expect(error.message).not.toContain('secret');
  });

  it('refuses a declared Content-Length over maxBytes before reading the body', async () => {
    await expectFailure(`${base}/big-declared`, options(), 'too_large', /over the limit of 4096 bytes/);
  });

  it('stops an undeclared body once it passes maxBytes', async () => {
    await expectFailure(`${base}/big-undeclared`, options(), 'too_large', /over the limit of 4096 bytes/);
  });

  it('times out a server that never answers', async () => {
    await expectFailure(`${base}/hang`, options({ timeoutMs: 300 }), 'unusable_media', /\/hang timed out after 300 ms/);
  });

  it('times out a body that stalls, and removes what was written', async () => {
    await expectFailure(`${base}/trickle`, options({ timeoutMs: 300 }), 'unusable_media', /timed out after 300 ms/);
  });

  it('names the host when the connection is refused', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));

    const url = `http://127.0.0.1:${port}/a.png`;
    await expectFailure(url, options(), 'unusable_media', /127\.0\.0\.1 refused the connection/);
  });

  it('names the host when it cannot be resolved', async () => {
    fakeDns(Object.assign(new Error('getaddrinfo ENOTFOUND no-such-host.example.test'), { code: 'ENOTFOUND' }));
    const url = 'https://no-such-host.example.test/a.png';
    await expectFailure(url, options(), 'unusable_media', /host no-such-host\.example\.test was not found/);
  });

  it('truncates a long URL in messages', async () => {
    const error = await expectFailure(`${base}/missing?${'q'.repeat(1000)}`, options(), 'unusable_media', /HTTP 404/);
    expect(error.message.length).toBeLessThan(400);
  });
});
