import * as net from 'node:net';
import { pipeline, Transform } from 'node:stream';
import { FtpUploadTarget } from '../../src/repositories/upload-target/ftp.target';
import { FacebookUploadTarget } from '../../src/repositories/upload-target/facebook.target';
import { DestinationType, type FacebookDestination, type FtpDestination, type SftpDestination, type UploadSource, type UploadTarget, UploadRefused, type YouTubeDestination } from '../../src/repositories/upload-target/port';
import { SftpUploadTarget } from '../../src/repositories/upload-target/sftp.target';
import { YouTubeUploadTarget } from '../../src/repositories/upload-target/youtube.target';
import { type FacebookTestServer, startFacebookServer } from '../helpers/facebook-server';
import { type FtpTestServer, startFtpServer } from '../helpers/ftp-server';
import { type SftpTestServer, startSftpServer } from '../helpers/sftp-server';
import { startYouTubeServer, type YouTubeTestServer } from '../helpers/youtube-server';
import { freshName, type GeneratedSource, generatedSource, sha256, testContext, uploadTargetContract } from '../helpers/upload-target-contract';

let ftp: FtpTestServer;
let sftp: SftpTestServer;
let yt: YouTubeTestServer;
let fb: FacebookTestServer;

beforeAll(async () => {
  [ftp, sftp, yt, fb] = await Promise.all([startFtpServer(), startSftpServer(), startYouTubeServer(), startFacebookServer()]);
});

afterAll(async () => {
  await Promise.all([ftp?.stop(), sftp?.stop(), yt?.stop(), fb?.stop()]);
});

/** How an upload failed (it must fail). */
async function failure(upload: Promise<unknown>): Promise<Error> {
  try {
    await upload;
  } catch (err) {
    return err as Error;
  }
  throw new Error('the upload succeeded where it should have failed');
}

/** Whether something accepts connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const ftpDestination = (filename: string): FtpDestination => ({ type: DestinationType.Ftp, host: ftp.host, port: ftp.port, user: ftp.user, password: ftp.password, filename });
const sftpDestination = (filename: string): SftpDestination => ({
  type: DestinationType.Sftp,
  host: sftp.host,
  port: sftp.port,
  username: sftp.username,
  password: sftp.password,
  host_fingerprint: sftp.hostFingerprint,
  filename,
});

const KiB = 1024;
const youtube = (chunkBytes?: number) => new YouTubeUploadTarget({ youtubeApiUrl: yt.apiUrl, youtubeOauthUrl: yt.oauthUrl }, { chunkBytes });
const youtubeDestination = (title: string): YouTubeDestination => ({
  type: DestinationType.YouTube,
  client_id: yt.clientId,
  client_secret: yt.clientSecret,
  refresh_token: yt.refreshToken,
  snippet: { title, description: 'Rendered by Montage', tags: ['montage', 'test'], categoryId: '22' },
  status: { privacyStatus: 'unlisted', madeForKids: false },
});

const MiB = 1024 * KiB;
const facebook = () => new FacebookUploadTarget({ facebookGraphUrl: fb.graphUrl });
const facebookDestination = (title: string): FacebookDestination => ({
  type: DestinationType.Facebook,
  page_id: fb.pageId,
  page_token: fb.pageToken,
  title,
  description: 'Rendered by Montage',
});

uploadTargetContract('FTP', () => ({
  target: () => new FtpUploadTarget(),
  destination: (name) => ftpDestination(`contract/${name}`),
  readBack: (name) => ftp.read(`contract/${name}`),
  badCredentials: (name) => ({ ...ftpDestination(`contract/${name}`), password: 'not-the-password' }),
  privateHost: (name) => ftpDestination(`contract/${name}`),
  atomic: true,
}));

uploadTargetContract('SFTP', () => ({
  target: () => new SftpUploadTarget(),
  destination: (name) => sftpDestination(`contract/${name}`),
  readBack: (name) => sftp.read(`contract/${name}`),
  badCredentials: (name) => ({ ...sftpDestination(`contract/${name}`), password: 'not-the-password' }),
  privateHost: (name) => sftpDestination(`contract/${name}`),
  atomic: true,
}));

uploadTargetContract('YouTube', () => ({
  target: () => youtube(),
  destination: youtubeDestination,
  readBack: async (name) => yt.videoByTitle(name)?.bytes,
  badCredentials: (name) => ({ ...youtubeDestination(name), refresh_token: '1//revoked-refresh-token' }),
  // The destination names no host: the configured API (on loopback here) is what is judged.
  privateHost: youtubeDestination,
  atomic: true,
}));

uploadTargetContract('Facebook', () => ({
  target: facebook,
  destination: facebookDestination,
  readBack: async (name) => fb.videoByTitle(name)?.bytes,
  badCredentials: (name) => ({ ...facebookDestination(name), page_token: 'EAABnot-the-page-token' }),
  privateHost: facebookDestination,
  atomic: true,
}));

/** A source that stops after `pauseAt` bytes until released: the upload can be looked at mid-way. */
function pausingSource(size: number, pauseAt: number, options: { failAfter?: number } = {}) {
  const inner = generatedSource(size, options);
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let reached!: () => void;
  const paused = new Promise<void>((resolve) => (reached = resolve));
  const source: GeneratedSource = {
    ...inner,
    open: async (start) => {
      const stream = await inner.open(start);
      let seen = 0;
      const gate = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          seen += chunk.length;
          if (seen < pauseAt || seen - chunk.length >= pauseAt) return done(null, chunk);
          reached();
          void released.then(() => done(null, chunk));
        },
      });
      pipeline(stream, gate, () => undefined);
      return gate;
    },
  };
  return { source, paused, release };
}

