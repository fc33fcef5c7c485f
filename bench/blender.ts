/**
 * The Blender benchmark (`BENCH_ONLY=blender`): the sample template demo/title-3d (640×360,
 * 24 fps, 2 s = 48 frames, Cycles on the CPU, BENCH_BLENDER_SAMPLES samples, 8 by default: the
 * template's own) rendered by real processes as they are deployed: `node dist/src/main.js`
 * with EMBEDDED_RENDER_NODE=0, render nodes (`node dist/render-nodes/main.js`) pinned to a core
 * each with taskset, BLENDER_THREADS=1 and CONCURRENCY=1, and a redis-server of the bench's own.
 * Every render has a name of its own: outputs are content-addressed by params, so nothing is
 * served from storage.
 *
 * 1. Scaling: one node on core 0 against two nodes on cores 0 and 1, both with `parallel: 2`
 *    (the same job plan, chunks of frames, on one node or two: only the number of nodes
 *    differs), timed from the POST to the last byte of GET /v2/get/<token>.mp4 (which streams
 *    while rendering); runs of the two cases interleaved, BENCH_BLENDER_RUNS (2) of each, after
 *    a warm-up render on both nodes (caches, each node's first Blender start). Each timed render
 *    is planned as the scene's first (its recorded timing deleted from Redis before it): chunks
 *    of the default size in both cases, so that what one render observed cannot give the other
 *    case other chunks. The share of the CPU that other processes took during each render is
 *    reported beside it (this machine is shared).
 * 2. Blender's start-up share of a chunk: from the nodes' log lines (`blender frames A-B: X s per
 *    frame, start-up S s of T s (P %)`), chunks that started a Blender (a node's first chunk of
 *    a render) apart from those a kept Blender served (BLENDER_KEEP_ALIVE_MS); and measured
 *    apart, outside the farm: Blender with the node's own arguments (blenderRenderArgs), pinned
 *    to core 0 with one thread, for 1 frame and for the default chunk size (BLENDER_CHUNK_FRAMES,
 *    12): per frame = the difference / 11, start-up = the 1-frame time − per frame; what keeping
 *    one Blender per node across the chunks of a scene saves.
 * 3. First byte of the stream against the render time of the render's first chunk (the node's
 *    log line of the chunk that starts at frame 0), every timed run.
 * Adaptive chunks: the chunk sizes of the first render of the scene (no timing yet: the default
 * size) and of a later one on two nodes (sized from the recorded seconds per frame for
 * BLENDER_CHUNK_SECONDS a chunk), with its frames per lane.
 *
 * Every process started here is stopped by its pid and group, also when a measurement fails.
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../src/config/config';
import { ConfigModule } from '../src/config/config.module';
import { blenderJob, blenderRenderArgs } from '../src/engines/blender/blender-args';
import { SCENE_SCRIPT } from '../src/engines/blender/blender-scenes.service';
import { planFrameChunks } from '../src/engines/blender/frame-chunks';
import { RenderModule } from '../src/render/render.module';
import { RenderService } from '../src/render/render.service';
import { cpuSeconds, descendants, type Farm, type FarmRow, Fatal, foreignLoad, getJson, type LoadMark, loadMark, type Proc, request, until, withFarm } from './farm';

const root = path.resolve(__dirname, '..', '..');
const PROJECT = 'demo';
const MOVIE = 'title-3d';
const SAMPLES = Number(process.env.BENCH_BLENDER_SAMPLES ?? 8);
/** The nodes' settings: one render thread and one job at a time each, so a node is one core's worth of work. */
const NODE_THREADS = '1';
const PARALLEL = 2;
const SPEEDUP_TARGET = 1.85;
const STARTUP_SHARE_TARGET = 0.15;
const FIRST_BYTE_SLACK_S = 0.5;

