import { Client, FTPError } from 'basic-ftp';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import * as path from 'node:path';
import { PrivateAddressError, resolveAllowed } from '../outbound-http/guarded-network';
import { DestinationType, type FtpDestination, type UploadContext, type UploadResult, type UploadSource, type UploadTarget, UploadRefused } from './port';

/** TLS failures that another attempt would meet again: the server's certificate is not acceptable. */
const CERTIFICATE_ERRORS = /^(ERR_TLS_CERT|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(GET|VERIFY)_)/;

/**
 * FTP and explicit FTPS (AUTH TLS) in passive mode. The bytes go to a hidden temporary name in
 * the destination's directory and are renamed to the final name once complete, so a failed
 * attempt never leaves a partial file under the name the user asked for.
 */
export class FtpUploadTarget implements UploadTarget<DestinationType.Ftp> {
  readonly type = DestinationType.Ftp;

  constructor(private readonly options: { timeoutMs?: number } = {}) {}

  async upload(destination: FtpDestination, source: UploadSource, ctx: UploadContext): Promise<UploadResult> {
    if (ctx.signal.aborted) throw aborted();
    const address = await resolveAllowed(destination.host, ctx.allowPrivateAddresses).catch((err: unknown) => {
      throw err instanceof PrivateAddressError ? new UploadRefused(err.message) : new Error(`FTP host ${destination.host} could not be resolved (${(err as NodeJS.ErrnoException).code ?? 'lookup failed'})`);
    });
    const remote = path.posix.normalize(destination.filename);
    const dir = path.posix.dirname(remote);
    const name = path.posix.basename(remote);
    const temp = `.${name}.${randomBytes(6).toString('hex')}.part`;

    const client = new Client(this.options.timeoutMs ?? 30_000);
    const onAbort = () => client.close();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    let tempWritten = false;
    try {
      await this.login(client, destination, address);
      // ensureDir makes each missing directory and leaves the client in the last one.
      if (dir !== '.') await client.ensureDir(dir);
      if (ctx.signal.aborted) throw aborted();

      let reported = 0;
      client.trackProgress((info) => {
        // The data socket's count can include TLS framing: never report more than the output.
        const bytes = Math.min(info.bytes, source.size);
        if (info.type === 'upload' && bytes > reported) ctx.onProgress((reported = bytes));
      });
      const stream = await source.open(0);
      tempWritten = true;
      try {
        await client.uploadFrom(stream, temp);
      } finally {
        client.trackProgress();
        stream.destroy();
      }
      await this.replace(client, temp, name);
      tempWritten = false;
      ctx.onProgress(source.size);
      return { url: ftpUrl(destination) };
    } catch (err) {
      if (tempWritten) await this.removeTemp(client, destination, address, dir, temp);
      if (ctx.signal.aborted) throw aborted();
      throw describe(err, destination);
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      client.close();
    }
  }

  private async login(client: Client, destination: FtpDestination, address: string): Promise<void> {
    await client.access({
      host: address,
      port: destination.port ?? 21,
      user: destination.user,
      password: destination.password,
      secure: destination.secure === true,
      // The socket goes to the checked address; the certificate is still checked against the host's name.
      secureOptions: destination.secure && !isIP(destination.host) ? { servername: destination.host } : undefined,
    });
  }

  /** Renames over the final name; servers that refuse to overwrite get the old file removed first. */
  private async replace(client: Client, temp: string, name: string): Promise<void> {
    try {
      await client.rename(temp, name);
    } catch (err) {
      if (!(err instanceof FTPError) || err.code < 500) throw err;
      await client.remove(name, true);
      await client.rename(temp, name);
    }
  }

  /**
   * Best effort: a source that fails mid-way makes basic-ftp drop the control connection, so
   * the temporary file is then removed over a fresh one (bounded: the attempt has failed already).
   */
  private async removeTemp(client: Client, destination: FtpDestination, address: string, dir: string, temp: string): Promise<void> {
    try {
      // An open client sits in the destination directory (ensureDir); a fresh one in the login directory.
      if (!client.closed) return void (await client.remove(temp, true));
      const cleaner = new Client(10_000);
      try {
        await this.login(cleaner, destination, address);
        await cleaner.remove(dir === '.' ? temp : path.posix.join(dir, temp), true);
      } finally {
        cleaner.close();
      }
    } catch {
      // The temporary name is hidden and never the final one: a leftover is harmless.
    }
  }
}

function aborted(): Error {
  return new Error('the upload was aborted');
}

function ftpUrl(destination: FtpDestination): string {
  const host = isIP(destination.host) === 6 ? `[${destination.host}]` : destination.host;
  const port = destination.port && destination.port !== 21 ? `:${destination.port}` : '';
  const file = destination.filename.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/');
  return `ftp://${host}${port}/${file}`;
}

/** What the caller sees: UploadRefused for what a retry would repeat, a plain Error otherwise; never the password. */
function describe(err: unknown, destination: FtpDestination): Error {
  if (err instanceof UploadRefused) return err;
  const hide = (text: string) => (destination.password ? text.split(destination.password).join('***') : text);
  if (err instanceof FTPError) {
    const reply = hide(err.message.replace(/\s+/g, ' ').trim());
    if (err.code === 530) return new UploadRefused(`the FTP server ${destination.host} refused the login of ${destination.user} (${reply})`);
    return new Error(`the FTP server ${destination.host} answered ${reply}`);
  }
  const code = (err as NodeJS.ErrnoException)?.code;
  if (typeof code === 'string' && CERTIFICATE_ERRORS.test(code)) return new UploadRefused(`the FTPS certificate of ${destination.host} is not acceptable (${code})`);
  const message = err instanceof Error ? err.message : String(err);
  return new Error(hide(`FTP upload to ${destination.host} failed: ${code && !message.includes(code) ? `${code} ` : ''}${message}`));
}
