/**
 * The template language v2 part of `npm run bench` (BENCH_ONLY=v2), issue 12's speed targets:
 * - the renderer: bench/v2 (bench/templates/bench/v2: 1080×1920, 10 s, 30 fps; keyframes with
 *   spring and cubic-bezier easing, a gradient rounded rectangle, a masked photo, fitted text,
 *   SRT captions with the spoken word highlighted) with Montage, rasters cached and cold, against
 *   one hand-written ffmpeg command over the same rasters, interleaved: Montage ≤ 1.1× (welcome ≤ 0.8×);
 * - `templates check` of every template (templates/ and bench/templates/): the CLI's wall time
 *   and the check in-process, ≤ 2 s.
 */
import { NestFactory } from '@nestjs/core';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { PlannedLayer, RenderPlan } from '../src/compiler/render-plan';
import { DEFAULTS } from '../src/compiler/output-profiles';
import { loadConfig } from '../src/config/config';
import { ConfigModule } from '../src/config/config.module';
import { RenderModule } from '../src/render/render.module';
import { RenderService } from '../src/render/render.service';
import { TemplatesService } from '../src/templates/templates.service';
import { cpuSeconds, type FarmRow, foreignLoad, loadMark } from './farm';

const root = path.resolve(__dirname, '..', '..');
const run = promisify(execFile);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (n: number, places = 0) => Math.round(n * 10 ** places) / 10 ** places;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** An application context that renders and checks templates from `templatesDir`, caching in `dataDir`. */
async function context(templatesDir: string, dataDir: string) {
  const config = loadConfig({ ...process.env, MONTAGE_TEMPLATES_DIR: templatesDir, MONTAGE_DATA_DIR: dataDir });
  return NestFactory.createApplicationContext({ module: class BenchV2 {}, imports: [ConfigModule.forRoot(config), RenderModule] }, { logger: ['error'] });
}

const request = { project: 'bench', movie: 'v2', params: {}, profile: { format: 'mp4' as const } };

/**
 * What a person fluent in ffmpeg would write by hand for bench/v2, given the same rasters that
 * Montage prepares (the gradient, photo, mask, card and headline PNGs, and the captions'
 * ffconcat list of cue stills): each still converted and masked once, then repeated with the
 * loop filter; the gradient is the base itself; linear opacity ramps are `fade`s (which pass
 * frames through once done); easings written as short expressions (a spring for the photo's
 * scale, an ease-out quint for the card and headline); layers that have not started yet are
 * skipped with `enable`. Same size, length, codecs and settings as Montage's mp4, silent AAC
 * track included.
 */
export function handWrittenV2Args(plan: RenderPlan, out: string): string[] {
  const layers = plan.scenes[0].layers;
  const still = (l: PlannedLayer) => {
    if (l.source.kind !== 'still') throw new Error(`${l.id} is not a still`);
    return l.source.path;
  };
  const [gradient, photo, card, headline, captions] = layers;
  if (captions.source.kind !== 'sequence') throw new Error('bench/v2: the captions are not a sequence');
  const maskPath = photo.look?.maskPath;
  if (!maskPath) throw new Error('bench/v2: the photo has no mask');
  const frames = plan.totalFrames;
  const fps = plan.fps;
  const toYuv = 'scale=out_color_matrix=bt709:out_range=tv';
  const repeat = `loop=loop=-1:size=1:start=0,trim=end_frame=${frames},settb=1/${fps},setpts=N`;
  // Ease-out quint from `from` over `d` seconds: where a designer's cubic-bezier(0.2, 0.8, 0.2, 1) lands.
  const easeOut = (from: number, d: number) => `(1-pow(1-clip((t-${from})/${d},0,1),5))`;
  const p = 'clip(t/1.2,0,1)';
  // A damped spring settling at 1 after 1.2 s, from 0.6.
  const spring = `(0.6+0.4*if(gte(${p},1),1,1-exp(-6.2*${p})*(cos(14.24*${p})+0.436*sin(14.24*${p}))))`;
  const headlineStart = headline.startFrame / fps;
  const graph = [
    `[0:v]${toYuv},format=yuv420p,${repeat}[bg]`,
    `[1:v]${toYuv},format=yuva420p[photo0]`,
    `[2:v]format=gray,scale=${photo.width}:${photo.height}[mask]`,
    `[photo0][mask]alphamerge,${repeat},fade=t=in:d=0.5:alpha=1,scale=w='trunc(${photo.width}*${spring}/2)*2':h='trunc(${photo.height}*${spring}/2)*2':eval=frame[photo]`,
    `[bg][photo]overlay=x='${photo.x}+(${photo.width}-w)/2':y='${photo.y}+(${photo.height}-h)/2'[a]`,
    `[3:v]${toYuv},format=yuva420p,${repeat},fade=t=in:st=0.3:d=0.5:alpha=1[card]`,
    `[a][card]overlay=x=${card.x}:y='${card.y}+400*(1-${easeOut(0.3, 1)})':enable='gte(t,0.3)'[b]`,
    `[4:v]${toYuv},format=yuva420p,${repeat},fade=t=in:st=${headlineStart}:d=0.6:alpha=1[headline]`,
    `[b][headline]overlay=x='${headline.x}-310*(1-${easeOut(headlineStart, 0.9)})':y=${headline.y}:enable='gte(t,${headlineStart})'[c]`,
    `[5:v]${toYuv},format=yuva420p,fps=${fps},trim=end_frame=${frames},settb=1/${fps},setpts=N[captions]`,
    `[c][captions]overlay=${captions.x}:${captions.y},format=yuv420p[v]`,
    `anullsrc=r=48000:cl=stereo,atrim=end=${frames / fps}[aout]`,
  ].join(';');
  return [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
    ...[still(gradient), still(photo), maskPath, still(card), still(headline)].flatMap((file) => ['-framerate', String(fps), '-i', file]),
    '-f', 'concat', '-safe', '0', '-i', captions.source.list,
    '-filter_complex', graph, '-map', '[v]', '-map', '[aout]',
    '-c:v', 'libx264', '-preset', DEFAULTS.mp4.preset, '-crf', String(DEFAULTS.mp4.crf), '-pix_fmt', 'yuv420p',
    '-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', '-color_range', 'tv',
    '-c:a', 'aac', '-b:a', '160k', '-ar', '48000', '-ac', '2', '-movflags', '+faststart', '-f', 'mp4', out,
  ];
}