const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const round = (x: number, digits = 0) => Number(x.toFixed(digits));
/** The median (the mean of the middle two for an even count: this part runs twice by default). */
const median = (xs: number[]) => {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const log = (line: string) => process.stderr.write(`blender: ${line}\n`);
let unique = 0;
/** A name no render has had (≤ 40 characters, the template's limit): rendered, never served from storage. */
const uniqueName = (what: string) => `${what} ${Date.now().toString(36)}${++unique}`.slice(-40);

// ---------------------------------------------------------------------------------------------
// Blender's start-up, measured apart

interface BlenderCall {
  frames: number;
  wallS: number;
  /** Per frame (median gap between `Saved:` lines) and before the first frame, as the node reckons them. */
  savedGapS?: number;
  firstSavedS: number;
}

/**
 * Blender as a node runs it (blenderRenderArgs, the resolved job of demo/title-3d), pinned to
 * core 0 with one thread: for 1 frame and for `chunkFrames` frames, alternately, `reps` times.
 */
async function measureStartup(reps: number, chunkFrames: number, blenderPath: string, work: string) {
  const dataDir = path.join(work, 'startup-data');
  const env = { ...process.env, MONTAGE_DATA_DIR: dataDir, MONTAGE_TEMPLATES_DIR: process.env.MONTAGE_TEMPLATES_DIR ?? path.join(root, 'templates') };
  const ctx = await NestFactory.createApplicationContext(
    { module: class BenchBlenderScene {}, imports: [ConfigModule.forRoot(loadConfig(env)), RenderModule] },
    { logger: ['error'] },
  );
  const movie = await ctx
    .get(RenderService)
    .resolveForRender({ project: PROJECT, movie: MOVIE, params: { name: 'Start-up', samples: SAMPLES } })
    .finally(() => ctx.close());
  const scene = movie.blender;
  if (!scene) throw new Error(`${PROJECT}/${MOVIE} is not a Blender movie`);
  const job = blenderJob(scene, { width: movie.width, height: movie.height, fps: movie.fps }, {});
  const call = async (frames: number): Promise<BlenderCall> => {
    const outputDir = fs.mkdtempSync(path.join(work, 'frames-'));
    const args = blenderRenderArgs({
      scene: scene.scene,
      script: SCENE_SCRIPT,
      outputDir,
      frames: { start: scene.settings.frameStart, end: scene.settings.frameStart + frames - 1 },
      device: scene.settings.device,
      threads: Number(NODE_THREADS),
      job,
    });
    const start = process.hrtime.bigint();
    const saved: number[] = [];
    let tail = '';
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn('taskset', ['-c', '0', blenderPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let pending = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        pending += chunk;
        const lines = pending.split('\n');
        pending = lines.pop()!;
        for (const line of lines) {
          if (line.startsWith('Saved: ')) saved.push(ms(start) / 1000);
          tail = `${tail}${line}\n`.slice(-2000);
        }
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (tail = `${tail}${chunk}`.slice(-2000)));
      child.once('error', reject);
      child.once('close', resolve);
    });
    const wallS = ms(start) / 1000;
    const written = fs.readdirSync(outputDir).filter((f) => f.endsWith('.png')).length;
    fs.rmSync(outputDir, { recursive: true, force: true });
    if (code !== 0 || written !== frames) throw new Error(`blender (${frames} frames) exited ${code} with ${written} frames written: ${tail.slice(-800)}`);
    const gaps = saved.slice(1).map((t, i) => t - saved[i]);
    return { frames, wallS, savedGapS: gaps.length > 0 ? median(gaps) : undefined, firstSavedS: saved[0] };
  };
  const one: BlenderCall[] = [];
  const chunk: BlenderCall[] = [];
  for (let i = 0; i < reps; i++) {
    one.push(await call(1));
    chunk.push(await call(chunkFrames));
    log(`start-up run ${i + 1}/${reps}: 1 frame ${one[i].wallS.toFixed(2)} s, ${chunkFrames} frames ${chunk[i].wallS.toFixed(2)} s`);
  }
  const oneS = median(one.map((c) => c.wallS));
  const chunkS = median(chunk.map((c) => c.wallS));
  const perFrameS = (chunkS - oneS) / (chunkFrames - 1);
  const startupS = oneS - perFrameS;
  return {
    how: `blenderRenderArgs of ${PROJECT}/${MOVIE} (samples ${SAMPLES}), taskset -c 0, -t ${NODE_THREADS}, no encoder; wall time of the process, median of ${reps}`,
    oneFrameS: one.map((c) => round(c.wallS, 2)),
    chunkFrames,
    chunkS: chunk.map((c) => round(c.wallS, 2)),
    perFrameS: round(perFrameS, 3),
    startupS: round(startupS, 2),
    /** Start-up / the whole process for a chunk of the default size. */
    shareAtDefaultChunk: round(startupS / chunkS, 3),
    /** The same, reckoned as the node does (first `Saved:` − the median gap between them). */
    savedLines: { perFrameS: round(median(chunk.map((c) => c.savedGapS ?? NaN)), 3), startupS: round(median(chunk.map((c) => c.firstSavedS - (c.savedGapS ?? 0))), 2) },
  };
}

