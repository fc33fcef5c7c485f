import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  BlenderRepository,
  type EncodeTurntablePayload,
  type EncodeTurntableResult,
  FARM_FRAME_FORMATS,
  FARM_SCRIPT,
  FARM_SCRIPT_DIR,
  type FarmWorkspace,
  FarmWorkspaceRepository,
  farmFrameFile,
  farmFrameKey,
  farmInspectArgs,
  farmRenderArgs,
  type FrameState,
  type InspectScenePayload,
  isPermanent,
  JOB_QUEUE,
  type JobContext,
  type JobQueueRepository,
  MediaRepository,
  MONTAGE_CONFIG,
  MontageError,
  type MontageConfig,
  OUTPUT_STORAGE,
  type OutputStorage,
  parseSceneInventory,
  productRenderArgs,
  type RenderFarmFramesPayload,
  type RenderFarmFramesResult,
  renderFailed,
  type SceneInventory,
  turntableEncodeArgs,
  turntableGifArgs,
  unusableMedia,
} from '../src/render-node-kit';
import { NodeJobs } from './node-jobs';

/** Blender's start-up and the scene's loading, before its first frame. */
const STARTUP_MS = 120_000;
/** Turntable frames ffmpeg reads (image2): the formats product stills are rendered in. */
const TURNTABLE_FRAME_EXTS = ['png', 'jpg', 'webp'];

/**
 * The farm's node jobs (issue 14): a chunk of a scene's (or a product shot's) frames rendered
 * by one Blender in a folder of its own, each frame stored and reported as it is saved; a
 * .blend's inventory; a turntable's frames encoded into an MP4 and a GIF.
 */
@Injectable()
export class FarmJob {
  private readonly logger = new Logger('RenderNode');

  constructor(
    private readonly node: NodeJobs,
    private readonly blender: BlenderRepository,
    private readonly workspace: FarmWorkspaceRepository,
    private readonly media: MediaRepository,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
    @Inject(MONTAGE_CONFIG) private readonly config: MontageConfig,
  ) {}

  /**
   * At start, on a node with Blender: whether farm Blenders run in bwrap (FARM_SANDBOX), said in
   * the log. Required (bwrap) but not working: the node does not start.
   */
  async checkSandbox(): Promise<void> {
    const state = await this.blender.farmSandbox();
    if (state.on) {
      this.logger.log('farm Blenders run in a bwrap sandbox (no network; the system read-only; their own folder only)');
      return;
    }
    if (this.config.farm.sandbox === 'bwrap') throw new Error(`FARM_SANDBOX=bwrap, but the sandbox does not work on this node: ${state.reason ?? 'unknown'}`);
    if (this.config.farm.sandbox === 'off') {
      this.logger.warn('FARM_SANDBOX=off: farm Blenders run without an OS sandbox (only montage_farm.py\'s checks keep a hostile .blend in its folder)');
      return;
    }
    this.logger.warn(`farm Blenders run WITHOUT an OS sandbox: ${state.reason ?? 'bwrap does not work here'}. Only montage_farm.py's checks keep a hostile .blend in its folder; install bubblewrap (and allow unprivileged user namespaces, or run as root), or set FARM_SANDBOX=off to say this is meant`);
  }

