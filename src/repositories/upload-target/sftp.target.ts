import { createHash, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { pipeline, Transform } from 'node:stream';
import type { Client as SshClient, SFTPWrapper } from 'ssh2';
import SftpClient from 'ssh2-sftp-client';
import { PrivateAddressError, resolveAllowed } from '../outbound-http/guarded-network';
import { DestinationType, type SftpDestination, type UploadContext, type UploadResult, type UploadSource, type UploadTarget, UploadRefused } from './port';

/** ssh2-sftp-client's default event callbacks print to the console: failures are reported by the promises instead. */
const QUIET = { error: () => undefined, end: () => undefined, close: () => undefined };

/** What the connection showed that ssh2-sftp-client's rewrapped errors no longer tell. */
interface Seen {
  authFailed: boolean;
  keyMismatch: boolean;
  /** The fingerprint the server offered (when one was expected). */
  offeredKey?: string;
}

/** ssh2's messages for a private key it cannot use: a configuration error, not a passing one. */
const BAD_KEY = /privateKey|private key|passphrase/i;

/**
 * SFTP with a password or a private key, the host key checked against `host_fingerprint` when
 * given. The bytes go through `put` (a plain write stream: fastPut's parallel writes corrupt
 * files on some servers) to a hidden temporary name, then a rename makes the final name.
 */
export class SftpUploadTarget implements UploadTarget<DestinationType.Sftp> {
  readonly type = DestinationType.Sftp;

  constructor(private readonly options: { timeoutMs?: number } = {}) {}

  async upload(destination: SftpDestination, source: UploadSource, ctx: UploadContext): Promise<UploadResult> {
    if (ctx.signal.aborted) throw aborted();
    if (!destination.password && !destination.private_key) throw new UploadRefused('the SFTP destination needs a password or a private key');
    const address = await resolveAllowed(destination.host, ctx.allowPrivateAddresses).catch((err: unknown) => {
      throw err instanceof PrivateAddressError ? new UploadRefused(err.message) : new Error(`SFTP host ${destination.host} could not be resolved (${(err as NodeJS.ErrnoException).code ?? 'lookup failed'})`);
    });
    const remote = path.posix.normalize(destination.filename);
    const dir = path.posix.dirname(remote);
    const temp = path.posix.join(dir, `.${path.posix.basename(remote)}.${randomBytes(6).toString('hex')}.part`);

    const client = new SftpClient('montage', QUIET);
    const ssh = (client as unknown as { client: SshClient }).client;
    // ssh2-sftp-client rewraps errors without ssh2's `level`: keep what tells a refusal apart.
    const seen: Seen = { authFailed: false, keyMismatch: false };
    const onError = (err: Error & { level?: string }) => {
      if (err.level === 'client-authentication') seen.authFailed = true;
    };
    ssh.on('error', onError);
    const onAbort = () => ssh.end();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    let tempWritten = false;
    try {
      const sftp = await this.connect(client, destination, address, seen);
      if (ctx.signal.aborted) throw aborted();
      if (dir !== '.' && dir !== '/') await client.mkdir(dir, true);

      // Counts what the SFTP writer takes: progress without a second reader on the stream.
      let sent = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          ctx.onProgress((sent = Math.min(sent + chunk.length, source.size)));
          done(null, chunk);
        },
      });
      const stream = await source.open(0);
      tempWritten = true;
      // A read error of the source destroys the counter, which fails the put.
      pipeline(stream, counter, () => undefined);
      try {
        await client.put(counter, temp);
      } finally {
        stream.destroy();
        counter.destroy();
      }
      await this.replace(client, sftp, temp, remote);
      tempWritten = false;
      ctx.onProgress(source.size);
      return { url: sftpUrl(destination) };
    } catch (err) {
      if (tempWritten) await this.removeTemp(ctx.signal.aborted ? undefined : client, destination, address, temp);
      if (ctx.signal.aborted) throw aborted();
      throw describe(err, destination, seen);
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      await client.end().catch(() => undefined);
      ssh.removeListener('error', onError);
    }
  }

  private connect(client: SftpClient, destination: SftpDestination, address: string, seen: Seen, timeoutMs = this.options.timeoutMs ?? 30_000): Promise<SFTPWrapper> {
    return client.connect({
      host: address,
      port: destination.port ?? 22,
      username: destination.username,
      password: destination.password,
      privateKey: destination.private_key,
      passphrase: destination.passphrase,
      readyTimeout: timeoutMs,
      hostVerifier: destination.host_fingerprint
        ? (key: Buffer) => {
            seen.offeredKey = fingerprint(key);
            seen.keyMismatch = seen.offeredKey !== normalizeFingerprint(destination.host_fingerprint!);
            return !seen.keyMismatch;
          }
        : undefined,
    });
  }

  /** Best effort, bounded: over the same connection when it is still up, else over a fresh one (after an abort). */
  private async removeTemp(client: SftpClient | undefined, destination: SftpDestination, address: string, temp: string): Promise<void> {
    try {
      if (client && (client as unknown as { sftp?: unknown }).sftp) return void (await client.delete(temp, true));
      const cleaner = new SftpClient('montage-cleanup', QUIET);
      try {
        await this.connect(cleaner, destination, address, { authFailed: false, keyMismatch: false }, 10_000);
        await cleaner.delete(temp, true);
      } finally {
        await cleaner.end().catch(() => undefined);
      }
    } catch {
      // The temporary name is hidden and never the final one: a leftover is harmless.
    }
  }

  /**
   * posix-rename (OpenSSH) replaces the final name atomically. Plain SFTP rename refuses an
   * existing target, so without the extension an older file is removed first.
   */
  private async replace(client: SftpClient, sftp: SFTPWrapper, temp: string, remote: string): Promise<void> {
    const extensions = (sftp as unknown as { _extensions?: Record<string, string> })._extensions ?? {};
    if (extensions['posix-rename@openssh.com'] === '1') {
      await client.posixRename(temp, remote);
      return;
    }
    if (await client.exists(remote)) await client.delete(remote, true);
    await client.rename(temp, remote);
  }
}