// ---------------------------------------------------------------------------------------------
// The farm

interface ChunkLine {
  node: string;
  from: number;
  to: number;
  perFrameS: number;
  startupS: number;
  totalS: number;
  share: number;
  /** The node's first chunk of this render (it started a Blender, unless one was kept from before). */
  firstOnNode: boolean;
}

const CHUNK_LINE = /blender frames (\d+)-(\d+): ([\d.]+) s per frame, start-up ([\d.]+) s of ([\d.]+) s \((\d+) %\)/g;

/** What the nodes' logs gained since `marks` (one per node log file). */
function chunkLinesSince(marks: Array<{ proc: Proc; from: number }>): ChunkLine[] {
  return marks.flatMap(({ proc, from }) => {
    let text = '';
    try {
      const fd = fs.openSync(proc.log, 'r');
      try {
        const size = fs.fstatSync(fd).size;
        const buf = Buffer.alloc(Math.max(0, size - from));
        fs.readSync(fd, buf, 0, buf.length, from);
        text = buf.toString('utf8');
      } finally {
        fs.closeSync(fd);
      }
    } catch {
      return [];
    }
    return [...text.matchAll(CHUNK_LINE)].map((m, i) => ({
      node: proc.name,
      from: Number(m[1]),
      to: Number(m[2]),
      perFrameS: Number(m[3]),
      startupS: Number(m[4]),
      totalS: Number(m[5]),
      share: Number(m[5]) > 0 ? Number(m[4]) / Number(m[5]) : 0,
      firstOnNode: i === 0,
    }));
  });
}

/**
 * A load mark whose own CPU time counts this process's live descendants too (the API, Redis, the
 * nodes and their Blenders and encoders), so that what is left is other people's work.
 */
function farmMark(): LoadMark {
  const mark = loadMark();
  const live = descendants(process.pid).map((pid) => cpuSeconds(pid)).filter((x) => !Number.isNaN(x));
  return { ...mark, own: mark.own + live.reduce((a, b) => a + b, 0) };
}

const TIMINGS_KEY = 'montage:engine-timings';

