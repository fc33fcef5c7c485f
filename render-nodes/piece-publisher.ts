import { Inject, Injectable } from '@nestjs/common';
import { fragmentChunker, type FragmentKind, LIVE_STREAM, LiveFilesRepository, type LiveStreamRepository } from '../src/render-node-kit';

/** Publishes a file an encoder is writing, piece by piece, on a live channel. */
@Injectable()
export class PiecePublisher {
  constructor(
    @Inject(LIVE_STREAM) private readonly live: LiveStreamRepository,
    private readonly files: LiveFilesRepository,
  ) {}

  /**
   * Follows `file` while `writing` runs and publishes every whole piece as soon as it is
   * written (as attempt `attempt`, numbered from 0). Resolves once the writer is done and
   * every piece is out; rejects with the writer's error (pieces published stay: a retry
   * publishes them again and readers skip the copies).
   */
  async publishWhileWriting(
    file: string,
    kind: FragmentKind,
    channel: string,
    attempt: number,
    writing: Promise<unknown>,
    onPiece?: (piece: Buffer) => void,
    stop?: AbortController,
  ): Promise<{ pieces: number; bytes: number }> {
    let done = false;
    writing.then(
      () => (done = true),
      () => (done = true),
    );
    const chunker = fragmentChunker(kind);
    let seq = 0;
    let bytes = 0;
    const publish = async (pieces: Buffer[]) => {
      for (const data of pieces) {
        onPiece?.(data);
        bytes += data.length;
        await this.live.append(channel, { kind: 'data', attempt, seq: seq++, data });
      }
    };
    try {
      // The encoder creates its output once its inputs are open.
      while (!done && !(await this.files.exists(file))) await sleep(10);
      if (await this.files.exists(file)) {
        for await (const data of this.files.follow(file, () => done, () => sleep(10))) await publish(chunker.push(data));
      }
      await writing;
      await publish(chunker.end());
    } catch (err) {
      // Publishing failed (Redis away, a malformed output): the encoder stops too, not left writing for nobody.
      stop?.abort();
      await writing.catch(() => undefined);
      throw err;
    }
    return { pieces: seq, bytes };
  }

  /** A whole file's bytes (a stored segment), published as the pieces its writer published. */
  async publishWhole(data: Buffer, kind: FragmentKind, channel: string, attempt: number, onPiece?: (piece: Buffer) => void): Promise<{ pieces: number; bytes: number }> {
    const chunker = fragmentChunker(kind);
    let seq = 0;
    for (const piece of [...chunker.push(data), ...chunker.end()]) {
      onPiece?.(piece);
      await this.live.append(channel, { kind: 'data', attempt, seq: seq++, data: piece });
    }
    return { pieces: seq, bytes: data.length };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
