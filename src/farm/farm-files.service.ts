import { Injectable } from '@nestjs/common';
import { notFound } from '../common/errors';
import { FarmStore } from './farm-store';
import type { FarmFileDoc, FarmFileRef } from './farm.types';

/**
 * PLACEHOLDER until the farm-files slice lands (theirs replaces this file): the lookups the job
 * API and products need, over the `farm_files` collection, with the agreed signatures.
 */
@Injectable()
export class FarmFilesService {
  constructor(private readonly store: FarmStore) {}

  async get(project: string, uploadId: string): Promise<FarmFileDoc> {
    const doc = typeof uploadId === 'string' && uploadId.length <= 128 ? await this.store.files.findOne({ _id: uploadId, project }) : null;
    if (!doc) throw notFound('unknown upload_id', [{ field: 'upload_id', message: 'no upload of this project has this id' }]);
    return doc;
  }

  async byPath(project: string, path: string): Promise<FarmFileDoc> {
    const [doc] = typeof path === 'string' && path.length <= 1024 ? await this.store.files.find({ project, path }, { sort: { createdAt: -1 }, limit: 1 }) : [];
    if (!doc) throw notFound('no uploaded file has this path', [{ field: 'input_scene_path', message: 'no uploaded file has this path' }]);
    return doc;
  }

  async filesBeside(project: string, main: FarmFileDoc): Promise<FarmFileRef[]> {
    const folder = main.path.includes('/') ? main.path.slice(0, main.path.lastIndexOf('/') + 1) : '';
    const newest = new Map<string, FarmFileDoc>();
    for (const doc of await this.store.files.find({ project }, { sort: { createdAt: 1 }, limit: 20_000 })) {
      if (doc.path !== main.path && doc.path.startsWith(folder)) newest.set(doc.path, doc);
    }
    return [...newest.values()].map((d) => this.ref(d));
  }

  ref(doc: FarmFileDoc): FarmFileRef {
    return { path: doc.path, storageKey: doc.storageKey, ext: doc.ext, sha256: doc.sha256, size: doc.size };
  }
}
