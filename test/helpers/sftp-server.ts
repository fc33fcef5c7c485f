import { createHash, randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Attributes, type Connection, type ParsedKey, Server, type SFTPWrapper, utils } from 'ssh2';

const { STATUS_CODE } = utils.sftp;

export interface SftpTestServer {
  host: string;
  port: number;
  username: string;
  password: string;
  /** A client key the server also accepts (OpenSSH format, encrypted with `clientKeyPassphrase`). */
  clientPrivateKey: string;
  clientKeyPassphrase: string;
  /** The host key's SHA-256 fingerprint, as `ssh-keygen -l` prints it after `SHA256:`. */
  hostFingerprint: string;
  /** The directory the user's "/" (and home) is. */
  root: string;
  read(remotePath: string): Promise<Buffer | undefined>;
  /** Every file name (not directories) under the root, relative, sorted. */
  files(): Promise<string[]>;
  /** SSH connections open right now. */
  connections(): number;
  stop(): Promise<void>;
}

/**
 * A real SSH server on 127.0.0.1 (ssh2's Server) with password (or one client key) authentication and an SFTP
 * subsystem over a fresh temporary directory: the requests ssh2-sftp-client's put, mkdir,
 * rename, delete and stat make. Like OpenSSH's, RENAME refuses an existing target.
 */
