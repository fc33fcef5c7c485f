import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  BlenderRepository,
  type EncodeTurntablePayload,
  type EncodeTurntableResult,
  FARM_FRAME_FORMATS,
  FARM_SCRIPT,
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

  /** `RenderFarmFrames`: nothing when the job was stopped; else the frames, each stored and marked done as Blender saves it. */
  renderFrames(p: RenderFarmFramesPayload, ctx: JobContext): Promise<RenderFarmFramesResult> {
    return this.node.runPlain(p.storageId, async () => {
      if (await this.queue.farmJobStopped(p.job)) return { node: this.node.nodeId, frames: [] };
      const format = p.settings.format ?? 'PNG';
      if (!Object.hasOwn(FARM_FRAME_FORMATS, format)) throw permanent(`unknown frame format ${String(format)}`);
      const ext = FARM_FRAME_FORMATS[format];
      const frames: RenderFarmFramesResult['frames'] = [];
      let ws: FarmWorkspace | undefined;
      try {
        ws = await this.workspace.create(`${p.job}-c${p.chunk}`);
        const args = await this.prepare(p, ws, format);
        await this.markAll(p, 'rendering');
        const frameTimeoutMs = this.config.blender.frameTimeoutMs;
        let device: string | undefined;
        const saved = this.blender.render(args, {
          signal: ctx.signal,
          frameTimeoutMs,
          firstFrameTimeoutMs: frameTimeoutMs + STARTUP_MS,
          onEvent: (event) => {
            if (event.kind === 'device') device = event.type;
          },
        });
        for await (const file of saved) {
          const frame = p.frames[frames.length];
          // Only the frame that comes next, in this job's folder: nothing else is read or stored.
          if (frame === undefined || file !== farmFrameFile(ws.out, frame, format)) {
            throw renderFailed(`Blender saved an unexpected file${frame === undefined ? '' : ` (frame ${frame} was next)`}`, [], { internal: file });
          }
          // Cycles falls back to the CPU without a word: the script says which device it set up.
          if (!device) throw renderFailed('Blender did not confirm the device it renders on');
          const { sha256, bytes } = await this.workspace.digest(file);
          const storageKey = farmFrameKey(p.job, frame);
          await this.storage.storeOutput(storageKey, ext, (to) => this.workspace.copy(file, to));
          await this.workspace.removeFile(file);
          await this.queue.setFarmFrameState(p.job, frame, { status: 'done', node: this.node.nodeId, storageKey, ext, bytes, sha256, at: new Date().toISOString() });
          frames.push({ frame, storageKey, ext, bytes, sha256 });
          ctx.progress(frames.length).catch(() => undefined);
        }
        if (frames.length !== p.frames.length) throw renderFailed(`Blender saved ${frames.length} frames of ${p.frames.length}`);
        return { node: this.node.nodeId, frames };
      } catch (err) {
        const failure = farmFailure(err, p.source.kind === 'product' ? 'model' : 'scene');
        if (!ctx.signal.aborted && (ctx.lastAttempt || isPermanent(failure))) {
          const error = shortError(failure);
          if (!(failure instanceof MontageError) || failure.internal) this.logger.warn(`farm job ${p.job} chunk ${p.chunk}: ${(err as Error).message}${failure instanceof MontageError && failure.internal ? ` (${failure.internal})` : ''}`);
          const done = new Set(frames.map((f) => f.frame));
          await this.markAll(p, 'failed', error, done).catch(() => undefined);
        }
        throw failure;
      } finally {
        if (ws) await this.workspace.remove(ws);
      }
    });
  }

  /** Lays out the scene's files (or the model) and returns Blender's command. */
  private async prepare(p: RenderFarmFramesPayload, ws: FarmWorkspace, format: keyof typeof FARM_FRAME_FORMATS): Promise<string[]> {
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
        frames: p.frames,
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
    return productRenderArgs({ script: FARM_SCRIPT, outputDir: ws.out, frames: p.frames, threads, format, job: { mode: 'product', model: file, folder: ws.files, shot, device: 'CPU' } });
  }

  /** Every frame of the chunk (but `except`) in one state. */
  private async markAll(p: RenderFarmFramesPayload, status: 'rendering' | 'failed', error?: string, except = new Set<number>()): Promise<void> {
    const at = new Date().toISOString();
    const state: FrameState = { status, node: this.node.nodeId, at, ...(error ? { error } : {}) };
    for (const frame of p.frames) if (!except.has(frame)) await this.queue.setFarmFrameState(p.job, frame, state);
  }

  /** `InspectScene`: the .blend alone in a folder, read by Blender with scripts off; its inventory. */
  inspect(p: InspectScenePayload, ctx: JobContext): Promise<{ node: string; inventory: SceneInventory }> {
    return this.node.runPlain(undefined, async () => {
      const ws = await this.workspace.create(`inspect-${p.project}`);
      try {
        const [file] = await this.workspace.layOut(ws.files, [p.file], ctx.signal);
        const { value, error } = await this.blender.query(farmInspectArgs(file, FARM_SCRIPT, ws.files), 'MONTAGE_FARM_INVENTORY', this.config.farm.inspectTimeoutMs);
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

/** What a frame's state says about its failure: the error's own message (never a stack), or a plain sentence. */
function shortError(err: unknown): string {
  if (err instanceof MontageError) return err.message.slice(0, 300);
  return 'the render failed on the render node (its log has the details)';
}
