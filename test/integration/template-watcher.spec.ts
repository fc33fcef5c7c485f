import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type TemplateChange, TemplateWatcherRepository } from '../../src/repositories/template-watcher.repository';

// The real fs.watch on a temp templates folder: an editor's save (several writes and a rename) is one change.
describe('TemplateWatcherRepository', () => {
  let dir: string;
  let watcher: TemplateWatcherRepository;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-watch-'));
    fs.mkdirSync(path.join(dir, 'welcome'));
    fs.writeFileSync(path.join(dir, 'welcome', 'movie.yaml'), 'canvas: { width: 64, height: 64 }\n');
    watcher = new TemplateWatcherRepository();
  });
  afterEach(() => {
    watcher.onModuleDestroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('reports one debounced change, naming the file, for a burst of edits in a sub-folder', async () => {
    const changes: TemplateChange[] = [];
    const unsubscribe = watcher.subscribe(dir, (c) => changes.push(c), 200);
    await sleep(100); // the watch is set up synchronously; let inotify settle
    const file = path.join(dir, 'welcome', 'movie.yaml');
    // As an editor saves: write a temp file, rename it over the original, then touch it again.
    fs.writeFileSync(`${file}.tmp`, 'canvas: { width: 128, height: 64 }\n');
    fs.renameSync(`${file}.tmp`, file);
    fs.appendFileSync(file, '# saved\n');
    await sleep(800);
    expect(changes).toHaveLength(1);
    expect(changes[0].paths).toContain('welcome/movie.yaml');

    // A second save later is a second change; after unsubscribing, none.
    fs.appendFileSync(file, '# again\n');
    await sleep(800);
    expect(changes).toHaveLength(2);
    unsubscribe();
    fs.appendFileSync(file, '# unheard\n');
    await sleep(600);
    expect(changes).toHaveLength(2);
  });

  it('watches a movie folder created after the watch began', async () => {
    const changes: TemplateChange[] = [];
    watcher.subscribe(dir, (c) => changes.push(c), 150);
    fs.mkdirSync(path.join(dir, 'promo'));
    await sleep(500);
    changes.length = 0;
    fs.writeFileSync(path.join(dir, 'promo', 'movie.yaml'), 'canvas: { width: 64, height: 64 }\n');
    await sleep(600);
    expect(changes).toHaveLength(1);
    expect(changes[0].paths).toContain('promo/movie.yaml');
  });

  it('a movie folder removed and made again (a checkout, rm -rf and a copy) is watched again', async () => {
    const changes: TemplateChange[] = [];
    watcher.subscribe(dir, (c) => changes.push(c), 150);
    await sleep(100);
    fs.rmSync(path.join(dir, 'welcome'), { recursive: true });
    await sleep(400);
    fs.mkdirSync(path.join(dir, 'welcome'));
    fs.writeFileSync(path.join(dir, 'welcome', 'movie.yaml'), 'canvas: { width: 64, height: 64 }\n');
    await sleep(500);
    changes.length = 0;
    fs.appendFileSync(path.join(dir, 'welcome', 'movie.yaml'), '# edited in the new folder\n');
    await sleep(600);
    expect(changes).toHaveLength(1);
    expect(changes[0].paths).toContain('welcome/movie.yaml');
  });

  it('hears nothing while nothing changes', async () => {
    const changes: TemplateChange[] = [];
    watcher.subscribe(dir, (c) => changes.push(c), 100);
    fs.readFileSync(path.join(dir, 'welcome', 'movie.yaml')); // reading is not a change
    await sleep(500);
    expect(changes).toHaveLength(0);
  });
});