/** Wall and CPU time (this process and the children it waited for, i.e. ffmpeg) of one call. */
async function measured(fn: () => Promise<unknown>): Promise<{ ms: number; cpuS: number }> {
  const cpu = cpuSeconds('self');
  const ms = await timed(fn);
  return { ms, cpuS: cpuSeconds('self') - cpu };
}

export interface V2Result {
  runs: number;
  movie: string;
  render: {
    coldMs: number[];
    warmMs: number[];
    handMs: number[];
    warmCpuS: number[];
    handCpuS: number[];
    medianColdMs: number;
    medianWarmMs: number;
    medianHandMs: number;
    ratioWarm: number;
    ratioCold: number;
    /** CPU seconds, Montage (rasters cached) / hand-written: steadier than wall time on a shared machine. */
    ratioCpu: number;
    /** Both outputs' streams (codec, size, frames, duration) and the hand-written picture's PSNR against Montage's. */
    same: { streams: string; psnrDb: number };
    load: ReturnType<typeof foreignLoad>;
  };
  check: {
    templates: number;
    errors: string[];
    cliMs: number[];
    medianCliMs: number;
    /** The CLI doing nothing (`--help`): Node, Nest and the modules loading. */
    cliStartMs: number;
    inProcessFirstMs: number;
    inProcessMs: number[];
    medianInProcessMs: number;
    /** One template at a time in a fresh process context (the first check of each). */
    perTemplateMs: Record<string, number>;
    load: ReturnType<typeof foreignLoad>;
  };
}

/** codec, size, frame count and duration of each stream: what both commands must agree on. */
async function streams(file: string): Promise<string> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name,width,height,pix_fmt,nb_frames,duration,sample_rate,channels', '-of', 'compact=p=0', file]);
  return stdout.trim().split('\n').join('; ');
}

/** The hand-written output must be the same movie: the same streams, and a picture close to Montage's (PSNR, dB). */
async function sameMovie(montage: string, hand: string): Promise<{ streams: string; psnrDb: number }> {
  const [a, b] = [await streams(montage), await streams(hand)];
  if (a !== b) throw new Error(`bench/v2: the hand-written command's output differs from Montage's: ${b} against ${a}`);
  const { stderr } = await run('ffmpeg', ['-hide_banner', '-nostdin', '-i', montage, '-i', hand, '-lavfi', '[0:v][1:v]psnr', '-f', 'null', '-']);
  const psnr = /PSNR .*average:([\d.]+|inf)/.exec(stderr);
  if (!psnr) throw new Error(`bench/v2: no PSNR in ffmpeg's output: ${stderr.slice(-300)}`);
  return { streams: a, psnrDb: psnr[1] === 'inf' ? Infinity : round(Number(psnr[1]), 2) };
}

