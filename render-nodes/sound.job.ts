import { Injectable } from '@nestjs/common';
import { Inject } from '@nestjs/common';
import { EngineRegistry, type JobContext, LiveFilesRepository, OUTPUT_STORAGE, type OutputStorage, renderFailed, type RenderSoundPayload } from '../src/render-node-kit';
import { NodeJobs, requestOf } from './node-jobs';

/**
 * `RenderSound`: play mode's sound track, the movie's audio tracks and clips mixed once into
 * AAC fragmented every 2 s, stored under its key (what it is mixed from: tokens with the same
 * sound share it). Stored already: nothing to do.
 */
@Injectable()
export class SoundJob {
  constructor(
    private readonly node: NodeJobs,
    private readonly engines: EngineRegistry,
    private readonly files: LiveFilesRepository,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
  ) {}

  run(payload: RenderSoundPayload, ctx: JobContext): Promise<{ bytes: number; node: string; reused?: boolean }> {
    return this.node.run(payload, ctx, async () => {
      const track = await this.engines.get(payload.engine).soundTrack(requestOf(payload), 'hls');
      // The API keyed it from its own copy of the template: another version here would store the wrong sound under that key.
      if (track.key !== payload.soundKey) throw renderFailed(`this node mixes sound ${track.key}, the API asked for ${payload.soundKey}: their templates differ`);
      const stored = await this.storage.stat(track.key, track.ext).catch(() => undefined);
      if (stored) return { bytes: stored.size, node: this.node.nodeId, reused: true };
      const file = this.files.livePath(`${track.key}-sound`, track.ext);
      try {
        await track.make(file, ctx.signal);
        await this.storage.storeOutput(track.key, track.ext, (out) => this.files.copy(file, out));
        const done = await this.storage.stat(track.key, track.ext);
        return { bytes: done?.size ?? 0, node: this.node.nodeId };
      } finally {
        await this.files.remove(file);
      }
    });
  }
}
