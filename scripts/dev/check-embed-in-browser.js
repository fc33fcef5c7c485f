/* global document */
// Opens examples/embed.html in headless Chromium against a running service, submits the form
// and reports, every 250 ms, the video's playback time next to the render's progress: the
// video must play while the render is still running. Saves a screenshot.
//   [PARALLEL=2] node scripts/dev/check-embed-in-browser.js <service-url> <api-key> [screenshot.png]
// Needs Debian's chromium and playwright-core (npm i --no-save playwright-core).
const path = require('node:path');
const { chromium } = require(process.env.PLAYWRIGHT_CORE ?? 'playwright-core');

(async () => {
  const [base, key, shot = 'embed.png'] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
  });
  const page = await browser.newPage({ viewport: { width: 1000, height: 1100 } });
  await page.goto(`file://${path.resolve(__dirname, '..', '..', 'examples', 'embed.html')}`);
  await page.fill('#base', base);
  await page.fill('#key', key);
  await page.fill('#parallel', process.env.PARALLEL ?? '1');
  await page.fill('#params', JSON.stringify({ name: `Browser ${Date.now() % 10000}`, brand: '#1e90ff' }));
  await page.click('button[type=submit]');
  let playedWhileRendering = false;
  for (let i = 0; i < 80; i++) {
    await page.waitForTimeout(250);
    const state = await page.evaluate(() => {
      const v = document.getElementById('video');
      return { t: v.currentTime, ready: v.readyState, status: document.getElementById('status').textContent };
    });
    console.log(`${((i + 1) * 0.25).toFixed(2)} s  video ${state.t.toFixed(2)} s (readyState ${state.ready})  ${state.status}`);
    if (state.t > 0 && /^rendering/.test(state.status)) playedWhileRendering = true;
    if (/^done/.test(state.status) && state.t > 2) break;
  }
  await page.screenshot({ path: shot });
  await browser.close();
  console.log(playedWhileRendering ? 'OK: the video played while it was rendering' : 'NOT OK: no playback seen during rendering');
  process.exit(playedWhileRendering ? 0 : 1);
})();
