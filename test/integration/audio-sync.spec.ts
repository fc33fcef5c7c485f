import * as fs from 'node:fs';
import * as path from 'node:path';
import request from 'supertest';
import { type ApiApp, startApi } from '../helpers/api-app';
import { expectSoundMatchesPicture, streamSpans } from '../helpers/media';
import { until } from '../helpers/wait';

// Sound and picture of what the API serves while rendering and what it stores: same length,
// both from 0. `motion` is 2.3 s with a music track; `colors` (2 s) has no track: its silence too.
let api: ApiApp;
beforeAll(async () => {
  api = await startApi();
});
afterAll(async () => {
  await api.close();
});

const post = (body: object) => request(api.url).post('/v2/render/t').set('Authorization', `Bearer ${api.key}`).send(body).expect(200);

async function servedAndStored(movie: string, format: 'mp4' | 'webm'): Promise<{ served: string; stored: string; seconds: number }> {
  const { token } = (await post({ movie, params: movie === 'colors' ? { label: `sync ${format}` } : {} })).body;
  const served = path.join(api.dataDir, `${movie}-served.${format}`);
  const res = await fetch(`${api.url}/v2/get/${token}.${format}`);
  expect(res.status).toBe(200);
  fs.writeFileSync(served, Buffer.from(await res.arrayBuffer()));
  await until('stored', async () => ((await request(api.url).get(`/v2/progress/${token}`)).body.formats?.[format]?.status === 'done' ? true : undefined));
  const again = await request(api.url).get(`/v2/get/${token}.${format}`).buffer(true).expect(200);
  expect(again.headers['x-montage-status']).toBe('done');
  const stored = path.join(api.dataDir, `${movie}-stored.${format}`);
  fs.writeFileSync(stored, again.body);
  return { served, stored, seconds: movie === 'colors' ? 2 : 2.3 };
}

it.each(['motion', 'colors'])('mp4 of %s: served and stored, the sound ends with the picture (one AAC frame) and both start at 0', async (movie) => {
  const { served, stored, seconds } = await servedAndStored(movie, 'mp4');
  for (const file of [served, stored]) {
    const spans = await streamSpans(file);
    expectSoundMatchesPicture(spans);
    expect(spans.video.end).toBeCloseTo(seconds, 3);
  }
});

it('webm: served and stored, the sound ends with the picture and both start within Opus\'s pre-skip of 0', async () => {
  const { served, stored, seconds } = await servedAndStored('motion', 'webm');
  for (const file of [served, stored]) {
    const spans = await streamSpans(file);
    // ffmpeg 5.1's WebM muxer moves every stream by Opus's 6.5 ms pre-skip (CodecDelay), on each remux again.
    expectSoundMatchesPicture(spans, 0.015);
    expect(spans.video.end).toBeCloseTo(seconds, 1);
  }
});
