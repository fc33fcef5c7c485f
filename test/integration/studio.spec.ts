import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromiumPath, launchChromium, measurePlayback } from '../helpers/browser';
import { type ApiProc, killGroup, startApiProcess } from '../helpers/processes';
import { DEMO_TEMPLATES } from '../helpers/render-context';

/**
 * The studio in real Chromium against the real API process (dist/, with its embedded render
 * node and private Redis) over a temp copy of the demo templates, so that a test can edit them.
 */
const CHROMIUM = chromiumPath();
if (!CHROMIUM) console.warn('skipped: studio tests need Chromium (apt-get install chromium, or set CHROMIUM_PATH)');
const suite = CHROMIUM ? describe : describe.skip;

suite('studio (Chromium)', () => {
  let templates: string;
  let api: ApiProc;
  let key: string;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    templates = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-studio-templates-'));
    fs.cpSync(DEMO_TEMPLATES, templates, { recursive: true });
    api = await startApiProcess({ MONTAGE_TEMPLATES_DIR: templates });
    key = fs.readFileSync(path.join(api.dataDir, 'demo-api-key'), 'utf8').trim();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    await page.goto(`${api.url}/studio`);
    await page.fill('#project', 'demo');
    await page.fill('#key', key);
    await page.click('#signin-button');
    await page.waitForSelector('#movie-list button[data-movie="welcome"]');
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (api) killGroup(api.pid);
    fs.rmSync(templates, { recursive: true, force: true });
  });

  const openMovie = async (movie: string) => {
    // The inputs of the form shown now are marked: the movie's form is the one drawn after the click (the same movie opens afresh).
    await page.evaluate(`document.querySelectorAll('#params-form [name]').forEach((i) => i.setAttribute('data-old', ''))`);
    await page.click(`#movie-list button[data-movie="${movie}"]`);
    await page.waitForSelector(`#params-form[data-movie="${movie}"] [name]:not([data-old])`);
  };
  /** Runs `body` (a function expression over the page's DOM, as text: these tests compile without the DOM types) until it returns something truthy. */
  // Polled with evaluate: waitForFunction on a string needs eval, which the page's CSP forbids (as it should).
  const waitFor = async (body: string, timeout = 90_000) => {
    const end = Date.now() + timeout;
    for (;;) {
      const value = await page.evaluate(`(${body})()`);
      if (value) return value;
      if (Date.now() > end) throw new Error(`timed out waiting for ${body}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** The preview once it shows a token other than `not`: its natural size and a 32×18 grid of its pixels. */
  const previewAfter = async (not: string | undefined) => {
    await waitFor(`() => {
      const img = document.getElementById('preview');
      return !!img.dataset.token && img.dataset.token !== ${JSON.stringify(not ?? '')} && img.complete && img.naturalWidth > 0;
    }`);
    return page.evaluate(`(() => {
      const img = document.getElementById('preview');
      const canvas = document.createElement('canvas');
      canvas.width = 32;
      canvas.height = 18;
      const g = canvas.getContext('2d');
      g.drawImage(img, 0, 0, 32, 18);
      return { token: img.dataset.token, frame: img.dataset.frame, width: img.naturalWidth, height: img.naturalHeight, pixels: Array.from(g.getImageData(0, 0, 32, 18).data) };
    })()`) as Promise<{ token: string; frame: string; width: number; height: number; pixels: number[] }>;
  };
  const errorText = (field: string) => `() => document.querySelector('[data-error-for="${field}"]')?.textContent`;
  const meanDiff = (a: number[], b: number[]) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

  it('signs in with the key (kept in sessionStorage only) and lists the demo movies', async () => {
    const names = await page.$$eval('#movie-list button', (bs) => bs.map((b) => b.getAttribute('data-movie')));
    expect(names).toEqual(['lower-third', 'promo', 'slideshow', 'title-3d', 'welcome']);
    expect(await page.evaluate('sessionStorage.getItem("montage.key")')).toBe(key);
    expect(await page.evaluate('localStorage.length + document.cookie.length')).toBe(0);
    // The page itself holds no secret: the key is only in what the user typed.
    const html = await (await fetch(`${api.url}/studio`)).text();
    expect(html).not.toContain(key);
  });

  it.each([
    ['welcome', ['name', 'company', 'photo', 'brand']],
    ['lower-third', ['clip', 'name', 'title', 'accent', 'clipVolume']],
    ['slideshow', ['title', 'slides[0].image', 'slides[0].caption', 'slides[2].caption', 'music']],
    ['promo', ['product', 'tagline', 'price', 'was', 'currency', 'photo', 'accent', 'cta', 'url', 'captions']],
    // Blender movie: the form only (its preview renders in Blender, which this test does not wait for).
    ['title-3d', ['name', 'color', 'logoColor', 'showLogo', 'samples']],
  ])('shows the form for %s, one labelled input per variable', async (movie, names) => {
    await openMovie(movie);
    for (const name of names) {
      const input = page.locator(`#params-form [name="${name}"]`);
      await expect(input.count()).resolves.toBe(1);
      const id = await input.getAttribute('id');
      await expect(page.locator(`label[for="${id}"]`).count()).resolves.toBe(1);
    }
  });

  it('renders the preview for the params and changes its pixels when a param changes', async () => {
    await openMovie('welcome');
    await page.fill('[name="name"]', 'Ada');
    const first = await previewAfter(undefined);
    expect(first).toMatchObject({ width: 1920, height: 1080, frame: 'poster' });
    await page.fill('[name="brand"]', '#00ff00');
    const second = await previewAfter(first.token);
    // The brand colour is the gradient's and the headline's: the picture changes broadly.
    expect(meanDiff(first.pixels, second.pixels)).toBeGreaterThan(3);
    // Scenes and layers from the resolved movie; a click on a bar shows that frame.
    await page.waitForSelector('#timeline .seg.layer');
    const bars = await page.$$eval('#timeline .seg.scene', (bs) => bs.map((b) => b.textContent));
    expect(bars).toEqual(['intro', 'card']);
    await page.click('#timeline .seg.scene:has-text("card")');
    await waitFor(`() => document.getElementById('preview').dataset.frame === '162'`);
  });

  it('asks for the preview at once after a quiet spell, waits out a burst of keystrokes, and previews one edit once', async () => {
    await openMovie('welcome');
    await previewAfter(undefined);
    // Token POSTs the page makes, recorded as they are sent (the page's module calls the global fetch).
    await page.evaluate(`(() => {
      window.tokenPosts = [];
      const original = window.fetch;
      window.fetch = (url, init) => {
        if (String(url).includes('/v2/token/')) window.tokenPosts.push(JSON.parse(init.body).params.name);
        return original(url, init);
      };
    })()`);
    const type = (names: string[], event = 'input') =>
      page.evaluate(`((names) => {
        const input = document.querySelector('[name="name"]');
        for (const name of names) {
          input.value = name;
          input.dispatchEvent(new Event(${JSON.stringify(event)}, { bubbles: true }));
        }
        return window.tokenPosts.slice();
      })(${JSON.stringify(names)})`) as Promise<string[]>;
    await new Promise((r) => setTimeout(r, 400)); // quiet
    // Leading edge: the first change is asked for within the event itself; the burst after it waits.
    expect(await type(['B', 'Bu', 'Bur'])).toEqual(['B']);
    await waitFor(`() => window.tokenPosts.length === 2`);
    expect(await page.evaluate('window.tokenPosts')).toEqual(['B', 'Bur']);
    // `change` after `input` of the same edit (a colour picker, a blur): no second preview.
    await new Promise((r) => setTimeout(r, 400));
    expect(await type(['Burst'])).toEqual(['B', 'Bur', 'Burst']);
    await type(['Burst'], 'change');
    await new Promise((r) => setTimeout(r, 600));
    expect(await page.evaluate('window.tokenPosts')).toEqual(['B', 'Bur', 'Burst']);
    await page.reload(); // the page's own fetch again
    await page.waitForSelector('#params-form[data-movie]');
  });

  it('shows the API’s own message beside a bad field, and clears it when fixed', async () => {
    await openMovie('welcome');
    const long = 'x'.repeat(41);
    await page.fill('[name="name"]', long);
    const error = page.locator('[data-error-for="name"]');
    await waitFor(`() => /at most/.test((${errorText('name')})())`);
    const api400 = await fetch(`${api.url}/v2/token/demo`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ movie: 'welcome', params: { name: long } }),
    }).then((r) => r.json() as Promise<{ details: Array<{ field: string; message: string }> }>);
    expect(await error.textContent()).toBe(api400.details.find((d) => d.field === 'name')?.message);
    expect(await page.getAttribute('[name="name"]', 'aria-invalid')).toBe('true');
    // A list item's field: slides[1].image is a URL field inside the list.
    await openMovie('slideshow');
    await page.fill('[name="slides[1].image"]', 'not a url');
    await waitFor(errorText('slides[1].image'));
    expect(await page.textContent('[data-error-for="slides[1].image"]')).toMatch(/expected an http\(s\) URL of an image/);

    await openMovie('welcome');
    await page.fill('[name="name"]', 'Fixed');
    await waitFor(`() => document.getElementById('preview').dataset.token && !(${errorText('name')})()`);
  });

  it('gives a signed /v1 URL that plays in a <video>, and plays the current params', async () => {
    await openMovie('welcome');
    await page.fill('[name="name"]', 'Grace');
    await waitFor(`() => document.getElementById('snippet-signed').value.includes('name=Grace')`);
    const signed = await page.inputValue('#snippet-signed');
    expect(signed).toMatch(/\/v1\/render\/demo\/welcome\.mp4\?.*sig=[0-9a-f]{64}/);
    const curl = await page.inputValue('#snippet-curl');
    expect(curl).toContain('"name":"Grace"');
    expect(curl).not.toContain(key);
    const played = await measurePlayback(browser, signed, { start: 'play', timeoutMs: 90_000, minTime: 0.5 });
    expect(played.currentTime).toBeGreaterThan(0.5);
    expect(played.videoWidth).toBe(1920);

    await page.click('#play-button');
    await waitFor(`() => document.getElementById('player').currentTime > 0.3`);
    await page.click('#play-button'); // stop
  });

  it('reloads the form when movie.yaml changes on disk', async () => {
    await openMovie('welcome');
    await page.fill('[name="name"]', 'Grace');
    const file = path.join(templates, 'demo', 'welcome', 'movie.yaml');
    const yaml = fs.readFileSync(file, 'utf8');
    const edited = yaml.replace('company: { type: string, default: "Acme Studios", maxLength: 60 }', 'company: { type: string, default: "Acme Studios", maxLength: 60, label: "Company name" }');
    expect(edited).not.toBe(yaml);
    fs.writeFileSync(file, edited);
    await waitFor(`() => [...document.querySelectorAll('#params-form label')].some((l) => l.textContent === 'Company name')`, 20_000);
    // What was typed survives the reload.
    expect(await page.inputValue('[name="name"]')).toBe('Grace');
  });
});
