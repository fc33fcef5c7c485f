import { Inject, Injectable } from '@nestjs/common';
import type { RenderDoc } from '../renders/render.types';
import { type Collection, DOCUMENT_STORE, type DocumentStore } from '../repositories/document-store/port';

/** How often one output's last access is written: outputs live for days, a write per GET would be waste. */
const WRITE_EVERY_MS = 10 * 60_000;

/**
 * When each stored output was last fetched (`lastAccessAt`), for expiry after OUTPUT_TTL_DAYS
 * without a fetch. Written at most every ten minutes per output and process, after the
 * answer, so serving a stored output never waits for the store.
 */
@Injectable()
export class OutputAccessService {
  private readonly renders: Collection<RenderDoc>;
  private readonly written = new Map<string, number>();

  constructor(@Inject(DOCUMENT_STORE) store: DocumentStore) {
    this.renders = store.collection<RenderDoc>('renders');
  }

  /**
   * A stored output was served. The same write records it done when its record still says it
   * renders (nobody followed its run to the end: the API that started it stopped).
   */
  noteAccess(key: string, bytes: number): void {
    const now = Date.now();
    if (now - (this.written.get(key) ?? 0) < WRITE_EVERY_MS) return;
    this.written.set(key, now);
    if (this.written.size > 100_000) this.written.delete(this.written.keys().next().value!);
    const at = new Date(now).toISOString();
    void this.renders
      .findOneAndUpdate({ _id: key, status: { $in: ['done', 'queued', 'rendering', 'failed'] } }, { $set: { status: 'done', bytes, lastAccessAt: at }, $unset: { error: 1 } })
      .catch(() => this.written.delete(key));
  }
}
