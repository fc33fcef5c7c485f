import type { NestExpressApplication } from '@nestjs/platform-express';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../src/config/config';
import { createApp } from '../../src/main';
import { RenderRunner } from '../../src/renders/render-runner.service';
import { FIXTURE_TEMPLATES } from './render-context';

export interface ApiApp {
  app: NestExpressApplication;
  url: string;
  dataDir: string;
  /** The fixture project's API key, as the service wrote it on first start. */
  key: string;
  renders: RenderRunner;
  close(): Promise<void>;
}

/** The real HTTP application on a loopback port, over a data dir that survives `close()` if reused. */
export async function startApi(options: { dataDir?: string; env?: Record<string, string> } = {}): Promise<ApiApp> {
  const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'montage-api-'));
  const env = { MONTAGE_TEMPLATES_DIR: FIXTURE_TEMPLATES, MONTAGE_DATA_DIR: dataDir, MEDIA_ALLOW_PRIVATE: '0', ...options.env };
  const app = await createApp(loadConfig({ ...process.env, ...env }), ['error']);
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  return {
    app,
    url: `http://127.0.0.1:${address.port}`,
    dataDir,
    key: fs.readFileSync(path.join(dataDir, 't-api-key'), 'utf8').trim(),
    renders: app.get(RenderRunner),
    close: () => app.close(),
  };
}
