import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { MontageError } from '../../src/common/errors';
import { loadConfig } from '../../src/config/config';
import type { ConnectionsService } from '../../src/connections/connections.service';
import { JobName, UPLOAD_QUEUE } from '../../src/jobs/job.types';
import { NedbDocumentStore } from '../../src/repositories/document-store/nedb';
import type { JobQueueRepository } from '../../src/repositories/job-queue/job-queue.repository';
import { DestinationType } from '../../src/repositories/upload-target/port';
import { parseSecretKey, SecretBox } from '../../src/secrets/secret-box';
import { parseRenderRequest } from '../../src/tokens/render-request';
import { applyOverrides, describeDestination, destinationSchema, remoteNameProblem } from '../../src/uploads/destinations';
import { UploadTasksService } from '../../src/uploads/upload-tasks.service';
import type { SealedTask } from '../../src/uploads/upload.types';

const s3 = { type: 's3', bucket: 'videos', filename: 'out/{{name}}.mp4', aws_access_key_id: 'AKIAEXAMPLE', aws_secret_access_key: 'shh-secret' };

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));
  it('seals so that nothing of the plain text shows, and opens it again', () => {
    const sealed = box.sealJson({ aws_secret_access_key: 'shh-secret' });
    expect(sealed).toMatch(/^enc:v1:/);
    expect(sealed).not.toContain('shh');
    expect(box.openJson(sealed)).toEqual({ aws_secret_access_key: 'shh-secret' });
    expect(box.seal('x')).not.toBe(box.seal('x')); // a fresh IV each time
  });
  it('refuses a tampered value and one sealed with another key, saying which', () => {
    const sealed = box.seal('secret');
    const tampered = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BB' : 'AA');
    expect(() => box.open(tampered)).toThrow();
    const other = new SecretBox(randomBytes(32));
    expect(() => other.open(sealed)).toThrow(/sealed with another secret key/);
  });
  it('reads MONTAGE_SECRET_KEY as hex or base64, and refuses other lengths', () => {
    const key = randomBytes(32);
    expect(parseSecretKey(key.toString('hex'))).toEqual(key);
    expect(parseSecretKey(key.toString('base64'))).toEqual(key);
    expect(parseSecretKey(key.toString('base64url'))).toEqual(key);
    expect(() => parseSecretKey('c2hvcnQ=')).toThrow(/32 bytes/);
  });
});

describe('destinations', () => {
  it("accepts Impossible's S3 task fields and names what is wrong", () => {
    expect(destinationSchema.safeParse({ ...s3, acl: 'public-read', reduced_redundancy: true, metadata: { campaign: 'x' } }).success).toBe(true);
    const bad = destinationSchema.safeParse({ ...s3, bucket: 'Bad_Bucket', acl: 'everyone', extra: 1 });
    expect(bad.success).toBe(false);
    const fields = bad.error!.issues.map((i) => i.path.join('.') || i.message);
    expect(fields).toEqual(expect.arrayContaining(['bucket', 'acl']));
    expect(destinationSchema.safeParse({ type: 'gopher' }).success).toBe(false);
    expect(destinationSchema.safeParse({ type: 'sftp', host: 'h', username: 'u', filename: 'a' }).error!.issues[0]).toMatchObject({ path: ['password'] });
  });

  it('refuses control characters, NUL and user:password@ URLs', () => {
    expect(destinationSchema.safeParse({ ...s3, filename: 'a\u0000b' }).success).toBe(false);
    expect(destinationSchema.safeParse({ type: 'http', url: 'https://user:pw@example.com/x' }).success).toBe(false);
    expect(destinationSchema.safeParse({ type: 'http', url: 'file:///etc/passwd' }).success).toBe(false);
    expect(destinationSchema.safeParse({ type: 'http', url: 'https://example.com/x', headers: { 'Bad Header': 'x' } }).success).toBe(false);
  });

  it('describes a destination without keys, passwords or query strings', () => {
    const described = [
      describeDestination({ ...s3, filename: 'a.mp4' } as never),
      describeDestination({ type: DestinationType.Http, method: 'PUT', url: 'https://up.example.com/v?X-Amz-Signature=abc', headers: { authorization: 'Bearer t' } }),
      describeDestination({ type: DestinationType.Azure, sas_url: 'https://acct.blob.core.windows.net/c?sv=1&sig=SIG', filename: 'b.mp4' }),
      describeDestination({ type: DestinationType.Ftp, host: 'ftp.example.com', user: 'u', password: 'pw', filename: '/x/y.mp4' }),
    ];
    expect(described).toEqual(['s3://videos/a.mp4', 'PUT https://up.example.com/v', 'https://acct.blob.core.windows.net/c/b.mp4', 'ftp://ftp.example.com/x/y.mp4']);
    expect(described.join(' ')).not.toMatch(/shh|AKIA|SIG|Signature|Bearer|pw/);
  });

  it('a connection takes only descriptive fields from a task, never where or with what keys', () => {
    const base = destinationSchema.parse({ ...s3, filename: '{{token}}.{{extension}}' });
    expect(applyOverrides(base, { connection: 'c', filename: 'x.mp4', acl: 'private' }).destination).toMatchObject({ filename: 'x.mp4', acl: 'private', bucket: 'videos' });
    const hostile = applyOverrides(base, { connection: 'c', s3host: 'evil.example.com', aws_access_key_id: 'mine' });
    expect(hostile.destination).toBeUndefined();
    expect(hostile.problems.map((p) => p.field)).toEqual(['s3host', 'aws_access_key_id']);
  });

  it('remote names: no leading /, no . or .. segments, no control characters', () => {
    expect(remoteNameProblem('videos/2026/a.mp4')).toBeUndefined();
    for (const bad of ['/etc/passwd', '../x.mp4', 'a/../../b', 'a//b', './a', '', 'a\nb']) expect(remoteNameProblem(bad)).toBeDefined();
  });
});

