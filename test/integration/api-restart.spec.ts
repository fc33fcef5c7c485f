import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import request from 'supertest';
import { startApi } from '../helpers/api-app';
import sharp from 'sharp';
import { probe } from '../helpers/media';

// A restart loses nothing: tokens, render states and stored outputs survive, and a render cut
// off by the restart runs again on the next GET instead of being served half-written.
it('tokens and outputs survive a restart; an interrupted render is re-run', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-restart-'));
  const first = await startApi({ dataDir });
  const auth = { Authorization: `Bearer ${first.key}` };
  const done = await request(first.url).post('/v2/render/t').set(auth).send({ movie: 'colors', params: { label: 'kept' } }).expect(200);
  await request(first.url).get(`/v2/render/${done.body.token}.mp4`).expect(200);
  const waiting = await request(first.url).post('/v2/token/t').set(auth).send({ movie: 'colors' }).expect(200);
  const cut = await request(first.url).post('/v2/render/t').set(auth).send({ movie: 'slow' }).expect(200);

  // Start a render and stop the service in the middle of it.
  const controller = new AbortController();
  const streaming = fetch(`${first.url}/v2/get/${cut.body.token}.webm`, { signal: controller.signal }).catch(() => undefined);
  for (let i = 0; i < 200; i++) {
    if ((await request(first.url).get(`/v2/progress/${cut.body.token}`)).body.status === 'rendering') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  controller.abort();
  await streaming;
  await first.close();

  const second = await startApi({ dataDir });
  try {
    expect(second.key).toBe(first.key); // same project, same key
    const stored = await request(second.url).get(`/v2/get/${done.body.token}.mp4`).buffer(true).expect(200);
    expect(stored.headers['x-montage-status']).toBe('done');
    expect(second.renders.counters.started).toBe(0);
    expect((await request(second.url).get(`/v2/progress/${waiting.body.token}`)).body.status).toBe('pending');

    // Its job went back to the queue when the first process stopped: the second one's node takes it up.
    const interrupted = (await request(second.url).get(`/v2/progress/${cut.body.token}`)).body;
    expect(['queued', 'rendering']).toContain(interrupted.status);
    const file = path.join(dataDir, 'again.webm');
    const res = await fetch(`${second.url}/v2/get/${cut.body.token}.webm`);
    fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    expect((await probe(file)).video?.nb_read_frames).toBe('240');
    expect(second.renders.counters.started).toBe(0); // the same run went on: no second claim
  } finally {
    await second.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

it('editing a template changes its version: the same token renders anew', async () => {
  const templates = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-edit-'));
  fs.cpSync(path.join(__dirname, '..', 'fixtures', 'templates', 't', 'colors'), path.join(templates, 't', 'colors'), { recursive: true });
  const api = await startApi({ env: { MONTAGE_TEMPLATES_DIR: templates } });
  try {
    const created = await request(api.url).post('/v2/render/t').set({ 'X-Api-Key': api.key }).send({ movie: 'colors' }).expect(200);
    const pixel = async () => {
      const res = await request(api.url).get(`/v2/get/${created.body.token}.png?frame=45`).buffer(true).expect(200);
      const { data, info } = await sharp(res.body as Buffer).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      return [...data.subarray((45 * info.width + 240) * 3, (45 * info.width + 240) * 3 + 3)];
    };
    expect((await pixel())[1]).toBeGreaterThan(200); // the green box
    await pixel();
    expect(api.renders.counters.started).toBe(1); // the second GET is the stored file

    const file = path.join(templates, 't', 'colors', 'movie.yaml');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('default: "#00ff00"', 'default: "#0000ff"'));
    const [r, g, b] = await pixel();
    expect(api.renders.counters.started).toBe(2);
    expect(b).toBeGreaterThan(200);
    expect(r + g).toBeLessThan(80);
  } finally {
    await api.close();
    fs.rmSync(templates, { recursive: true, force: true });
  }
});
