/**
 * `npm run studio-screenshots`: the README's pictures of the studio (docs/studio-*.png), taken in
 * headless Chromium against an in-process API over templates/ (demo/welcome and slideshow), and
 * written as palette PNGs to keep them small.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { loadConfig } from '../src/config/config';
import { createApp } from '../src/main';
import { launchChromium } from './browser';

const root = path.resolve(__dirname, '..', '..');

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-shots-'));
  const config = loadConfig({ ...process.env, MONTAGE_TEMPLATES_DIR: path.join(root, 'templates'), MONTAGE_DATA_DIR: dataDir });
  const app = await createApp(config, ['error']);
  await app.listen(0, '127.0.0.1');
  const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  const browser = await launchChromium();
  const shoot = async (name: string, clip?: { x: number; y: number; width: number; height: number }) => {
    const png = await page.screenshot({ clip, fullPage: !!clip });
    const file = path.join(root, 'docs', `studio-${name}.png`);
    await sharp(png).png({ palette: true, quality: 90, compressionLevel: 9 }).toFile(file);
    process.stdout.write(`wrote ${path.relative(process.cwd(), file)}\n`);
  };
  const waitPreview = (not: string) =>
    page.waitForFunction((old) => {
      const img = (globalThis as unknown as { document: { getElementById(id: string): { dataset: Record<string, string>; complete: boolean } } }).document.getElementById('preview');
      return !!img.dataset.token && img.dataset.token !== old && img.complete;
    }, not, { timeout: 120_000 });
  const page = await browser.newPage({ viewport: { width: 1360, height: 860 } });
  try {
    await page.goto(`${base}/studio#movie=welcome`);
    await page.fill('#project', 'demo');
    await page.fill('#key', fs.readFileSync(path.join(dataDir, 'demo-api-key'), 'utf8').trim());
    await page.click('#signin-button');
    await page.waitForSelector('#params-form[data-movie="welcome"] [name="name"]');
    await page.fill('[name="name"]', 'Ada Lovelace');
    await waitPreview('');
    await page.waitForSelector('#timeline .seg.layer');
    await page.waitForFunction(() => true, undefined, { timeout: 1000 }).catch(() => undefined);
    await shoot('welcome');
    await page.fill('[name="brand"]', 'teal');
    await page.waitForSelector('[data-error-for="brand"]:not(:empty)');
    await shoot('error', { x: 0, y: 0, width: 1360, height: 560 });
    await page.fill('[name="brand"]', '#1e90ff');
    await page.locator('#embed-heading').scrollIntoViewIfNeeded();
    await page.waitForFunction(() => true, undefined, { timeout: 500 }).catch(() => undefined);
    const embed = await page.locator('.embed').boundingBox();
    if (embed) await shoot('embed', { x: embed.x - 8, y: embed.y - 8, width: embed.width + 16, height: embed.height + 16 });
  } finally {
    await browser.close();
    await app.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