describe('render request upload field', () => {
  it('takes one task or a list, with defaults, and names the field of a bad one', () => {
    const one = parseRenderRequest({ movie: 'badge', upload: { destination: s3 } });
    expect(one.upload).toEqual([{ extension: 'mp4', async: false, destination: s3 }]);
    expect(parseRenderRequest({ movie: 'badge', upload: [{ destination: s3 }, { extension: 'webm', async: true, destination: { connection: 'x' } }] }).upload).toHaveLength(2);
    let error: MontageError | undefined;
    try {
      parseRenderRequest({ movie: 'badge', upload: [{ destination: s3 }, { destination: { ...s3, bucket: 'Nope!' }, onsuccess: 'ftp://x' }] });
    } catch (err) {
      error = err as MontageError;
    }
    expect(error?.kind).toBe('bad_input');
    expect(error!.details.map((d) => d.field)).toEqual(expect.arrayContaining(['upload.1.destination.bucket', 'upload.1.onsuccess']));
    expect(() => parseRenderRequest({ movie: 'badge', upload: Array.from({ length: 11 }, () => ({ destination: s3 })) })).toThrow(/at most 10/);
    expect(() => parseRenderRequest({ movie: 'badge', metadata: { big: 'x'.repeat(9000) } })).toThrow(/8192/);
  });
});

