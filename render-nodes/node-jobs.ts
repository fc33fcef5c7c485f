import { Inject, Injectable, Logger } from '@nestjs/common';
import * as os from 'node:os';
import {
  EngineName,
  type EngineRenderResult,
  type EngineRequest,
  JOB_QUEUE,
  type JobQueueRepository,
  RetryLater,
  LIVE_STREAM,
  type LiveStreamRepository,
  isPermanent,
  MontageError,
  OUTPUT_STORAGE,
  type OutputStorage,
  type JobContext,
  type RenderTarget,
} from '../src/render-node-kit';

/** What every job handler of this node shares: its identity, its storage check, its failure report. */
@Injectable()
export class NodeJobs {
  readonly nodeId = `${os.hostname()}-${process.pid}`;
  running = 0;
  private readonly logger = new Logger('RenderNode');
  private storageId?: string;

  constructor(
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
    @Inject(LIVE_STREAM) private readonly live: LiveStreamRepository,
    @Inject(JOB_QUEUE) private readonly queue: JobQueueRepository,
  ) {}

  /**
   * Runs one job: counted while it runs; a failure that is the render's for good (no attempt
   * left, or bad input) is published on the job's channel, so every viewer sees it at once.
   */
  async run<T>(target: RenderTarget, ctx: JobContext, work: () => Promise<T>, piece?: string): Promise<T> {
    const flamencoRules = piece !== undefined && target.engine === EngineName.Blender;
    if (flamencoRules) await this.declineIfFailedHere(target, piece);
    this.running++;
    try {
      await this.checkStorage(target.storageId);
      return await work();
    } catch (err) {
      if (flamencoRules && !ctx.signal.aborted && !isPermanent(err)) {
        await this.queue.noteRenderFailure(runKeyOf(target), piece, this.nodeId).catch(() => undefined);
      }
      const final = !ctx.signal.aborted && (ctx.lastAttempt || isPermanent(err));
      if (final) {
        const entry =
          err instanceof MontageError
            ? { kind: 'error' as const, message: err.message, errorKind: err.kind, details: err.details }
            : { kind: 'error' as const, message: 'the render failed unexpectedly (the render node log has the details)' };
        await this.live.append(target.channel, entry).catch(() => undefined);
      }
      throw err;
    } finally {
      this.running--;
    }
  }

  /**
   * Runs a job that has no live channel (farm jobs: their progress is frame states in Redis):
   * counted while it runs, refused for good on a node with another storage than the API's.
   */
  async runPlain<T>(storageId: string | undefined, work: () => Promise<T>): Promise<T> {
    this.running++;
    try {
      await this.checkStorage(storageId);
      return await work();
    } finally {
      this.running--;
    }
  }

  /**
   * Flamenco's rules for jobs that fail on a node: one this node failed before, or any job of a
   * run of which this node failed three, goes back (no attempt spent) to another live node that
   * can take it, if there is one; with no other node, this one tries again.
   */
  private async declineIfFailedHere(target: RenderTarget, piece: string): Promise<void> {
    const failures = await this.queue.renderFailures(runKeyOf(target), piece).catch(() => undefined);
    if (!failures) return;
    const blocked = (node: string) => failures.jobNodes.includes(node) || (failures.runFailures[node] ?? 0) >= FAILURES_PER_NODE;
    if (!blocked(this.nodeId)) return;
    const device = target.device ?? 'CPU';
    const others = (await this.queue.liveNodes().catch(() => []))
      .filter((n) => n.id !== this.nodeId && !blocked(n.id) && n.engines.includes(target.engine))
      .filter((n) => !target.routingKey || n.routingKeys.includes(target.routingKey))
      .filter((n) => device === 'CPU' || (n.blender?.devices ?? []).includes(device));
    if (others.length === 0) return;
    // Handed on for long (the other nodes busy with newer work: a delayed job goes back behind them): run it here.
    const since = await this.queue.handedOnSince(runKeyOf(target), piece).catch(() => Date.now());
    if (Date.now() - since > HAND_ON_FOR_MS) return;
    throw new RetryLater(1000, `failed on ${this.nodeId} before: left to ${others.map((n) => n.id).join(', ')}`);
  }

  /** What a scene's frames took: the next render of it is cut into chunks of about the target time. */
  noteTiming(target: RenderTarget, what: string, timing: EngineRenderResult['timing']): void {
    if (!timing) return;
    const share = timing.totalSeconds > 0 ? Math.round((timing.startupSeconds / timing.totalSeconds) * 100) : 0;
    this.logger.log(
      `${target.engine} ${what}: ${timing.secondsPerFrame.toFixed(3)} s per frame, start-up ${timing.startupSeconds.toFixed(2)} s of ${timing.totalSeconds.toFixed(2)} s (${share} %)`,
    );
    void this.queue.recordTiming(timing.key, timing.secondsPerFrame).catch(() => undefined);
  }

  /** Progress of one piece of work (`field`), a few writes a second at most. */
  progress(target: RenderTarget, field: string, ctx: JobContext): (frames: number) => void {
    let last = 0;
    return (frames) => {
      const now = Date.now();
      if (now - last < 250) return;
      last = now;
      this.live.setProgress(target.progressKey, field, frames).catch(() => undefined); // progress is for people
      ctx.progress(frames).catch(() => undefined);
    };
  }

  /**
   * A node with another STORAGE_URL would store outputs where the API never looks: it
   * refuses the job for good (no retry), and says why in its own log.
   */
  private async checkStorage(expected: string | undefined): Promise<void> {
    if (!expected || expected === this.storageId) return;
    this.storageId = await this.storage.identity(); // read again: the API may have made it since
    if (expected === this.storageId) return;
    this.logger.error(
      `outputs of this API go to another storage than this node's (${this.storage.description}, id ${this.storageId ?? 'none'}; the API's id is ${expected}): give the API and every node the same STORAGE_URL`,
    );
    throw new MontageError('render_failed', "a render node's storage is not the API's: give the API and every node the same STORAGE_URL (the node's log says more)", [], { permanent: true });
  }
}

/** A node that failed this many jobs of a run is given no more of it. */
const FAILURES_PER_NODE = 3;
/** How long a failed job waits for another node before the one that failed it tries again. */
const HAND_ON_FOR_MS = 30_000;

const runKeyOf = (target: RenderTarget) => `${target.renderKey}-r${target.run}`;

/** The engine's request of a job. */
export function requestOf(target: RenderTarget, extra: Partial<EngineRequest> = {}): EngineRequest {
  return { project: target.project, movie: target.movie, params: target.params, templateVersion: target.templateVersion, profile: target.profile, ...extra };
}

/** An abort controller that also aborts with `signal` (the node handing its job back). */
export function linked(signal: AbortSignal): AbortController {
  const controller = new AbortController();
  if (signal.aborted) controller.abort();
  else signal.addEventListener('abort', () => controller.abort(), { once: true });
  return controller;
}
