import { Inject, Injectable, Logger } from '@nestjs/common';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { badInput, forbidden, notFound, unauthorized } from '../common/errors';
import { DuplicateKeyError } from '../repositories/document-store/port';
import { DEFAULT_LIMITS, type ProjectDoc, type ProjectLimits, PROJECTS_REPOSITORY, type ProjectsRepository, SETTABLE_LIMITS } from './project.types';
import { verify } from './url-signing';

const PROJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export const hashKey = (key: string) => createHash('sha256').update(key).digest('hex');
/** A short, stable id of an API key (never the key): whose limits a request spends. */
export const keyIdOf = (apiKey: string) => hashKey(apiKey).slice(0, 16);

/** Projects, their API keys (stored hashed) and URL-signing secrets. */
@Injectable()
export class ProjectsService {
  private readonly logger = new Logger('Projects');

  constructor(@Inject(PROJECTS_REPOSITORY) private readonly projects: ProjectsRepository) {}

  /** Creates a project; the API key is returned here and never again. */
  async create(name: string, options: { public?: boolean } = {}): Promise<{ project: ProjectDoc; apiKey: string }> {
    if (!PROJECT_NAME.test(name)) {
      throw badInput(`project names are 1–64 letters, digits, - and _, starting with a letter or digit`, [{ field: 'name', message: 'invalid project name' }]);
    }
    const apiKey = `mk_${randomBytes(24).toString('base64url')}`;
    const project: ProjectDoc = {
      _id: name,
      keyHashes: [hashKey(apiKey)],
      signingSecret: randomBytes(32).toString('hex'),
      public: options.public ?? false,
      limits: { ...DEFAULT_LIMITS },
      createdAt: new Date().toISOString(),
    };
    try {
      await this.projects.create(project);
    } catch (err) {
      if (err instanceof DuplicateKeyError) throw badInput(`project "${name}" already exists`, [{ field: 'name', message: 'taken' }]);
      throw err;
    }
    return { project, apiKey };
  }

  /** Adds a new key to a project (the old ones keep working until removed by hand). */
  async addKey(name: string): Promise<string> {
    const project = await this.get(name);
    const apiKey = `mk_${randomBytes(24).toString('base64url')}`;
    await this.projects.save({ ...project, keyHashes: [...project.keyHashes, hashKey(apiKey)] });
    return apiKey;
  }

  /**
   * Sets some of a project's limits (whole numbers ≥ 0, 0 meaning none) and drops others back to
   * the service's defaults. A running service reads them at its next request.
   */
  async setLimits(name: string, set: Partial<Record<keyof ProjectLimits, number>>, unset: string[] = []): Promise<ProjectDoc> {
    const project = await this.get(name);
    const known = new Set<string>(SETTABLE_LIMITS);
    for (const key of [...Object.keys(set), ...unset]) {
      if (!known.has(key)) throw badInput(`unknown limit "${key}"; the limits are ${SETTABLE_LIMITS.join(', ')}`, [{ field: key, message: 'unknown limit' }]);
    }
    for (const [key, value] of Object.entries(set)) {
      if (!Number.isSafeInteger(value) || value! < 0) throw badInput(`${key} must be a whole number ≥ 0 (0: no limit)`, [{ field: key, message: 'not a whole number ≥ 0' }]);
    }
    const limits: Record<string, number | undefined> = { ...DEFAULT_LIMITS, ...project.limits, ...set };
    for (const key of unset) {
      limits[key] = key in DEFAULT_LIMITS ? DEFAULT_LIMITS[key as keyof typeof DEFAULT_LIMITS] : undefined;
      if (limits[key] === undefined) delete limits[key];
    }
    const saved = { ...project, limits: limits as unknown as ProjectLimits };
    await this.projects.save(saved);
    return saved;
  }

  async get(name: string): Promise<ProjectDoc> {
    const project = await this.projects.get(name);
    if (!project) throw notFound(`unknown project "${name.slice(0, 64)}"`, [{ field: 'project', message: 'unknown project' }]);
    return project;
  }

  async find(name: string): Promise<ProjectDoc | undefined> {
    return this.projects.get(name);
  }

  list(): Promise<ProjectDoc[]> {
    return this.projects.list();
  }

  /** 401 without a key or with a key no project has; 403 with another project's key. */
  async authenticate(projectId: string, key: string | undefined): Promise<ProjectDoc> {
    if (!key) throw unauthorized('an API key is required: send "Authorization: Bearer <key>" or "X-Api-Key: <key>"');
    const hash = hashKey(key);
    const project = await this.projects.get(projectId);
    if (project && project.keyHashes.some((h) => safeEqual(h, hash))) return project;
    const owner = await this.projects.findByKeyHash(hash);
    if (owner) throw forbidden(`this API key belongs to another project, not "${projectId.slice(0, 64)}"`);
    if (!project) throw unauthorized('invalid API key');
    throw unauthorized('invalid API key');
  }

  /** The project a key belongs to, for APIs whose requests name no project (the farm's Rentaflop and VNTANA shapes): 401 otherwise. */
  async authenticateKey(key: string | undefined): Promise<ProjectDoc> {
    if (!key) throw unauthorized('an API key is required: send "Authorization: Bearer <key>", "X-Api-Key: <key>" or "api_key" in the JSON body');
    const owner = await this.projects.findByKeyHash(hashKey(key));
    if (!owner) throw unauthorized('invalid API key');
    return owner;
  }

  /** Whether some project holds this key (for details only key holders see). */
  async isValidKey(key: string): Promise<boolean> {
    return !!(await this.projects.findByKeyHash(hashKey(key)).catch(() => undefined));
  }

  /** For signed direct-render URLs; public projects need no signature. */
  async checkSignature(projectId: string, path: string, query: Record<string, string>): Promise<ProjectDoc> {
    const project = await this.get(projectId);
    if (project.public) return project;
    if (!verify(project.signingSecret, path, query, query.sig)) {
      throw forbidden('missing or invalid URL signature (sig); make signed URLs with `montage sign-url`');
    }
    return project;
  }

  /**
   * The embedded default ships a `demo` project: created on first start, its key written to
   * a file only the owner can read, so the README can show where to find it.
   */
  async ensureProject(name: string, writeKey: (key: string) => Promise<string>): Promise<void> {
    if (await this.projects.get(name)) return;
    try {
      const { apiKey } = await this.create(name);
      const file = await writeKey(apiKey);
      this.logger.log(`created project "${name}"; its API key is in ${file}`);
    } catch (err) {
      if (!(err instanceof Error && /already exists/.test(err.message))) throw err;
    }
  }
}

function safeEqual(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}