describe('UploadTasksService', () => {
  const dirs: string[] = [];
  const stores: NedbDocumentStore[] = [];
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  function service(env: Record<string, string> = {}) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'upload-tasks-'));
    dirs.push(dir);
    const store = new NedbDocumentStore(dir);
    stores.push(store);
    const box = new SecretBox(randomBytes(32));
    const queue = { enqueue: jest.fn(async () => undefined) };
    const saved = { 'ftp-main': { type: 'ftp', host: 'ftp.example.com', user: 'u', password: 'ftp-password', filename: 'drop/{{token}}.{{extension}}' } };
    const connections = {
      open: jest.fn(async (_p: string, name: string) => {
        const found = (saved as Record<string, unknown>)[name];
        if (!found) throw new MontageError('not_found', `project t has no connection "${name}"`);
        return found;
      }),
    };
    const config = loadConfig({ MONTAGE_DATA_DIR: dir, ...env });
    const tasks = new UploadTasksService(store, config, queue as unknown as JobQueueRepository, box, connections as unknown as ConnectionsService);
    return { tasks, queue, box, store };
  }
  const tasksOf = (upload: unknown) => parseRenderRequest({ movie: 'badge', upload }).upload;

  it('renders filenames with the params, seals everything that could be a credential, and starts only async tasks', async () => {
    const { tasks, queue, box } = service();
    const docs = await tasks.prepare('t', 'TOKEN', tasksOf([{ destination: s3 }, { async: true, onerror: 'https://hooks.example.com/e?k=1', destination: { ...s3, filename: '{{upper name}}/{{token}}.{{extension}}' } }]), { name: 'ada' }, ['mp4', 'webm']);
    expect(docs.map((d) => d.summary)).toEqual(['s3://videos/out/ada.mp4', 's3://videos/ADA/TOKEN.mp4']);
    expect(docs.map((d) => [d.status, d.async, d.type, d.extension])).toEqual([
      ['pending', false, 's3', 'mp4'],
      ['pending', true, 's3', 'mp4'],
    ]);
    expect(JSON.stringify(docs)).not.toMatch(/shh-secret|AKIAEXAMPLE|hooks\.example/);
    expect(box.openJson<SealedTask>(docs[1].sealed)).toMatchObject({ destination: { aws_secret_access_key: 'shh-secret', filename: 'ADA/TOKEN.mp4' }, onerror: 'https://hooks.example.com/e?k=1' });
    await tasks.save(docs);
    await tasks.startAsync(docs);
    expect(queue.enqueue).toHaveBeenCalledTimes(1);
    expect(queue.enqueue).toHaveBeenCalledWith(UPLOAD_QUEUE, JobName.Upload, { upload: docs[1]._id }, docs[1]._id, { attempts: 5, backoffMs: 5000 });
    expect((await tasks.views('TOKEN')).map((v) => v.status)).toEqual(['pending', 'queued']);
    // The first GET of the mp4 starts the sync one; asking again queues nothing more.
    await tasks.outputRequested('TOKEN', 'mp4');
    await tasks.outputRequested('TOKEN', 'mp4');
    expect(queue.enqueue).toHaveBeenCalledTimes(2);
    expect((await tasks.views('TOKEN')).map((v) => v.status)).toEqual(['queued', 'queued']);
  });

  it('refuses, naming the field: an uncovered extension, ../ after rendering, a private literal host, an unknown connection, overrides of where', async () => {
    const { tasks } = service();
    await expect(
      tasks.prepare(
        't',
        'TOKEN',
        tasksOf([
          { extension: 'gif', destination: s3 },
          { destination: { ...s3, filename: '{{name}}/x.mp4' } },
          { destination: { type: 'http', url: 'http://169.254.169.254/latest' } },
          { destination: { type: 'ftp', host: '[::ffff:127.0.0.1]', user: 'u', password: 'p', filename: 'a' } },
          { destination: { connection: 'nope' } },
          { destination: { connection: 'ftp-main', host: 'evil.example.com' } },
        ]),
        { name: '..' },
        ['mp4'],
      ),
    ).rejects.toMatchObject({
      kind: 'bad_input',
      details: [
        { field: 'upload.0.extension', message: expect.stringContaining('no .gif output') },
        { field: 'upload.1.destination.filename', message: expect.stringContaining('..') },
        { field: 'upload.2.destination.url', message: expect.stringContaining('private') },
        { field: 'upload.3.destination.host', message: expect.stringContaining('private') },
        { field: 'upload.4.destination.connection', message: expect.stringContaining('no connection "nope"') },
        { field: 'upload.5.destination.host', message: expect.stringContaining('cannot be set over a ftp connection') },
      ],
    });
  });

  it('a task by connection keeps the name and its own fields sealed, and shows where without the password', async () => {
    const { tasks, box } = service();
    const [doc] = await tasks.prepare('t', 'TOKEN', tasksOf({ destination: { connection: 'ftp-main' } }), {}, ['mp4']);
    expect(doc.summary).toBe('ftp://ftp.example.com/drop/TOKEN.mp4');
    expect(box.openJson<SealedTask>(doc.sealed)).toEqual({ connection: 'ftp-main', overrides: { filename: 'drop/TOKEN.mp4' } });
  });

  it('private hosts pass when DELIVERY_ALLOW_PRIVATE is set (tests, intranets)', async () => {
    const { tasks } = service({ DELIVERY_ALLOW_PRIVATE: '1' });
    const docs = await tasks.prepare('t', 'TOKEN', tasksOf({ destination: { type: 'http', url: 'http://127.0.0.1:9/up' } }), {}, ['mp4']);
    expect(docs[0].summary).toBe('PUT http://127.0.0.1:9/up');
  });
});
