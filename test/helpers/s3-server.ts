import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './processes';

const run = promisify(execFile);
const SCRIPTS = path.resolve(__dirname, '../../scripts/s3-radosgw');

export interface S3Server {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** A STORAGE_URL for a bucket on this server. */
  storageUrl(bucket: string, prefix?: string): string;
  stop(): Promise<void>;
}

/**
 * A real S3-compatible server for tests: radosgw on a one-node Ceph (memstore), ≈13 s cold.
 * It checks signatures, unlike in-process fakes. `./run test` installs it.
 */
export async function startS3Server(): Promise<S3Server> {
  for (const bin of ['radosgw', 'ceph-mon', 'ceph-osd', 'ceph']) {
    await run('sh', ['-c', `command -v ${bin}`]).catch(() => {
      throw new Error(`${bin} is missing: the S3 tests need radosgw (./run setup installs it, or apt-get install ceph-mon ceph-osd radosgw ceph-common)`);
    });
  }
  // Once more on failure: a port found free can be taken by someone else before Ceph binds it.
  let started: { dir: string; rgwPort: number } | undefined;
  let lastError = '';
  for (let attempt = 0; attempt < 2 && !started; attempt++) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'montage-rgw-'));
    const rgwPort = await freePort();
    let monPort = await freePort();
    while (monPort === rgwPort) monPort = await freePort();
    try {
      await run('bash', [path.join(SCRIPTS, 'start.sh'), dir, String(rgwPort), String(monPort)], { timeout: 120_000 });
      started = { dir, rgwPort };
    } catch (err) {
      const log = await fs.readFile(path.join(dir, 'log', 'rgw.log'), 'utf8').catch(() => '');
      lastError = `${(err as Error).message}\n${log.slice(-2000)}`;
      await run('bash', [path.join(SCRIPTS, 'stop.sh'), dir]).catch(() => undefined);
      await fs.rm(dir, { recursive: true, force: true });
    }
  }
  if (!started) throw new Error(`radosgw did not start: ${lastError}`);
  const { dir, rgwPort } = started;
  const endpoint = `http://127.0.0.1:${rgwPort}`;
  const server: S3Server = {
    endpoint,
    accessKeyId: 'TESTKEY',
    secretAccessKey: 'TESTSECRET',
    storageUrl: (bucket, prefix = '') => `s3://TESTKEY:TESTSECRET@${bucket}/${prefix}?endpoint=${encodeURIComponent(endpoint)}`,
    stop: async () => {
      await run('bash', [path.join(SCRIPTS, 'stop.sh'), dir]).catch(() => undefined);
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
  serverDirs.set(server, dir);
  return server;
}

const serverDirs = new WeakMap<S3Server, string>();

/** Another radosgw user with keys of its own (as start.sh makes the first): what a second customer's account is. */
export async function createS3User(server: S3Server, uid: string, accessKeyId: string, secretAccessKey: string): Promise<void> {
  const dir = serverDirs.get(server);
  if (!dir) throw new Error('not a server startS3Server started');
  await run('radosgw-admin', ['-c', 'ceph.conf', '-n', 'client.rgw', 'user', 'create', `--uid=${uid}`, `--display-name=${uid}`, `--access-key=${accessKeyId}`, `--secret-key=${secretAccessKey}`], { cwd: dir, timeout: 60_000 });
}

/**
 * Makes radosgw take a storage class besides STANDARD (AWS's REDUCED_REDUNDANCY, say), stored in
 * the same pool. radosgw reads its placement only at start, so it is restarted (≈1 s).
 */
export async function addStorageClass(server: S3Server, storageClass: string): Promise<void> {
  const dir = serverDirs.get(server);
  if (!dir) throw new Error('not a server startS3Server started');
  const admin = (...args: string[]) => run('radosgw-admin', ['-c', 'ceph.conf', '-n', 'client.rgw', ...args], { cwd: dir, timeout: 60_000 });
  await admin('zonegroup', 'placement', 'add', '--rgw-zonegroup', 'default', '--placement-id', 'default-placement', '--storage-class', storageClass);
  await admin('zone', 'placement', 'add', '--rgw-zone', 'default', '--placement-id', 'default-placement', '--storage-class', storageClass, '--data-pool', 'default.rgw.buckets.data');
  const pidFile = path.join(dir, 'run', 'client.rgw.pid');
  const pid = Number(await fs.readFile(pidFile, 'utf8'));
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 100 && (await fs.stat(`/proc/${pid}`).then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 100));
  await fs.rm(path.join(dir, 'run', 'client.rgw.asok'), { force: true });
  await run('radosgw', ['-c', 'ceph.conf', '-n', 'client.rgw'], { cwd: dir, timeout: 60_000 });
  for (let i = 0; i < 120; i++) {
    if (await fetch(server.endpoint).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('radosgw did not come back after its restart');
}