/** The SHA-256 fingerprint as `ssh-keygen -l` prints it after `SHA256:` (base64, no padding). */
export function fingerprint(publicKey: Buffer): string {
  return createHash('sha256').update(publicKey).digest('base64').replace(/=+$/, '');
}

function normalizeFingerprint(value: string): string {
  return value.trim().replace(/^SHA256:/i, '').replace(/=+$/, '');
}

function aborted(): Error {
  return new Error('the upload was aborted');
}

function sftpUrl(destination: SftpDestination): string {
  const host = isIP(destination.host) === 6 ? `[${destination.host}]` : destination.host;
  const port = destination.port && destination.port !== 22 ? `:${destination.port}` : '';
  const file = destination.filename.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/');
  return `sftp://${host}${port}/${file}`;
}

function describe(err: unknown, destination: SftpDestination, seen: Seen): Error {
  if (err instanceof UploadRefused) return err;
  if (seen.keyMismatch) {
    return new UploadRefused(`the host key of ${destination.host} (SHA256:${seen.offeredKey}) does not match host_fingerprint: not connecting`);
  }
  if (seen.authFailed) return new UploadRefused(`the SFTP server ${destination.host} refused the login of ${destination.username}`);
  const raw = err instanceof Error ? err.message : String(err);
  const secrets = [destination.password, destination.passphrase].filter((s): s is string => !!s);
  const message = secrets.reduce((text, secret) => text.split(secret).join('***'), raw.replace(/\s+/g, ' ').trim());
  if (BAD_KEY.test(message) && !/Write stream|Read stream/.test(message)) return new UploadRefused(`the SFTP private key cannot be used: ${message}`);
  return new Error(`SFTP upload to ${destination.host} failed: ${message}`);
}