/** Montage against the hand-written command, interleaved; cold renders each in a fresh data folder. */
async function benchRender(runs: number, work: string): Promise<V2Result['render']> {
  const mark = loadMark();
  const templates = path.join(root, 'bench', 'templates');
  const coldMs: number[] = [];
  let warmData = '';
  for (let i = 0; i < runs; i++) {
    // Nothing cached: sharp makes every raster (gradient, photo, mask, card, headline, every cue × word).
    const data = fs.mkdtempSync(path.join(work, 'cold-'));
    const app = await context(templates, data);
    coldMs.push(await timed(() => app.get(RenderService).render(request, path.join(work, `cold-${i}.mp4`))));
    await app.close();
    if (i === 0) warmData = data;
    else fs.rmSync(data, { recursive: true, force: true });
  }
  const app = await context(templates, warmData);
  try {
    const renders = app.get(RenderService);
    await renders.render(request, path.join(work, 'warm-up.mp4')); // this process's memos (template, fonts), as in a running API
    const plan = await renders.plan(request);
    const warm: Array<{ ms: number; cpuS: number }> = [];
    const hand: Array<{ ms: number; cpuS: number }> = [];
    for (let i = 0; i < runs; i++) {
      // Interleaved: a slow moment on this shared machine hits both sides alike.
      warm.push(await measured(() => renders.render(request, path.join(work, `montage-${i}.mp4`))));
      hand.push(await measured(() => run('ffmpeg', handWrittenV2Args(plan, path.join(work, `hand-${i}.mp4`)))));
      process.stderr.write(
        `v2 run ${i + 1}/${runs}: montage ${warm[i].ms.toFixed(0)} ms (${warm[i].cpuS.toFixed(2)} s CPU), hand-written ${hand[i].ms.toFixed(0)} ms (${hand[i].cpuS.toFixed(2)} s CPU); cold ${coldMs[i].toFixed(0)} ms\n`,
      );
    }
    // Easings differ a little (the hand-written ones are short formulas), hence a PSNR and not equality.
    const same = await sameMovie(path.join(work, 'montage-0.mp4'), path.join(work, 'hand-0.mp4'));
    if (same.psnrDb < 30) throw new Error(`bench/v2: the hand-written picture is not Montage's (PSNR ${same.psnrDb} dB)`);
    const medianWarmMs = median(warm.map((w) => w.ms));
    const medianHandMs = median(hand.map((h) => h.ms));
    return {
      coldMs: coldMs.map((x) => round(x)),
      warmMs: warm.map((w) => round(w.ms)),
      handMs: hand.map((h) => round(h.ms)),
      warmCpuS: warm.map((w) => round(w.cpuS, 2)),
      handCpuS: hand.map((h) => round(h.cpuS, 2)),
      medianColdMs: round(median(coldMs)),
      medianWarmMs: round(medianWarmMs),
      medianHandMs: round(medianHandMs),
      ratioWarm: round(medianWarmMs / medianHandMs, 3),
      ratioCold: round(median(coldMs) / medianHandMs, 3),
      ratioCpu: round(median(warm.map((w) => w.cpuS)) / median(hand.map((h) => h.cpuS)), 3),
      same,
      load: foreignLoad(mark, loadMark()),
    };
  } finally {
    await app.close();
  }
}

/** `templates check` over templates/ and bench/templates/ together (copied into one folder: the CLI reads one). */
async function benchCheck(runs: number, work: string): Promise<V2Result['check']> {
  const mark = loadMark();
  const all = path.join(work, 'all-templates');
  for (const dir of [path.join(root, 'templates'), path.join(root, 'bench', 'templates')]) {
    for (const project of fs.readdirSync(dir)) fs.cpSync(path.join(dir, project), path.join(all, project), { recursive: true });
  }
  const cli = path.join(root, 'bin', 'montage.js');
  const cliMs: number[] = [];
  let output = '';
  for (let i = 0; i < runs; i++) {
    const data = fs.mkdtempSync(path.join(work, 'check-'));
    cliMs.push(
      await timed(async () => {
        // Exit 2 when a template has problems: its output says which.
        output = await run(process.execPath, [cli, '--templates', all, '--data', data, 'templates', 'check']).then(
          (r) => r.stdout,
          (err: { stdout?: string; message: string }) => err.stdout ?? err.message,
        );
      }),
    );
  }
  const startMs: number[] = [];
  for (let i = 0; i < runs; i++) startMs.push(await timed(() => run(process.execPath, [cli, '--help'])));
  const cliStartMs = median(startMs);
  const errors = output.split('\n').filter((l) => l && !l.startsWith('ok ') && !/templates? checked/.test(l));
  const templates = output.split('\n').filter((l) => l.startsWith('ok ')).length + new Set(errors.map((e) => e.split('/').slice(0, 2).join('/'))).size;

  // In-process: the first check in a fresh context (Blender asked for title-3d's scene), then again.
  const app = await context(all, fs.mkdtempSync(path.join(work, 'check-')));
  const inProcessMs: number[] = [];
  let inProcessFirstMs = 0;
  try {
    const service = app.get(TemplatesService);
    inProcessFirstMs = await timed(() => service.checkAll());
    for (let i = 0; i < runs; i++) inProcessMs.push(await timed(() => service.checkAll()));
  } finally {
    await app.close();
  }
  // Where the first check's time goes: each template alone, first time, in a fresh context.
  const perTemplateMs: Record<string, number> = {};
  const fresh = await context(all, fs.mkdtempSync(path.join(work, 'check-')));
  try {
    const service = fresh.get(TemplatesService);
    for (const project of await service.listProjects()) {
      for (const movie of await service.listMovies(project)) perTemplateMs[`${project}/${movie}`] = round(await timed(() => service.check(project, movie)));
    }
  } finally {
    await fresh.close();
  }
  process.stderr.write(`v2 templates check: CLI ${cliMs.map((x) => x.toFixed(0)).join(', ')} ms; in-process first ${inProcessFirstMs.toFixed(0)} ms, then ${inProcessMs.map((x) => x.toFixed(0)).join(', ')} ms\n`);
  return {
    templates,
    errors,
    cliMs: cliMs.map((x) => round(x)),
    medianCliMs: round(median(cliMs)),
    cliStartMs: round(cliStartMs),
    inProcessFirstMs: round(inProcessFirstMs),
    inProcessMs: inProcessMs.map((x) => round(x)),
    medianInProcessMs: round(median(inProcessMs)),
    perTemplateMs,
    load: foreignLoad(mark, loadMark()),
  };
}