  /**
   * `RenderFarmFrames`: nothing when the job was stopped or deleted; else the frames not done
   * yet (an earlier attempt's stay done), each stored and marked done as Blender saves it. A job
   * deleted meanwhile: the chunk is abandoned before the next frame is stored (nothing more
   * stored, nothing marked failed).
   */
  renderFrames(p: RenderFarmFramesPayload, ctx: JobContext): Promise<RenderFarmFramesResult> {
    return this.node.runPlain(p.storageId, async () => {
      if ((await this.queue.farmJobStopped(p.job)) || (await this.queue.farmJobRemoved(p.job))) return { node: this.node.nodeId, frames: [] };
      const format = p.settings.format ?? 'PNG';
      if (!Object.hasOwn(FARM_FRAME_FORMATS, format)) throw permanent(`unknown frame format ${String(format)}`);
      const ext = FARM_FRAME_FORMATS[format];
      // Frames stored by an earlier attempt (a node that died mid-chunk) are kept, not rendered again.
      const earlier = doneFrames(await this.queue.farmFrameStates(p.job), p.frames);
      const todo = p.frames.filter((f) => !earlier.has(f));
      const stored = new Map<number, RenderFarmFramesResult['frames'][number]>(earlier);
      const result = () => ({ node: this.node.nodeId, frames: p.frames.filter((f) => stored.has(f)).map((f) => stored.get(f)!) });
      if (todo.length === 0) return result();
      let ws: FarmWorkspace | undefined;
      try {
        ws = await this.workspace.create(`${p.job}-c${p.chunk}`);
        const args = await this.prepare(p, todo, ws, format);
        await this.mark(p.job, todo, { status: 'rendering', node: this.node.nodeId, at: new Date().toISOString() });
        const frameTimeoutMs = this.config.blender.frameTimeoutMs;
        let device: string | undefined;
        const saved = this.blender.render(args, {
          signal: ctx.signal,
          frameTimeoutMs,
          firstFrameTimeoutMs: frameTimeoutMs + STARTUP_MS,
          sandbox: { workspace: ws.dir, readOnly: [FARM_SCRIPT_DIR], gpu: p.source.kind === 'blend' && p.settings.device !== 'CPU' },
          onEvent: (event) => {
            if (event.kind === 'device') device = event.type;
          },
        });
        let rendered = 0;
        for await (const file of saved) {
          const frame = todo[rendered];
          // Only the frame that comes next, in this job's folder: nothing else is read or stored.
          if (frame === undefined || file !== farmFrameFile(ws.out, frame, format)) {
            throw renderFailed(`Blender saved an unexpected file${frame === undefined ? '' : ` (frame ${frame} was next)`}`, [], { internal: file });
          }
          // Cycles falls back to the CPU without a word: the script says which device it set up.
          if (!device) throw renderFailed('Blender did not confirm the device it renders on');
          // Deleted meanwhile: leaving the loop stops Blender; what is stored goes with the job's sweep.
          if (await this.queue.farmJobRemoved(p.job)) {
            this.logger.log(`farm job ${p.job} was deleted: chunk ${p.chunk} abandoned after ${rendered} of ${todo.length} frames`);
            return result();
          }
          const { sha256, bytes } = await this.workspace.digest(file);
          const storageKey = farmFrameKey(p.job, frame);
          await this.storage.storeOutput(storageKey, ext, (to) => this.workspace.copy(file, to));
          await this.workspace.removeFile(file);
          await this.queue.setFarmFrameState(p.job, frame, { status: 'done', node: this.node.nodeId, storageKey, ext, bytes, sha256, at: new Date().toISOString() });
          stored.set(frame, { frame, storageKey, ext, bytes, sha256 });
          rendered++;
          ctx.progress(rendered).catch(() => undefined);
        }
        if (rendered !== todo.length) throw renderFailed(`Blender saved ${rendered} frames of ${todo.length}`);
        return result();
      } catch (err) {
        const failure = farmFailure(err, p.source.kind === 'product' ? 'model' : 'scene');
        if (!ctx.signal.aborted && (ctx.lastAttempt || isPermanent(failure))) {
          const error = shortError(failure);
          if (!(failure instanceof MontageError) || failure.internal) this.logger.warn(`farm job ${p.job} chunk ${p.chunk}: ${(err as Error).message}${failure instanceof MontageError && failure.internal ? ` (${failure.internal})` : ''}`);
          await this.markFailed(p, stored, error).catch(() => undefined);
        }
        throw failure;
      } finally {
        if (ws) await this.workspace.remove(ws);
      }
    });
  }

  /** Frames in one state. */
  private async mark(job: string, frames: number[], state: FrameState): Promise<void> {
    for (const frame of frames) await this.queue.setFarmFrameState(job, frame, state);
  }