/** FTP and SFTP share the temporary-name-then-rename design: the same cases for both. */
function fileDriverCases(label: string, target: () => UploadTarget<DestinationType.Ftp> | UploadTarget<DestinationType.Sftp>, destination: (name: string) => FtpDestination | SftpDestination, server: () => FtpTestServer | SftpTestServer) {
  const upload = (name: string, source: UploadSource, ctx = testContext()) => (target() as UploadTarget).upload(destination(name) as never, source, ctx);

  describe(`${label}: a temporary name, then a rename`, () => {
    it('makes missing nested directories and replaces an earlier upload of the same name', async () => {
      const name = `deep/er/${freshName('bin')}`;
      const first = generatedSource(300 * KiB);
      const result = await upload(name, first);
      expect(result.url).toBe(`${label.toLowerCase()}://127.0.0.1:${server().port}/${name}`);
      expect(sha256((await server().read(name))!)).toBe(first.sha256);
      const second = generatedSource(200 * KiB);
      await upload(name, second);
      const stored = await server().read(name);
      expect(stored?.length).toBe(second.size);
      expect(sha256(stored!)).toBe(second.sha256);
      expect((await server().files()).filter((f) => f.startsWith('deep/er/'))).toEqual([name]);
    });

    it('mid-way only a hidden .part file exists; after the stream fails neither it nor the final name does', async () => {
      const name = `atomic/${freshName('bin')}`;
      const before = await server().files();
      const { source, paused, release } = pausingSource(4 * MiB, MiB, { failAfter: 2 * MiB });
      const attempt = failure(upload(name, source));
      await paused;
      const during = (await server().files()).filter((f) => !before.includes(f));
      expect(during).toHaveLength(1);
      expect(during[0]).toMatch(new RegExp(`^atomic/\\.${name.slice('atomic/'.length).replace(/\./g, '\\.')}\\.[0-9a-f]{12}\\.part$`));
      expect(await server().read(name)).toBeUndefined();
      release();
      const err = await attempt;
      expect(err).not.toBeInstanceOf(UploadRefused);
      expect(err.message).toContain('could not be read');
      expect(await server().read(name)).toBeUndefined();
      expect(await server().files()).toEqual(before);
    });

    it('refuses a host name that resolves to loopback when private addresses are not allowed', async () => {
      const source = generatedSource(1024);
      const err = await failure((target() as UploadTarget).upload({ ...destination(freshName()), host: 'localhost' } as never, source, testContext({ allowPrivateAddresses: false })));
      expect(err).toBeInstanceOf(UploadRefused);
      expect(err.message).toMatch(/^localhost resolves to a private, loopback or link-local address/);
      expect(source.opens).toEqual([]);
    });

    it('an abort mid-way stops the attempt and leaves nothing behind', async () => {
      const name = `aborted/${freshName('bin')}`;
      const before = await server().files();
      const { source, paused, release } = pausingSource(4 * MiB, MiB);
      const ctx = testContext();
      const attempt = failure(upload(name, source, ctx));
      await paused;
      ctx.controller.abort();
      release();
      const err = await attempt;
      expect(err.message).toBe('the upload was aborted');
      expect(await server().files()).toEqual(before);
    });
  });
}