export async function benchV2(runs: number): Promise<V2Result> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-bench-v2-'));
  try {
    const render = await benchRender(runs, work);
    const check = await benchCheck(runs, work);
    return { runs, movie: 'bench/v2 1080×1920 30 fps 10 s, mp4 (libx264 veryfast crf 23 + silent AAC)', render, check };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const RENDER_TARGET = 1.1;
const RENDER_WELCOME = 0.8;
const CHECK_TARGET_MS = 2000;

/** Rows of the first table: the figures behind the targets. */
export function v2TableRows(r: V2Result): string[][] {
  const { render: m, check: c } = r;
  return [
    ['v2: montage (rasters cached)', `${m.medianWarmMs} ms`, `${m.warmMs.join(', ')} (CPU ${m.warmCpuS.join(', ')} s)`],
    ['v2: montage (cold, fresh cache)', `${m.medianColdMs} ms`, m.coldMs.join(', ')],
    ['v2: hand-written ffmpeg', `${m.medianHandMs} ms`, `${m.handMs.join(', ')} (CPU ${m.handCpuS.join(', ')} s); PSNR against Montage ${m.same.psnrDb} dB`],
    ['v2: templates check, CLI', `${c.medianCliMs} ms`, `${c.cliMs.join(', ')}; ${c.templates} templates; CLI start-up alone ${c.cliStartMs} ms`],
    ['v2: templates check, in-process', `${c.medianInProcessMs} ms`, `first ${c.inProcessFirstMs} ms, then ${c.inProcessMs.join(', ')}`],
  ];
}

/** One row per target: measured, target, met. */
export function v2Rows(r: V2Result | { error: string }): FarmRow[] {
  if ('error' in r) return [{ figure: '12. v2 template: renderer / hand-written ffmpeg', value: `not measured: ${r.error}`, target: `≤ ${RENDER_TARGET}×`, met: false }];
  const { render: m, check: c } = r;
  const load = `other processes ${(m.load.foreignCpuShare * 100).toFixed(0)} % of the CPU`;
  return [
    {
      figure: '12. v2 template: renderer (rasters cached) / hand-written ffmpeg',
      value: `${m.ratioWarm}× (${m.medianWarmMs} / ${m.medianHandMs} ms; CPU ${m.ratioCpu}×; ${load})`,
      target: `≤ ${RENDER_TARGET}× (welcome ≤ ${RENDER_WELCOME}×)`,
      met: m.ratioWarm <= RENDER_TARGET,
    },
    { figure: '12. v2 template: renderer (cold) / hand-written ffmpeg', value: `${m.ratioCold}× (${m.medianColdMs} / ${m.medianHandMs} ms)`, target: 'reported', met: null },
    {
      figure: '12. templates check, CLI wall time',
      value: `${c.medianCliMs} ms (${c.templates} templates${c.errors.length ? `, ${c.errors.length} problems` : ''})`,
      target: `≤ ${CHECK_TARGET_MS} ms`,
      met: c.medianCliMs <= CHECK_TARGET_MS && c.errors.length === 0,
    },
    {
      figure: '12. templates check, in-process (first / again)',
      value: `${c.inProcessFirstMs} / ${c.medianInProcessMs} ms`,
      target: `≤ ${CHECK_TARGET_MS} ms`,
      met: c.inProcessFirstMs <= CHECK_TARGET_MS && c.errors.length === 0,
    },
  ];
}