export async function startSftpServer(): Promise<SftpTestServer> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'montage-sftp-'));
  const username = 'montage';
  const password = `pw-${randomInt(1e9)}`;
  const keys = utils.generateKeyPairSync('ed25519');
  const hostKey = utils.parseKey(keys.private) as ParsedKey;
  const hostFingerprint = createHash('sha256').update(hostKey.getPublicSSH()).digest('base64').replace(/=+$/, '');
  const clientKeyPassphrase = `key-pass-${randomInt(1e9)}`;
  const clientKeys = utils.generateKeyPairSync('ed25519', { passphrase: clientKeyPassphrase, cipher: 'aes256-ctr', rounds: 16 });
  const clientKey = utils.parseKey(clientKeys.public) as ParsedKey;
  const clients = new Set<Connection>();

  const server = new Server({ hostKeys: [keys.private] }, (client) => {
    clients.add(client);
    client.on('close', () => clients.delete(client));
    client.on('error', () => undefined); // a client that vanishes mid-way is no test failure
    client.on('authentication', (auth) => {
      if (auth.username === username && auth.method === 'password' && auth.password === password) return auth.accept();
      if (auth.username === username && auth.method === 'publickey' && auth.key.algo === clientKey.type && clientKey.equals(auth.key.data)) {
        // Without a signature the client only asks whether the key would do; with one, it proves it holds it.
        if (!auth.signature) return auth.accept();
        if (auth.blob && clientKey.verify(auth.blob, auth.signature, auth.hashAlgo)) return auth.accept();
      }
      auth.reject(['password', 'publickey']);
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        const session = accept();
        session.on('sftp', (acceptSftp) => serve(acceptSftp(), root));
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    host: '127.0.0.1',
    port,
    username,
    password,
    clientPrivateKey: clientKeys.private,
    clientKeyPassphrase,
    hostFingerprint,
    root,
    read: async (remotePath) => fsp.readFile(local(root, remotePath)).catch(() => undefined),
    files: async () => (await listFiles(root)).sort(),
    connections: () => clients.size,
    stop: async () => {
      for (const client of clients) client.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fsp.rm(root, { recursive: true, force: true });
    },
  };
}

/** A client's path (absolute, or relative to "/", its home) inside the root: never above it. */
function local(root: string, remotePath: string): string {
  return path.join(root, path.posix.normalize(`/${remotePath}`));
}

type Handle = { kind: 'file'; fd: number } | { kind: 'dir'; dir: string; listed: boolean };

function serve(sftp: SFTPWrapper, root: string): void {
  const handles = new Map<number, Handle>();
  let next = 1;
  const open = (handle: Handle): Buffer => {
    const id = next++;
    handles.set(id, handle);
    const buf = Buffer.alloc(4);
    buf.writeUInt32BE(id);
    return buf;
  };
  const lookup = (buf: Buffer): Handle | undefined => (buf.length === 4 ? handles.get(buf.readUInt32BE()) : undefined);
  const fail = (reqId: number, err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    const status = code === 'ENOENT' ? STATUS_CODE.NO_SUCH_FILE : code === 'EACCES' || code === 'EPERM' ? STATUS_CODE.PERMISSION_DENIED : STATUS_CODE.FAILURE;
    sftp.status(reqId, status, (err as Error).message);
  };
  const ok = (reqId: number) => sftp.status(reqId, STATUS_CODE.OK);
  const attrs = (stat: fs.Stats): Attributes => ({
    mode: stat.mode,
    uid: stat.uid,
    gid: stat.gid,
    size: stat.size,
    atime: Math.floor(stat.atimeMs / 1000),
    mtime: Math.floor(stat.mtimeMs / 1000),
  });

  sftp.on('OPEN', (reqId, filename, flags) => {
    const mode = utils.sftp.flagsToString(flags) ?? 'r';
    fs.open(local(root, filename), mode, 0o644, (err, fd) => (err ? fail(reqId, err) : sftp.handle(reqId, open({ kind: 'file', fd }))));
  });
  sftp.on('WRITE', (reqId, handle, offset, data) => {
    const h = lookup(handle);
    if (h?.kind !== 'file') return sftp.status(reqId, STATUS_CODE.FAILURE, 'bad handle');
    fs.write(h.fd, data, 0, data.length, offset, (err) => (err ? fail(reqId, err) : ok(reqId)));
  });
  sftp.on('READ', (reqId, handle, offset, length) => {
    const h = lookup(handle);
    if (h?.kind !== 'file') return sftp.status(reqId, STATUS_CODE.FAILURE, 'bad handle');
    const buf = Buffer.alloc(length);
    fs.read(h.fd, buf, 0, length, offset, (err, n) => {
      if (err) return fail(reqId, err);
      if (n === 0) return sftp.status(reqId, STATUS_CODE.EOF);
      sftp.data(reqId, buf.subarray(0, n));
    });
  });
  sftp.on('FSTAT', (reqId, handle) => {
    const h = lookup(handle);
    if (h?.kind !== 'file') return sftp.status(reqId, STATUS_CODE.FAILURE, 'bad handle');
    fs.fstat(h.fd, (err, stat) => (err ? fail(reqId, err) : sftp.attrs(reqId, attrs(stat))));
  });
  // Modes and times are not what these tests look at: accepted and ignored.
  sftp.on('FSETSTAT', (reqId) => ok(reqId));
  sftp.on('SETSTAT', (reqId) => ok(reqId));
  sftp.on('CLOSE', (reqId, handle) => {
    const h = lookup(handle);
    if (!h) return sftp.status(reqId, STATUS_CODE.FAILURE, 'bad handle');
    handles.delete(handle.readUInt32BE());
    if (h.kind === 'file') fs.close(h.fd, (err) => (err ? fail(reqId, err) : ok(reqId)));
    else ok(reqId);
  });
  sftp.on('OPENDIR', (reqId, dirPath) => {
    fs.stat(local(root, dirPath), (err, stat) => {
      if (err) return fail(reqId, err);
      if (!stat.isDirectory()) return sftp.status(reqId, STATUS_CODE.FAILURE, 'not a directory');
      sftp.handle(reqId, open({ kind: 'dir', dir: local(root, dirPath), listed: false }));
    });
  });
  sftp.on('READDIR', (reqId, handle) => {
    const h = lookup(handle);
    if (h?.kind !== 'dir') return sftp.status(reqId, STATUS_CODE.FAILURE, 'bad handle');
    if (h.listed) return sftp.status(reqId, STATUS_CODE.EOF);
    h.listed = true;
    fsp
      .readdir(h.dir)
      .then(async (names) => {
        const entries = await Promise.all(names.map(async (filename) => ({ filename, longname: filename, attrs: attrs(await fsp.lstat(path.join(h.dir, filename))) })));
        if (entries.length === 0) sftp.status(reqId, STATUS_CODE.EOF);
        else sftp.name(reqId, entries);
      })
      .catch((err) => fail(reqId, err));
  });
  sftp.on('STAT', (reqId, p) => fs.stat(local(root, p), (err, stat) => (err ? fail(reqId, err) : sftp.attrs(reqId, attrs(stat)))));
  sftp.on('LSTAT', (reqId, p) => fs.lstat(local(root, p), (err, stat) => (err ? fail(reqId, err) : sftp.attrs(reqId, attrs(stat)))));
  sftp.on('REALPATH', (reqId, p) => {
    const absolute = path.posix.normalize(`/${p}`);
    sftp.name(reqId, [{ filename: absolute, longname: absolute, attrs: {} as Attributes }]);
  });
  sftp.on('MKDIR', (reqId, p) => fs.mkdir(local(root, p), (err) => (err ? fail(reqId, err) : ok(reqId))));
  sftp.on('RMDIR', (reqId, p) => fs.rmdir(local(root, p), (err) => (err ? fail(reqId, err) : ok(reqId))));
  sftp.on('REMOVE', (reqId, p) => fs.unlink(local(root, p), (err) => (err ? fail(reqId, err) : ok(reqId))));
  sftp.on('RENAME', (reqId, from, to) => {
    // SFTP v3 (and OpenSSH without posix-rename) does not replace an existing file.
    if (fs.existsSync(local(root, to))) return sftp.status(reqId, STATUS_CODE.FAILURE, 'target exists');
    fs.rename(local(root, from), local(root, to), (err) => (err ? fail(reqId, err) : ok(reqId)));
  });
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(path.join(dir, entry.name), rel)));
    else out.push(rel);
  }
  return out;
}
