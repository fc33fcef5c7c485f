import { Inject, Injectable, Logger } from '@nestjs/common';
import * as os from 'node:os';
import { MontageError, renderFailed } from '../src/common/errors';
import type { JobContext, RenderSegmentPayload, RenderSegmentResult } from '../src/jobs/job.types';
import { RenderService } from '../src/render/render.service';
import { WorkFilesRepository } from '../src/repositories/work-files.repository';
import { countFragmentedSamples } from '../src/streaming/fmp4-joiner';
import { countIvfFrames } from '../src/streaming/ivf-joiner';
import { OUTPUT_STORAGE, type OutputStorage } from '../src/repositories/output-storage/port';

/** The RenderSegment handler: one frame range rendered with the renderer core, checked, stored. */
@Injectable()
export class SegmentRenderer {
  readonly nodeId = `${os.hostname()}-${process.pid}`;
  running = 0;
  private readonly logger = new Logger('RenderNode');
  private storageId?: string;

  constructor(
    private readonly renders: RenderService,
    private readonly work: WorkFilesRepository,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
  ) {}

  /**
   * A node with another STORAGE_URL would store segments where the API never looks: it
   * refuses the job for good (no retry), and says why in its own log.
   */
  private async checkStorage(expected: string | undefined): Promise<void> {
    if (!expected || expected === this.storageId) return;
    this.storageId = await this.storage.identity(); // read again: the API may have made it since
    if (expected === this.storageId) return;
    this.logger.error(
      `segments of this API go to another storage than this node's (${this.storage.description}, id ${this.storageId ?? 'none'}; the API's id is ${expected}): give the API and every node the same STORAGE_URL`,
    );
    throw new MontageError('bad_input', "a render node's storage is not the API's: give the API and every node the same STORAGE_URL (the node's log says more)");
  }

  async render(payload: RenderSegmentPayload, ctx: JobContext): Promise<RenderSegmentResult> {
    this.running++;
    try {
      await this.checkStorage(payload.storageId);
      const frames = payload.range.to - payload.range.from;
      let reported = 0;
      // Stored only once rendered and checked: a short segment would corrupt the stream.
      const bytes = await this.storage.storeSegment(payload.segment, async (file) => {
        const result = await this.renders.render(
          {
            project: payload.project,
            movie: payload.movie,
            params: payload.params,
            profile: payload.profile,
            range: payload.range,
            templateVersion: payload.templateVersion,
          },
          file,
          (p) => {
            // a few progress events a second is plenty for a viewer's progress bar
            if (p.framesDone - reported >= 10 || p.framesDone === frames) {
              reported = p.framesDone;
              ctx.progress(p.framesDone).catch(() => undefined); // Redis away: progress is for people, not a reason to fail
            }
          },
          { signal: ctx.signal }, // a node that shuts down stops the encoder and hands the segment back
        );
        // Counted in the file itself (fMP4 samples, IVF frames): as strict as ffprobe, without its start-up.
        let counted: number;
        try {
          const data = await this.work.read(file);
          counted = payload.profile.container === 'ivf' ? countIvfFrames(data) : countFragmentedSamples(data);
        } catch (err) {
          throw renderFailed(`segment ${payload.range.from}-${payload.range.to} could not be read back after rendering`, [], { internal: (err as Error).message });
        }
        if (counted !== frames) throw renderFailed(`segment ${payload.range.from}-${payload.range.to} has ${counted} frames, expected ${frames}`);
        return result.bytes;
      });
      // In a render flow, the segment before this one in its lane is its child: carry the count up.
      const below = (await ctx.childrenValues()) as RenderSegmentResult[];
      const laneFrames = frames + below.reduce((sum, r) => sum + r.laneFrames, 0);
      const laneSegments = 1 + below.reduce((sum, r) => sum + r.laneSegments, 0);
      return { segment: payload.segment, frames, bytes, node: this.nodeId, laneFrames, laneSegments };
    } finally {
      this.running--;
    }
  }
}
