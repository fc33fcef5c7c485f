import { randomInt } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { FtpSrv } from 'ftp-srv';
import { freePort } from './processes';

export interface FtpTestServer {
  host: string;
  port: number;
  user: string;
  password: string;
  /** The directory the user's "/" is. */
  root: string;
  /** The bytes stored at `remotePath` (relative to the user's root), or undefined. */
  read(remotePath: string): Promise<Buffer | undefined>;
  /** Every file name (not directories) under the root, relative, sorted. */
  files(): Promise<string[]>;
  /** Control connections open right now. */
  connections(): number;
  stop(): Promise<void>;
}

/** ftp-srv logs through bunyan to stdout by default: silence it. */
const quiet = {
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  fatal: () => undefined,
  child() {
    return this;
  },
};

/**
 * A real FTP server on 127.0.0.1 (ftp-srv): one user, passive mode on a small port range,
 * serving a fresh temporary directory.
 */
export async function startFtpServer(): Promise<FtpTestServer> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'montage-ftp-'));
  const user = 'montage';
  const password = `pw-${randomInt(1e9)}`;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    // A random passive range per server: other test files may run an FTP server at the same time.
    const pasvMin = 40000 + randomInt(200) * 100;
    const server = new FtpSrv({
      url: `ftp://127.0.0.1:${port}`,
      pasv_url: '127.0.0.1',
      pasv_min: pasvMin,
      pasv_max: pasvMin + 99,
      anonymous: false,
      greeting: 'Montage test FTP',
      log: quiet,
    });
    server.on('login', ({ username, password: given }, resolve, reject) => {
      if (username === user && given === password) resolve({ root });
      else reject(new Error('Invalid username or password'));
    });
    try {
      await server.listen();
    } catch (err) {
      lastError = err;
      await server.close();
      continue;
    }
    const inner = server as unknown as { connections: Record<string, unknown>; server: net.Server };
    return {
      host: '127.0.0.1',
      port,
      user,
      password,
      root,
      read: async (remotePath) => fs.readFile(path.join(root, remotePath)).catch(() => undefined),
      files: async () => (await listFiles(root)).sort(),
      connections: () => Object.keys(inner.connections).length,
      stop: async () => {
        await server.close();
        await fs.rm(root, { recursive: true, force: true });
      },
    };
  }
  await fs.rm(root, { recursive: true, force: true });
  throw new Error(`the FTP test server did not start: ${(lastError as Error)?.message}`);
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(path.join(dir, entry.name), rel)));
    else out.push(rel);
  }
  return out;
}