  /** The chunk's last failure: its frames failed, but those done (by this attempt or another) and those of a deleted job. */
  private async markFailed(p: RenderFarmFramesPayload, stored: Map<number, unknown>, error: string): Promise<void> {
    if (await this.queue.farmJobRemoved(p.job)) return;
    const done = doneFrames(await this.queue.farmFrameStates(p.job), p.frames);
    const failed = p.frames.filter((f) => !stored.has(f) && !done.has(f));
    await this.mark(p.job, failed, { status: 'failed', node: this.node.nodeId, at: new Date().toISOString(), error });
  }

  /** Lays out the scene's files (or the model) and returns Blender's command. */
  private async prepare(p: RenderFarmFramesPayload, frames: number[], ws: FarmWorkspace, format: keyof typeof FARM_FRAME_FORMATS): Promise<string[]> {
    const threads = this.config.blender.threads;
    if (p.source.kind === 'blend') {
      const [file] = await this.workspace.layOut(ws.files, [p.source.main]);
      const mainPath = p.source.main.path;
      await this.workspace.layOut(ws.files, p.source.files.filter((f) => f.path !== mainPath));
      const { settings } = p;
      return farmRenderArgs({
        file,
        script: FARM_SCRIPT,
        outputDir: ws.out,
        frames,
        format,
        device: settings.device,
        threads,
        job: {
          mode: 'render',
          file,
          folder: ws.files,
          ...(settings.camera ? { camera: settings.camera } : {}),
          ...(settings.renderLayer ? { renderLayer: settings.renderLayer } : {}),
          resolutionPercent: settings.resolutionPercent,
          ...(settings.samples ? { samples: settings.samples } : {}),
          device: settings.device,
        },
      });
    }
    const { model, shot } = p.source;
    if (model.ext !== 'glb' && model.ext !== 'gltf') throw permanent(`the model is a .${model.ext}, not a glTF/GLB`);
    // The model alone, under a name of ours: its own name may be anything.
    const [file] = await this.workspace.layOut(ws.files, [{ ...model, path: `model.${model.ext}` }]);
    return productRenderArgs({ script: FARM_SCRIPT, outputDir: ws.out, frames, threads, format, job: { mode: 'product', model: file, folder: ws.files, shot, device: 'CPU' } });
  }

  /** `InspectScene`: the .blend alone in a folder, read by Blender with scripts off; its inventory. */
  inspect(p: InspectScenePayload, ctx: JobContext): Promise<{ node: string; inventory: SceneInventory }> {
    return this.node.runPlain(undefined, async () => {
      const ws = await this.workspace.create(`inspect-${p.project}`);
      try {
        const [file] = await this.workspace.layOut(ws.files, [p.file], ctx.signal);
        const { value, error } = await this.blender.query(farmInspectArgs(file, FARM_SCRIPT, ws.files), 'MONTAGE_FARM_INVENTORY', this.config.farm.inspectTimeoutMs, { workspace: ws.dir, readOnly: [FARM_SCRIPT_DIR] });
        const unreadable = () => unusableMedia(`${p.file.path} is not a readable .blend file (Blender could not open it)`, [{ field: 'file', message: 'not a readable .blend' }], { permanent: true });
        if (value && typeof value === 'object' && 'unreadable' in value) throw unreadable();
        if (value === undefined) {
          if (/File format is not supported|Cannot read file|not a blend file|Failed to read blend file|Unable to open/i.test(error ?? '')) throw unreadable();
          throw renderFailed(`Blender could not inspect ${p.file.path} on this render node`, [], { internal: error });
        }
        const inventory = parseSceneInventory(value);
        if (!inventory) throw renderFailed(`Blender's inventory of ${p.file.path} is not usable`, [], { internal: JSON.stringify(value).slice(0, 500) });
        return { node: this.node.nodeId, inventory };
      } finally {
        await this.workspace.remove(ws);
      }
    });
  }