async function redisCli(farm: Farm, ...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('redis-cli', ['-s', farm.redisUrl.replace(/^unix:\/\//, ''), ...args]);
  return stdout.trim();
}

interface BlenderRender {
  name: string;
  nodes: number;
  /** Other processes' share of the machine's CPU time during this render. */
  foreignCpuShare: number;
  /** From the POST to the first and the last byte of the stream. */
  ttfbMs: number;
  totalMs: number;
  bytes: number;
  chunks: ChunkLine[];
  /** The render time of its first chunk (the one at frame 0), from its node's log line. */
  firstChunkS: number | null;
}

async function renderOnce(farm: Farm, what: string, totalFrames: number): Promise<BlenderRender> {
  const api = farm.apis[0];
  const marks = farm.nodes.map((proc) => ({ proc, from: fs.existsSync(proc.log) ? fs.statSync(proc.log).size : 0 }));
  const name = uniqueName(what);
  const mark = farmMark();
  const start = process.hrtime.bigint();
  const posted = await request(`${api.url}/v2/render/${PROJECT}`, { method: 'POST', headers: { 'X-Api-Key': farm.key }, body: { movie: MOVIE, params: { name, samples: SAMPLES }, parallel: PARALLEL }, keep: true });
  if (posted.status !== 200) throw new Error(`blender bench: POST /v2/render/${PROJECT} answered ${posted.status}: ${posted.body.toString('utf8').slice(0, 300)}`);
  const { token } = JSON.parse(posted.body.toString('utf8')) as { token: string };
  const postMs = ms(start);
  const got = await request(`${api.url}/v2/get/${token}.mp4`);
  const totalMs = ms(start);
  if (got.status !== 200 || got.bytes === 0) throw new Error(`blender bench: GET /v2/get/${token}.mp4 answered ${got.status} with ${got.bytes} bytes`);
  await farm.settled(token, 'mp4', 300_000);
  const { foreignCpuShare } = foreignLoad(mark, farmMark());
  const chunks = chunkLinesSince(marks).sort((a, b) => a.from - b.from);
  // Every frame in exactly one chunk: anything else (a chunk retried elsewhere) is said, not hidden.
  let next = 0;
  for (const c of chunks) next = c.from === next ? c.to : -1;
  if (next !== totalFrames) log(`${what}: the chunks logged do not cover frames 0-${totalFrames} once: ${chunks.map((c) => `${c.from}-${c.to}`).join(', ')}`);
  const first = chunks.find((c) => c.from === 0);
  return { name, nodes: farm.nodes.length, foreignCpuShare, ttfbMs: postMs + got.ttfbMs, totalMs, bytes: got.bytes, chunks, firstChunkS: first ? first.totalS : null };
}

/** Stops the node and waits until the API lists only the others. */
export async function stopNode(farm: Farm, proc: Proc): Promise<void> {
  await farm.procs.stop(proc);
  const want = farm.nodes.length - 1;
  const api = farm.apis[0];
  await until(`${want} render node(s) after stopping ${proc.name}`, async () => {
    if (!api.proc.running()) throw new Fatal(`${api.proc.name} (pid ${api.proc.pid}) exited`);
    const { nodes } = await getJson<{ nodes: Array<{ pid: number }> }>(`${api.url}/v2/nodes`);
    return nodes.length === want && !nodes.some((n) => n.pid === proc.pid) ? true : undefined;
  }, 30_000, 100);
  // Out of the farm's list (startNode counts it), once the API no longer lists it.
  farm.nodes.splice(farm.nodes.indexOf(proc), 1);
}

const chunkSizes = (r: BlenderRender) => r.chunks.map((c) => c.to - c.from);
/** Frames per lane: chunk i goes to lane i % lanes (render-jobs.ts), each lane one chain of jobs. */
const laneFrames = (r: BlenderRender) => {
  const lanes = Math.max(1, Math.min(PARALLEL, r.chunks.length));
  const frames = Array.from({ length: lanes }, () => 0);
  r.chunks.forEach((c, i) => (frames[i % lanes] += c.to - c.from));
  return frames;
};
const describe = (r: BlenderRender) => ({
  ms: Math.round(r.totalMs),
  foreignCpuShare: r.foreignCpuShare,
  firstByteMs: Math.round(r.ttfbMs),
  bytes: r.bytes,
  chunks: r.chunks.map((c) => `${c.from}-${c.to} on ${c.node}: ${c.totalS} s (start-up ${c.startupS} s, ${(c.share * 100).toFixed(0)} %)`),
  chunkFrames: chunkSizes(r),
  laneFrames: laneFrames(r),
  firstChunkS: r.firstChunkS,
});

async function blenderFarm(work: string, runs: number, totalFrames: number) {
  return withFarm('blender', work, async (farm) => {
    await farm.startRedis();
    await farm.startApi('api');
    await farm.startNode(0);
    let second = await farm.startNode(1);
    // Warm-up on both nodes: the API's and the nodes' caches, each node's first Blender start,
    // and the scene's first timing (no timing yet: chunks of the default size).
    const warm = await renderOnce(farm, 'Warm-up', totalFrames);
    log(`warm-up (2 nodes, first render of the scene): ${Math.round(warm.totalMs)} ms, chunks ${chunkSizes(warm).join(', ')}`);
    const timings = async () => {
      const recorded = (await redisCli(farm, 'hgetall', TIMINGS_KEY)).split('\n');
      const found: Record<string, number> = {};
      for (let k = 0; k + 1 < recorded.length; k += 2) found[recorded[k]] = Number(recorded[k + 1]);
      return found;
    };
    const afterWarmUp = await timings();
    const one: BlenderRender[] = [];
    const two: BlenderRender[] = [];
    // Each timed render is planned as the scene's first (its timing removed): the same chunks,
    // of the default size, on one node and on two, whatever the renders before it observed.
    const fresh = async (what: string) => {
      await redisCli(farm, 'del', TIMINGS_KEY);
      return renderOnce(farm, what, totalFrames);
    };
    for (let i = 0; i < runs; i++) {
      await stopNode(farm, second);
      one.push(await fresh(`One ${i}`));
      second = await farm.startNode(1);
      two.push(await fresh(`Two ${i}`));
      const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
      log(
        `run ${i + 1}/${runs}: 1 node ${Math.round(one[i].totalMs)} ms (chunks ${chunkSizes(one[i]).join(', ')}; other processes ${pct(one[i].foreignCpuShare)} of the CPU), 2 nodes ${Math.round(two[i].totalMs)} ms (chunks ${chunkSizes(two[i]).join(', ')}, frames per lane ${laneFrames(two[i]).join(' / ')}; other processes ${pct(two[i].foreignCpuShare)}); first byte ${Math.round(two[i].ttfbMs)} ms, first chunk ${two[i].firstChunkS} s`,
      );
    }
    // A later render of the scene as deployed: chunks sized from the seconds per frame recorded by the last render.
    const before = await timings();
    const adaptive = await renderOnce(farm, 'Adaptive', totalFrames);
    log(`adaptive (2 nodes, timing recorded ${JSON.stringify(before)}): ${Math.round(adaptive.totalMs)} ms, chunks ${chunkSizes(adaptive).join(', ')}, frames per lane ${laneFrames(adaptive).join(' / ')}`);
    return { warm, one, two, adaptive, timings: { afterWarmUp, beforeAdaptive: before, atEnd: await timings() } };
  });
}

// ---------------------------------------------------------------------------------------------
// The part

export async function benchBlender(runs: number) {
  const config = loadConfig(process.env);
  const blenderPath = config.blender.path;
  const version = await promisify(execFile)(blenderPath, ['--version'])
    .then(({ stdout }) => stdout.split('\n')[0].trim())
    .catch((err: Error) => {
      throw new Error(`Blender cannot run here (${blenderPath}: ${err.message.split('\n')[0]})`);
    });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-bench-blender-'));
  const mark = loadMark();
  const started = Date.now();
  const previousThreads = process.env.BLENDER_THREADS;
  // The API and the nodes read their settings from this process's environment (farm.ts, envWith).
  process.env.BLENDER_THREADS = NODE_THREADS;
  try {
    const fps = 24;
    const totalFrames = 2 * fps;
    const chunkFrames = config.blender.chunkFrames;
    const startup = await measureStartup(Math.max(1, runs), Math.max(2, chunkFrames), blenderPath, work);
    const { warm, one, two, adaptive, timings } = await blenderFarm(work, runs, totalFrames);

    const oneMs = median(one.map((r) => r.totalMs));
    const twoMs = median(two.map((r) => r.totalMs));
    const speedup = oneMs / twoMs;
    // Start-up shares of chunks of the default size: those that started a Blender (a node's first
    // chunk of a render) and those a kept Blender served (BLENDER_KEEP_ALIVE_MS), apart.
    const all = [warm, ...one, ...two, adaptive].flatMap((r) => r.chunks);
    const defaultSized = all.filter((c) => c.to - c.from === chunkFrames);
    const shares = (cs: ChunkLine[]) =>
      cs.length === 0
        ? null
        : { chunks: cs.length, median: round(median(cs.map((c) => c.share)), 3), max: round(Math.max(...cs.map((c) => c.share)), 3), medianStartupS: round(median(cs.map((c) => c.startupS)), 2), medianChunkS: round(median(cs.map((c) => c.totalS)), 2) };
    // Keeping one Blender per node for the chunks of a scene: a start-up saved per chunk beyond each node's first.
    const savedS = (r: BlenderRender) => (r.chunks.length - new Set(r.chunks.map((c) => c.node)).size) * startup.startupS;
    const firstByte = (rs: BlenderRender[]) => {
      const withChunk = rs.filter((r) => r.firstChunkS !== null);
      const ttfbS = median(withChunk.map((r) => r.ttfbMs / 1000));
      const chunkS = median(withChunk.map((r) => r.firstChunkS!));
      // Each run's margin: its first chunk + 0.5 s − its first byte (≥ 0: met).
      const margins = withChunk.map((r) => r.firstChunkS! + FIRST_BYTE_SLACK_S - r.ttfbMs / 1000);
      return { runs: withChunk.length, firstByteS: round(ttfbS, 2), firstChunkS: round(chunkS, 2), marginS: round(median(margins), 2), worstMarginS: round(Math.min(...margins), 2) };
    };
    const sceneTiming = (t: Record<string, number>) => Object.entries(t).find(([k]) => k.startsWith(`blender:${PROJECT}/${MOVIE}@`))?.[1] ?? null;
    const recordedSecondsPerFrame = sceneTiming(timings.atEnd);
    const plan = (spf: number | null) =>
      spf === null ? null : planFrameChunks(totalFrames, { parallel: PARALLEL, defaultChunkFrames: chunkFrames, targetChunkSeconds: config.blender.chunkSeconds, secondsPerFrame: spf }).map((r) => r.to - r.from);
    const keepAliveMs = (config.blender as { keepAliveMs?: number }).keepAliveMs;
    return {
      blenderVersion: version,
      movie: `${PROJECT}/${MOVIE} 640×360 24 fps 2 s = ${totalFrames} frames, Cycles CPU, samples ${SAMPLES}, mp4`,
      runs,
      nodes: `BLENDER_THREADS=${NODE_THREADS}, CONCURRENCY=1, pinned with taskset (1 node: core 0; 2 nodes: cores 0 and 1); parallel ${PARALLEL} in both cases; the API, Redis and this process unpinned`,
      settings: { chunkFrames, chunkSeconds: config.blender.chunkSeconds, ...(keepAliveMs !== undefined ? { keepAliveMs } : {}) },
      warmUp: { ...describe(warm), note: 'two nodes, the first render of the scene (no timing recorded: default chunks); not in the medians' },
      timedRuns: 'each planned as the first render of the scene (its recorded timing removed before it): default-size chunks, the same plan on 1 node and on 2',
      oneNode: { ms: one.map((r) => Math.round(r.totalMs)), medianMs: Math.round(oneMs), each: one.map(describe) },
      twoNodes: { ms: two.map((r) => Math.round(r.totalMs)), medianMs: Math.round(twoMs), each: two.map(describe) },
      speedup: round(speedup, 2),
      speedups: one.map((r, i) => round(r.totalMs / two[i].totalMs, 2)),
      /** The best speed-up the chunks allow: all frames / the frames of the busiest lane (start-ups and the encoder aside). */
      laneBound: two.map((r) => round(totalFrames / Math.max(...laneFrames(r)), 2)),
      startupShare: {
        defaultChunkFrames: chunkFrames,
        /** Chunks of the default size that started a Blender: what every chunk would pay without a kept one. */
        freshBlender: shares(defaultSized.filter((c) => c.firstOnNode)),
        /** Chunks of the default size served by the Blender the node kept from the chunk before. */
        keptBlender: shares(defaultSized.filter((c) => !c.firstOnNode)),
        everyChunk: shares(all),
      },
      startupDirect: {
        ...startup,
        keepOneBlenderPerNode: {
          oneNodeSavesS: round(median(one.map(savedS)), 2),
          oneNodeSavesShare: round(median(one.map((r) => savedS(r) / (r.totalMs / 1000))), 3),
          twoNodesSavesS: round(median(two.map(savedS)), 2),
          twoNodesSavesShare: round(median(two.map((r) => savedS(r) / (r.totalMs / 1000))), 3),
          how: 'a measured start-up for each chunk beyond the first on each node, over the render time',
        },
      },
      firstByte: { oneNode: firstByte(one), twoNodes: firstByte(two) },
      adaptiveChunks: {
        firstRun: chunkSizes(warm),
        recordedAfterFirstRun: sceneTiming(timings.afterWarmUp),
        planAfterFirstRun: plan(sceneTiming(timings.afterWarmUp)),
        laterRun: { ...describe(adaptive), recordedSecondsPerFrame: sceneTiming(timings.beforeAdaptive), laneBound: round(totalFrames / Math.max(...laneFrames(adaptive)), 2) },
        recordedAtEnd: recordedSecondsPerFrame,
        nextPlan: plan(recordedSecondsPerFrame),
      },
      seconds: round((Date.now() - started) / 1000, 1),
      load: foreignLoad(mark, loadMark()),
    };
  } finally {
    if (previousThreads === undefined) delete process.env.BLENDER_THREADS;
    else process.env.BLENDER_THREADS = previousThreads;
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export type BlenderResult = Awaited<ReturnType<typeof benchBlender>>;

/** Rows of the table: the renders and the start-up. */
export function blenderTableRows(r: BlenderResult): string[][] {
  const s = (x: number) => `${(x / 1000).toFixed(2)} s`;
  const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
  const d = r.startupDirect;
  const a = r.adaptiveChunks;
  const fresh = r.startupShare.freshBlender;
  const kept = r.startupShare.keptBlender;
  return [
    [
      'blender: 1 node on core 0',
      s(r.oneNode.medianMs),
      `${r.oneNode.ms.join(', ')} ms; chunks ${r.oneNode.each.map((e) => e.chunkFrames.join('+')).join(' | ')}; other processes ${r.oneNode.each.map((e) => pct(e.foreignCpuShare)).join(', ')} of the CPU`,
    ],
    [
      'blender: 2 nodes on cores 0, 1',
      s(r.twoNodes.medianMs),
      `${r.twoNodes.ms.join(', ')} ms; frames per lane ${r.twoNodes.each.map((e) => e.laneFrames.join('/')).join(' | ')}; other processes ${r.twoNodes.each.map((e) => pct(e.foreignCpuShare)).join(', ')}; speed-up ${r.speedup}×`,
    ],
    ['blender: warm-up, 2 nodes, first render', s(r.warmUp.ms), `chunks ${r.warmUp.chunkFrames.join('+')} (default size, no timing yet)`],
    [
      'blender: later render, adaptive chunks',
      s(a.laterRun.ms),
      `2 nodes, ${a.laterRun.recordedSecondsPerFrame ?? '?'} s/frame recorded → chunks ${a.laterRun.chunkFrames.join('+')}, frames per lane ${a.laterRun.laneFrames.join('/')} (the lanes allow ${a.laterRun.laneBound}×)`,
    ],
    [
      'blender: start-up, measured apart',
      `${d.startupS} s`,
      `per frame ${d.perFrameS} s; ${(d.shareAtDefaultChunk * 100).toFixed(1)} % of a ${d.chunkFrames}-frame chunk (1 frame ${d.oneFrameS.join(', ')} s; ${d.chunkFrames} frames ${d.chunkS.join(', ')} s)`,
    ],
    [
      'blender: start-up in the nodes\' chunks',
      fresh ? `${fresh.medianStartupS} s` : '–',
      `${r.startupShare.defaultChunkFrames}-frame chunks: a new Blender ${fresh ? `${pct(fresh.median)} (max ${pct(fresh.max)}, ${fresh.chunks} chunks of ${fresh.medianChunkS} s)` : '–'}; a kept one ${kept ? `${kept.medianStartupS} s, ${pct(kept.median)} (max ${pct(kept.max)}, ${kept.chunks} chunks)` : '–'}`,
    ],
    [
      'blender: one Blender kept per node',
      `${d.keepOneBlenderPerNode.oneNodeSavesS} / ${d.keepOneBlenderPerNode.twoNodesSavesS} s`,
      `saves per render, 1 node / 2 nodes: ${(d.keepOneBlenderPerNode.oneNodeSavesShare * 100).toFixed(1)} % / ${(d.keepOneBlenderPerNode.twoNodesSavesShare * 100).toFixed(1)} % (a measured start-up per chunk after each node's first${r.settings.keepAliveMs !== undefined ? `; BLENDER_KEEP_ALIVE_MS=${r.settings.keepAliveMs} on the nodes` : ''})`,
    ],
  ];
}

/** The figures with targets, one row each. */
export function blenderRows(r: BlenderResult | { error: string }): FarmRow[] {
  if ('error' in r) return [{ figure: '13. Blender, title-3d: 1 node / 2 pinned nodes', value: `not measured: ${r.error}`, target: `≥ ${SPEEDUP_TARGET}×`, met: false }];
  const fresh = r.startupShare.freshBlender;
  const fb = r.firstByte;
  const fbMet = [fb.oneNode, fb.twoNodes].every((f) => f.runs > 0 && f.worstMarginS >= 0);
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const foreign = Math.max(...[...r.oneNode.each, ...r.twoNodes.each].map((e) => e.foreignCpuShare));
  return [
    {
      figure: '13. Blender, title-3d 48 frames: 1 node / 2 pinned nodes',
      value: `${r.speedup}× (${r.oneNode.medianMs} / ${r.twoNodes.medianMs} ms; runs ${r.speedups.join(', ')}; other processes up to ${(foreign * 100).toFixed(0)} % of the CPU during a run)`,
      target: `≥ ${SPEEDUP_TARGET}×`,
      met: r.speedup >= SPEEDUP_TARGET,
    },
    {
      figure: `14. Blender start-up share of a ${r.startupShare.defaultChunkFrames}-frame chunk (the default)`,
      value: fresh
        ? `new Blender: median ${pct(fresh.median)}, max ${pct(fresh.max)} of ${fresh.chunks} chunks (${fresh.medianStartupS} s of ${fresh.medianChunkS} s); measured apart ${r.startupDirect.startupS} s = ${pct(r.startupDirect.shareAtDefaultChunk)}${r.startupShare.keptBlender ? `; kept Blender ${pct(r.startupShare.keptBlender.median)}` : ''}`
        : `no chunk of the default size; measured apart ${r.startupDirect.startupS} s = ${pct(r.startupDirect.shareAtDefaultChunk)}`,
      target: `≤ ${STARTUP_SHARE_TARGET * 100} %`,
      met: (fresh ? fresh.median : r.startupDirect.shareAtDefaultChunk) <= STARTUP_SHARE_TARGET,
    },
    {
      figure: '15. Blender stream: first byte ≤ first chunk + 0.5 s',
      value: `2 nodes ${fb.twoNodes.firstByteS} s vs ${fb.twoNodes.firstChunkS} s (margin ${fb.twoNodes.marginS} s, worst ${fb.twoNodes.worstMarginS} s); 1 node ${fb.oneNode.firstByteS} s vs ${fb.oneNode.firstChunkS} s (margin ${fb.oneNode.marginS} s, worst ${fb.oneNode.worstMarginS} s)`,
      target: '≤ first chunk + 0.5 s (every run)',
      met: fbMet,
    },
  ];
}
