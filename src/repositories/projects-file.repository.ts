import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { ProjectDoc, ProjectsRepository } from '../projects/project.types';
import { DuplicateKeyError } from './document-store/port';

/**
 * Projects as one JSON file each under `<dataDir>/projects/`. Used with the embedded store:
 * the service and `montage projects create` are separate processes, and NeDB files belong to
 * one process, while small files written by rename can be shared.
 */
export class FileProjectsRepository implements ProjectsRepository {
  constructor(private readonly dir: string) {}

  async get(id: string): Promise<ProjectDoc | undefined> {
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(id)) return undefined;
    try {
      return JSON.parse(await fs.readFile(path.join(this.dir, `${id}.json`), 'utf8')) as ProjectDoc;
    } catch {
      return undefined;
    }
  }

  async findByKeyHash(hash: string): Promise<ProjectDoc | undefined> {
    return (await this.list()).find((p) => p.keyHashes.includes(hash));
  }

  async create(doc: ProjectDoc): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    try {
      // 'wx': fails if the file exists, so two creators cannot both win
      await fs.writeFile(path.join(this.dir, `${doc._id}.json`), JSON.stringify(doc, null, 2), { flag: 'wx', mode: 0o600 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new DuplicateKeyError(`project ${doc._id} exists`);
      throw err;
    }
  }

  async save(doc: ProjectDoc): Promise<void> {
    const file = path.join(this.dir, `${doc._id}.json`);
    const temp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(temp, JSON.stringify(doc, null, 2), { mode: 0o600 });
    await fs.rename(temp, file);
  }

  async list(): Promise<ProjectDoc[]> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    const docs = await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => this.get(n.slice(0, -5))));
    return docs.filter((d): d is ProjectDoc => !!d);
  }
}