  /** `EncodeTurntable`: the stored frames, in order, into an MP4 (and a GIF), each stored under its key. */
  encodeTurntable(p: EncodeTurntablePayload, ctx: JobContext): Promise<EncodeTurntableResult> {
    return this.node.runPlain(p.storageId, async () => {
      if (p.frames.length === 0) throw permanent('a turntable needs frames');
      const ext = p.frames[0].ext;
      if (!TURNTABLE_FRAME_EXTS.includes(ext) || p.frames.some((f) => f.ext !== ext)) throw permanent(`turntable frames must all be ${TURNTABLE_FRAME_EXTS.join(', ')} of one kind`);
      const ws = await this.workspace.create(`${p.job}-turntable`);
      try {
        // Numbered from 1 in the order given, whatever their paths: ffmpeg reads them as one sequence.
        const refs = p.frames.map((f, i) => ({ ...f, path: `t_${String(i + 1).padStart(6, '0')}.${ext}` }));
        await this.workspace.layOut(ws.files, refs, ctx.signal);
        const encode = { input: `${ws.files}/t_%06d.${ext}`, frameRate: p.frameRate, width: p.width, height: p.height };
        let args: { mp4: string[]; gif?: string[] };
        try {
          args = {
            mp4: turntableEncodeArgs({ ...encode, output: `${ws.out}/turntable.mp4` }),
            ...(p.includeGif && p.gifKey ? { gif: turntableGifArgs({ ...encode, output: `${ws.out}/turntable.gif` }) } : {}),
          };
        } catch (err) {
          throw permanent((err as Error).message);
        }
        const mp4 = await this.encode(args.mp4, `${ws.out}/turntable.mp4`, p.mp4Key, 'mp4', ctx);
        const gif = args.gif && p.gifKey ? await this.encode(args.gif, `${ws.out}/turntable.gif`, p.gifKey, 'gif', ctx) : undefined;
        return { node: this.node.nodeId, mp4, ...(gif ? { gif } : {}) };
      } finally {
        await this.workspace.remove(ws);
      }
    });
  }

  private async encode(args: string[], file: string, key: string, ext: 'mp4' | 'gif', ctx: JobContext): Promise<{ bytes: number; frames: number }> {
    await this.media.run(args, { signal: ctx.signal });
    const facts = await this.media.pictureFacts(file);
    const { bytes } = await this.workspace.digest(file);
    await this.storage.storeOutput(key, ext, (to) => this.workspace.copy(file, to));
    return { bytes, frames: facts.frames };
  }
}

/** A failure no other attempt would mend (a job that cannot be right). */
function permanent(message: string): MontageError {
  return renderFailed(message, [], { permanent: true });
}

/**
 * The script's refusals arrive as the template engine's binding errors: said again in the
 * farm's words (a camera or layer that is not there, a file outside the folder), still final.
 */
export function farmFailure(err: unknown, what: 'scene' | 'model'): unknown {
  if (!(err instanceof MontageError) || err.kind !== 'bad_input') return err;
  const messages = err.details.map((d) => d.message);
  const said = messages.length > 0 ? messages.slice(0, 3).join('; ') : err.message;
  return new MontageError('bad_input', `the ${what} cannot be rendered as asked: ${said}`, messages.map((message) => ({ field: what, message })));
}

/** The chunk's frames an earlier attempt stored (done, with where), as a result lists them. */
export function doneFrames(states: Record<number, FrameState>, frames: number[]): Map<number, RenderFarmFramesResult['frames'][number]> {
  const done = new Map<number, RenderFarmFramesResult['frames'][number]>();
  for (const frame of frames) {
    const s = states[frame];
    if (s?.status === 'done' && s.storageKey && s.ext && s.bytes !== undefined && s.sha256) done.set(frame, { frame, storageKey: s.storageKey, ext: s.ext, bytes: s.bytes, sha256: s.sha256 });
  }
  return done;
}

/** What a frame's state says about its failure: the error's own message (never a stack), or a plain sentence. */
function shortError(err: unknown): string {
  if (err instanceof MontageError) return err.message.slice(0, 300);
  return 'the render failed on the render node (its log has the details)';
}
