import type { Collection, DocumentStore } from '../repositories/document-store/port';
import type { ProjectDoc, ProjectsRepository } from './project.types';

/** Projects in the document store (MongoDB), shared by every API process. */
export class StoreProjectsRepository implements ProjectsRepository {
  private readonly projects: Collection<ProjectDoc>;

  constructor(store: DocumentStore) {
    this.projects = store.collection<ProjectDoc>('projects');
  }

  async get(id: string): Promise<ProjectDoc | undefined> {
    return (await this.projects.findOne({ _id: id })) ?? undefined;
  }

  async findByKeyHash(hash: string): Promise<ProjectDoc | undefined> {
    return (await this.projects.findOne({ keyHashes: hash })) ?? undefined;
  }

  create(doc: ProjectDoc): Promise<void> {
    return this.projects.insertOne(doc);
  }

  async save(doc: ProjectDoc): Promise<void> {
    const { _id, ...rest } = doc;
    await this.projects.findOneAndUpdate({ _id }, { $set: rest }, { upsert: true });
  }

  list(): Promise<ProjectDoc[]> {
    return this.projects.find({}, { sort: { _id: 1 } });
  }
}