fileDriverCases('FTP', () => new FtpUploadTarget(), ftpDestination, () => ftp);
fileDriverCases('SFTP', () => new SftpUploadTarget(), sftpDestination, () => sftp);

describe('FTP driver', () => {
  it('keeps the password out of the refusal', async () => {
    const err = await failure(new FtpUploadTarget().upload({ ...ftpDestination(freshName()), password: 'Sekr1t-pass' }, generatedSource(1024), testContext()));
    expect(err).toBeInstanceOf(UploadRefused);
    expect(err.message).toContain('530');
    expect(err.message).not.toContain('Sekr1t-pass');
  });
});

describe('SFTP driver', () => {
  it('refuses a server whose host key does not match host_fingerprint, before sending anything', async () => {
    const name = freshName('bin');
    const source = generatedSource(1024);
    const wrong = Buffer.alloc(32, 7).toString('base64').replace(/=+$/, '');
    const err = await failure(new SftpUploadTarget().upload({ ...sftpDestination(name), host_fingerprint: `SHA256:${wrong}` }, source, testContext()));
    expect(err).toBeInstanceOf(UploadRefused);
    expect(err.message).toContain(`SHA256:${sftp.hostFingerprint}`);
    expect(source.opens).toEqual([]);
    expect(await sftp.read(name)).toBeUndefined();
  });

  it('accepts the fingerprint as ssh-keygen prints it (SHA256: prefix) and without one', async () => {
    const name = freshName('bin');
    const source = generatedSource(64 * 1024);
    await new SftpUploadTarget().upload({ ...sftpDestination(name), host_fingerprint: `SHA256:${sftp.hostFingerprint}` }, source, testContext());
    const { host_fingerprint: _, ...unchecked } = sftpDestination(`${name}.2`);
    await new SftpUploadTarget().upload(unchecked, source, testContext());
    expect(sha256((await sftp.read(name))!)).toBe(source.sha256);
    expect(sha256((await sftp.read(`${name}.2`))!)).toBe(source.sha256);
  });

  it('logs in with a private key and its passphrase; a wrong passphrase is refused for good, without the passphrase in the message', async () => {
    const name = freshName('bin');
    const source = generatedSource(128 * KiB);
    const { password: _password, ...withKey } = { ...sftpDestination(name), private_key: sftp.clientPrivateKey, passphrase: sftp.clientKeyPassphrase };
    await new SftpUploadTarget().upload(withKey, source, testContext());
    expect(sha256((await sftp.read(name))!)).toBe(source.sha256);

    const wrong = await failure(new SftpUploadTarget().upload({ ...withKey, filename: `${name}.2`, passphrase: 'Sekr1t-phrase' }, source, testContext()));
    expect(wrong).toBeInstanceOf(UploadRefused);
    expect(wrong.message).not.toContain('Sekr1t-phrase');
    expect(await sftp.read(`${name}.2`)).toBeUndefined();
  });

  it('keeps the password out of the refusal and closes its connections', async () => {
    const err = await failure(new SftpUploadTarget().upload({ ...sftpDestination(freshName()), password: 'Sekr1t-pass' }, generatedSource(1024), testContext()));
    expect(err).toBeInstanceOf(UploadRefused);
    expect(err.message).not.toContain('Sekr1t-pass');
    await waitFor(() => sftp.connections() === 0);
  });
});

