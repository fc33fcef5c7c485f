import { Inject, Injectable } from '@nestjs/common';
import { OUTPUT_STORAGE, type OutputStorage, REUSABLE_NAME } from '../repositories/output-storage/port';
import { type Collection, DOCUMENT_STORE, type DocumentStore } from '../repositories/document-store/port';
import type { RenderDoc, TokenDoc } from './render.types';

/** Removing tokens and outputs: for DELETE /v2/token and for the sweeper (expired tokens, expired outputs). */
@Injectable()
export class TokenRemoval {
  private readonly tokens: Collection<TokenDoc>;
  private readonly renders: Collection<RenderDoc>;
  /** The token's upload tasks (sealed credentials): they go with it, and a queued job then finds nothing to do. */
  private readonly uploads: Collection<{ _id: string; token: string }>;

  constructor(
    @Inject(DOCUMENT_STORE) store: DocumentStore,
    @Inject(OUTPUT_STORAGE) private readonly storage: OutputStorage,
  ) {
    this.tokens = store.collection<TokenDoc>('tokens');
    this.renders = store.collection<RenderDoc>('renders');
    this.uploads = store.collection('uploads');
  }

  /** The token, and every output no other token shares (nor a render under way). Returns how many outputs went. */
  async removeToken(token: TokenDoc): Promise<number> {
    let outputsRemoved = 0;
    for (const key of token.renderKeys) {
      const sharedBy = await this.tokens.countDocuments({ renderKeys: key, _id: { $ne: token._id } });
      if (sharedBy > 0) continue;
      const doc = await this.renders.findOne({ _id: key });
      if (doc && (await this.removeOutput(doc))) outputsRemoved++;
    }
    if (token.upload?.length) await this.uploads.deleteMany({ token: token._id });
    await this.tokens.deleteOne({ _id: token._id });
    await this.removeUnusedPieces(token.pieces ?? []);
    return outputsRemoved;
  }

  /** A stored output and its record; a later GET of a token that asks for it renders it again. */
  async removeOutput(doc: RenderDoc): Promise<boolean> {
    // A render under way (on any process) keeps its record: its nodes store the output at the end.
    if (doc.status === 'queued' || doc.status === 'rendering') return false;
    const removed = (await this.renders.deleteOne({ _id: doc._id, status: { $in: ['done', 'failed', 'pending'] } })) > 0;
    if (removed) {
      await this.storage.remove(doc._id, doc.format);
      await this.removeUnusedPieces(doc.pieces ?? []);
    }
    return removed;
  }

  /**
   * Reusable segments that no output record and no token names any more: they may draw the
   * params of what was removed (a person's name), so they do not stay behind it.
   */
  private async removeUnusedPieces(names: string[]): Promise<void> {
    for (const name of names) {
      const m = REUSABLE_NAME.exec(name);
      if (!m) continue;
      if ((await this.renders.countDocuments({ pieces: name })) > 0 || (await this.tokens.countDocuments({ pieces: name })) > 0) continue;
      await this.storage.remove(m[1], m[2]).catch(() => undefined);
    }
  }
}
