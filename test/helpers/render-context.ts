import { Test } from '@nestjs/testing';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig, type MontageConfig } from '../../src/config/config';
import { ConfigModule } from '../../src/config/config.module';
import { RenderModule } from '../../src/render/render.module';
import { RenderService } from '../../src/render/render.service';
import { TemplatesService } from '../../src/templates/templates.service';

export const FIXTURE_TEMPLATES = path.join(__dirname, '..', 'fixtures', 'templates');
export const DEMO_TEMPLATES = path.join(__dirname, '..', '..', 'templates');

/** The real renderer module (real ffmpeg, sharp, fetcher) over a fresh data dir. */
export async function renderContext(
  options: { templatesDir?: string; allowPrivate?: boolean; maxBytes?: number; env?: Record<string, string> } = {},
) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-test-'));
  const base = loadConfig({ MONTAGE_TEMPLATES_DIR: options.templatesDir ?? FIXTURE_TEMPLATES, MONTAGE_DATA_DIR: dataDir, ...options.env });
  const config: MontageConfig = { ...base, media: { ...base.media, allowPrivateAddresses: options.allowPrivate ?? false, timeoutMs: 5000, maxBytes: options.maxBytes ?? base.media.maxBytes } };
  const moduleRef = await Test.createTestingModule({ imports: [ConfigModule.forRoot(config), RenderModule] }).compile();
  return {
    config,
    dataDir,
    renders: moduleRef.get(RenderService),
    templates: moduleRef.get(TemplatesService),
    out: (name: string) => path.join(dataDir, 'out', name),
    close: async () => {
      await moduleRef.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