describe('YouTube driver', () => {
  it('sends the snippet, the status, the size and the type, and answers with the video id and its watch URL', async () => {
    const title = freshName();
    const source = generatedSource(300 * KiB, { contentType: 'video/mp4' });
    const result = await youtube().upload(youtubeDestination(title), source, testContext());
    const video = yt.videoByTitle(title)!;
    expect(result).toEqual({ id: video.id, url: `https://www.youtube.com/watch?v=${video.id}` });
    expect(video.snippet).toEqual({ title, description: 'Rendered by Montage', tags: ['montage', 'test'], categoryId: '22' });
    expect(video.status).toEqual({ privacyStatus: 'unlisted', madeForKids: false });
    expect(video.contentType).toBe('video/mp4');
    expect(sha256(video.bytes)).toBe(source.sha256);
  });

  it('a chunk failing with 503: the attempt fails to be retried; the next continues the saved session from its Range, then a later one finds the video', async () => {
    const title = freshName();
    const chunk = 256 * KiB;
    const source = generatedSource(12 * chunk + 1000);
    const sessions = yt.sessionsStarted();
    const videos = yt.videos.length;
    const received = yt.bytesReceived();
    const ctx = testContext();

    yt.failChunk(503, 4); // chunks 0–3 are kept, the fifth fails
    const err = await failure(youtube(chunk).upload(youtubeDestination(title), source, ctx));
    expect(err).not.toBeInstanceOf(UploadRefused);
    expect(err.message).toContain('503');
    expect(err.message).not.toContain('upload_id'); // the session URI is a credential
    expect(typeof ctx.saved?.session).toBe('string');
    expect(yt.videos.length).toBe(videos);

    const result = await youtube(chunk).upload(youtubeDestination(title), source, ctx);
    expect(source.opens).toEqual([0, 4 * chunk]); // asked the session, went on from its Range
    expect(yt.sessionsStarted()).toBe(sessions + 1);
    expect(yt.videos.length).toBe(videos + 1);
    // Everything once, plus the one chunk the 503 threw away: not twice the video.
    expect(yt.bytesReceived() - received).toBe(source.size + chunk);
    expect(sha256(yt.videoByTitle(title)!.bytes)).toBe(source.sha256);
    expect(ctx.progress[ctx.progress.length - 1]).toBe(source.size);

    // A third attempt (the worker died before recording the result): the same video, nothing sent.
    const again = await youtube(chunk).upload(youtubeDestination(title), source, ctx);
    expect(again).toEqual(result);
    expect(yt.videos.length).toBe(videos + 1);
    expect(source.opens).toEqual([0, 4 * chunk]);
    expect(yt.sessionsStarted()).toBe(sessions + 1);
  });

  it('a connection cut mid-chunk: the retry resends only what the server did not keep', async () => {
    const title = freshName();
    const chunk = 1024 * KiB;
    const source = generatedSource(3 * chunk + 777);
    const received = yt.bytesReceived();
    const ctx = testContext();
    yt.dropChunk(600 * KiB, 1); // the second chunk is cut after 600 KiB: 512 KiB (two blocks) kept
    const err = await failure(youtube(chunk).upload(youtubeDestination(title), source, ctx));
    expect(err).not.toBeInstanceOf(UploadRefused);
    await youtube(chunk).upload(youtubeDestination(title), source, ctx);
    expect(source.opens).toEqual([0, chunk + 512 * KiB]);
    expect(sha256(yt.videoByTitle(title)!.bytes)).toBe(source.sha256);
    expect(yt.bytesReceived() - received).toBe(source.size + (600 - 512) * KiB);
  });

  it('an expired session (404) is replaced by a new one, and still one video is made', async () => {
    const title = freshName();
    const chunk = 256 * KiB;
    const source = generatedSource(3 * chunk);
    const ctx = testContext();
    yt.failChunk(500, 1);
    await failure(youtube(chunk).upload(youtubeDestination(title), source, ctx));
    const first = ctx.saved?.session;
    yt.expireSessions();
    const videos = yt.videos.length;
    await youtube(chunk).upload(youtubeDestination(title), source, ctx);
    expect(ctx.saved?.session).not.toBe(first);
    expect(source.opens).toEqual([0, 0]);
    expect(yt.videos.length).toBe(videos + 1);
    expect(sha256(yt.videoByTitle(title)!.bytes)).toBe(source.sha256);
  });

  it('refuses for good a wrong OAuth client or a rejected insert, without secrets in the message and before reading the output', async () => {
    const source = generatedSource(64 * KiB);
    const wrongClient = await failure(youtube().upload({ ...youtubeDestination(freshName()), client_secret: 'Sekr1t-client' }, source, testContext()));
    expect(wrongClient).toBeInstanceOf(UploadRefused);
    expect(wrongClient.message).toMatch(/HTTP 401 invalid_client/);
    expect(wrongClient.message).not.toMatch(/Sekr1t-client|refresh-|\n\s+at /);

    // A name that resolves to loopback is judged at connection time, through google-auth-library's transport too.
    const tokens = yt.tokensIssued();
    const byName = new YouTubeUploadTarget({ youtubeApiUrl: yt.apiUrl.replace('127.0.0.1', 'localhost'), youtubeOauthUrl: yt.oauthUrl.replace('127.0.0.1', 'localhost') });
    const privateName = await failure(byName.upload(youtubeDestination(freshName()), source, testContext({ allowPrivateAddresses: false })));
    expect(privateName).toBeInstanceOf(UploadRefused);
    expect(privateName.message).toMatch(/^localhost resolves to a private, loopback or link-local address/);
    expect(yt.tokensIssued()).toBe(tokens);

    const noTitle = await failure(youtube().upload({ ...youtubeDestination(''), snippet: { title: '' } }, source, testContext()));
    expect(noTitle).toBeInstanceOf(UploadRefused);
    expect(noTitle.message).toContain('HTTP 400');
    expect(source.opens).toEqual([]);
  });

  it('stops when aborted mid-upload, and no video is made', async () => {
    const title = freshName();
    const chunk = 256 * KiB;
    const ctx = testContext();
    const told = ctx.onProgress;
    ctx.onProgress = (bytes) => {
      told(bytes);
      ctx.controller.abort();
    };
    const err = await failure(youtube(chunk).upload(youtubeDestination(title), generatedSource(8 * chunk), ctx));
    expect(err.message).toBe('the upload was aborted');
    expect(ctx.progress).toEqual([chunk]);
    expect(yt.videoByTitle(title)).toBeUndefined();
  });
});

describe('Facebook driver', () => {
  it('publishes with the title and description, and answers with the video id and its page URL', async () => {
    const title = freshName();
    const source = generatedSource(2 * MiB + 10);
    const result = await facebook().upload(facebookDestination(title), source, testContext());
    const video = fb.videoByTitle(title)!;
    expect(result).toEqual({ id: video.id, url: `https://www.facebook.com/${fb.pageId}/videos/${video.id}` });
    expect(video).toMatchObject({ pageId: fb.pageId, title, description: 'Rendered by Montage' });
    expect(sha256(video.bytes)).toBe(source.sha256);
  });

  it('a transfer failing (transient 500): the next attempt continues the saved session at its offset, and a later one finds the video', async () => {
    const title = freshName();
    const source = generatedSource(5 * MiB + 3);
    const sessions = fb.sessionsStarted();
    const videos = fb.videos.length;
    const received = fb.bytesReceived();
    const ctx = testContext();

    fb.failTransfer(500, 2); // the first two windows are kept, the third fails
    const err = await failure(facebook().upload(facebookDestination(title), source, ctx));
    expect(err).not.toBeInstanceOf(UploadRefused);
    expect(err.message).toContain('HTTP 500');
    expect(err.message).not.toContain(fb.pageToken);
    expect(ctx.saved).toMatchObject({ session: expect.any(String), video_id: expect.any(String), start_offset: 2 * MiB, end_offset: 3 * MiB });
    expect(fb.videos.length).toBe(videos);

    const result = await facebook().upload(facebookDestination(title), source, ctx);
    expect(source.opens).toEqual([0, 2 * MiB]);
    expect(fb.sessionsStarted()).toBe(sessions + 1);
    expect(fb.videos.length).toBe(videos + 1);
    expect(fb.bytesReceived() - received).toBe(source.size + MiB); // the failed window once more, nothing else
    expect(sha256(fb.videoByTitle(title)!.bytes)).toBe(source.sha256);
    expect(ctx.progress[ctx.progress.length - 1]).toBe(source.size);

    const again = await facebook().upload(facebookDestination(title), source, ctx);
    expect(again).toEqual(result);
    expect(fb.videos.length).toBe(videos + 1);
    expect(source.opens).toEqual([0, 2 * MiB]);
  });

  it('a transfer the server kept but whose answer was lost: the retry is told the right offset (1363037) and goes on from there', async () => {
    const title = freshName();
    const source = generatedSource(4 * MiB + 99);
    const received = fb.bytesReceived();
    const ctx = testContext();
    fb.keepThenDrop(1); // the second window is kept, its answer never comes
    const err = await failure(facebook().upload(facebookDestination(title), source, ctx));
    expect(err).not.toBeInstanceOf(UploadRefused);
    expect(ctx.saved).toMatchObject({ start_offset: MiB });

    const videos = fb.videos.length;
    await facebook().upload(facebookDestination(title), source, ctx);
    expect(source.opens).toEqual([0, MiB, 2 * MiB]); // the stale window, then where the server stands
    expect(fb.videos.length).toBe(videos + 1);
    expect(fb.bytesReceived() - received).toBe(source.size + MiB); // only the stale window went twice
    expect(sha256(fb.videoByTitle(title)!.bytes)).toBe(source.sha256);
  });

  it('a connection cut mid-transfer: the retry sends that window again and nothing before it', async () => {
    const title = freshName();
    const source = generatedSource(3 * MiB + 5);
    const ctx = testContext();
    fb.dropTransfer(300 * KiB, 1);
    await failure(facebook().upload(facebookDestination(title), source, ctx));
    await facebook().upload(facebookDestination(title), source, ctx);
    expect(source.opens).toEqual([0, MiB]);
    expect(sha256(fb.videoByTitle(title)!.bytes)).toBe(source.sha256);
  });

  it('a session that timed out (1363030) is replaced by a new one, and one video is published', async () => {
    const title = freshName();
    const source = generatedSource(2 * MiB + 1);
    const ctx = testContext();
    fb.failTransfer(503, 1);
    await failure(facebook().upload(facebookDestination(title), source, ctx));
    const first = ctx.saved?.session;
    fb.expireSessions();
    const videos = fb.videos.length;
    await facebook().upload(facebookDestination(title), source, ctx);
    expect(ctx.saved?.session).not.toBe(first);
    expect(source.opens).toEqual([0, MiB, 0]);
    expect(fb.videos.length).toBe(videos + 1);
    expect(sha256(fb.videoByTitle(title)!.bytes)).toBe(source.sha256);
  });

  it('refuses for good a wrong page token (190) or an unknown page, without the token in the message and before reading the output', async () => {
    const source = generatedSource(64 * KiB);
    const badToken = await failure(facebook().upload({ ...facebookDestination(freshName()), page_token: 'EAABSekr1t' }, source, testContext()));
    expect(badToken).toBeInstanceOf(UploadRefused);
    expect(badToken.message).toMatch(/OAuthException 190/);
    expect(badToken.message).not.toMatch(/EAABSekr1t|\n\s+at /);
    const badPage = await failure(facebook().upload({ ...facebookDestination(freshName()), page_id: '42' }, source, testContext()));
    expect(badPage).toBeInstanceOf(UploadRefused);
    expect(badPage.message).toContain("'42' does not exist");
    const sessions = fb.sessionsStarted();
    const byName = new FacebookUploadTarget({ facebookGraphUrl: fb.graphUrl.replace('127.0.0.1', 'localhost') });
    const privateName = await failure(byName.upload(facebookDestination(freshName()), source, testContext({ allowPrivateAddresses: false })));
    expect(privateName).toBeInstanceOf(UploadRefused);
    expect(privateName.message).toMatch(/^localhost resolves to a private, loopback or link-local address/);
    expect(fb.sessionsStarted()).toBe(sessions);
    expect(source.opens).toEqual([]);
  });
});

describe('test servers', () => {
  it('leave nothing listening once stopped', async () => {
    const [f, s, y, b] = await Promise.all([startFtpServer(), startSftpServer(), startYouTubeServer(), startFacebookServer()]);
    await new FtpUploadTarget().upload({ ...ftpDestination('x.bin'), port: f.port, password: f.password }, generatedSource(1024), testContext());
    const ports = [f.port, s.port, Number(new URL(y.apiUrl).port), Number(new URL(b.graphUrl).port)];
    for (const port of ports) expect(await listening(port)).toBe(true);
    await Promise.all([f.stop(), s.stop(), y.stop(), b.stop()]);
    for (const port of ports) expect(await listening(port)).toBe(false);
  });
});

async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
