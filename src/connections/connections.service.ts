import { Inject, Injectable } from '@nestjs/common';
import { badInput, notFound } from '../common/errors';
import { type Collection, DOCUMENT_STORE, type DocumentStore } from '../repositories/document-store/port';
import { NEEDS_FILENAME, connectionName, describeDestination, destinationSchema, type DestinationInput } from '../uploads/destinations';
import { SecretBox } from '../secrets/secret-box';
import { ProjectsService } from '../projects/projects.service';
import type { Destination } from '../repositories/upload-target/port';

/** A named destination of a project: its whole definition sealed (keys, tokens, passwords, SAS URLs). */
export interface ConnectionDoc {
  _id: string;
  project: string;
  name: string;
  type: string;
  /** SecretBox-sealed JSON of the destination. */
  sealed: string;
  /** Where it goes, without credentials: what listings show. */
  summary: string;
  createdAt: string;
  updatedAt: string;
}

export interface ConnectionView {
  name: string;
  type: string;
  destination: string;
  createdAt: string;
  updatedAt: string;
}

/** Tasks that name a connection and give no filename get this one (token and extension). */
export const DEFAULT_FILENAME = '{{token}}.{{extension}}';

/**
 * Connections: a project saves a destination once (an S3 bucket and its keys, a YouTube
 * channel's refresh token, an FTP server) and upload tasks name it instead of carrying keys.
 * Nothing secret is ever returned: listings show the type and where, never how.
 */
@Injectable()
export class ConnectionsService {
  private readonly connections: Collection<ConnectionDoc>;

  constructor(
    @Inject(DOCUMENT_STORE) store: DocumentStore,
    private readonly secrets: SecretBox,
    private readonly projects: ProjectsService,
  ) {
    this.connections = store.collection<ConnectionDoc>('connections');
  }

  async put(projectId: string, apiKey: string | undefined, name: string, body: unknown): Promise<{ view: ConnectionView; created: boolean }> {
    await this.projects.authenticate(projectId, apiKey);
    const checkedName = parseName(name);
    const withDefault = typeof body === 'object' && body !== null && !Array.isArray(body) ? { ...(body as Record<string, unknown>) } : body;
    const type = (withDefault as { type?: unknown } | null)?.type;
    if (withDefault && typeof withDefault === 'object' && typeof type === 'string' && NEEDS_FILENAME[type as keyof typeof NEEDS_FILENAME] && !('filename' in withDefault)) {
      (withDefault as Record<string, unknown>).filename = DEFAULT_FILENAME;
    }
    const parsed = destinationSchema.safeParse(withDefault);
    if (!parsed.success) {
      const details = parsed.error.issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message }));
      throw badInput(`invalid connection: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`, details);
    }
    const now = new Date().toISOString();
    const id = `${projectId}/${checkedName}`;
    const existing = await this.connections.findOne({ _id: id });
    const doc = {
      project: projectId,
      name: checkedName,
      type: parsed.data.type,
      sealed: this.secrets.sealJson(parsed.data),
      summary: describeDestination(parsed.data as Destination),
      updatedAt: now,
    };
    const saved = await this.connections.findOneAndUpdate({ _id: id }, { $set: doc, $setOnInsert: { createdAt: now } }, { upsert: true });
    return { view: view(saved!), created: !existing };
  }

  async list(projectId: string, apiKey: string | undefined): Promise<ConnectionView[]> {
    await this.projects.authenticate(projectId, apiKey);
    return (await this.connections.find({ project: projectId }, { sort: { name: 1 } })).map(view);
  }

  async get(projectId: string, apiKey: string | undefined, name: string): Promise<ConnectionView> {
    await this.projects.authenticate(projectId, apiKey);
    return view(await this.find(projectId, name));
  }

  async remove(projectId: string, apiKey: string | undefined, name: string): Promise<{ deleted: string }> {
    await this.projects.authenticate(projectId, apiKey);
    const removed = await this.connections.deleteOne({ _id: `${projectId}/${parseName(name)}` });
    if (!removed) throw notFound(`project ${projectId} has no connection "${name.slice(0, 64)}"`, [{ field: 'connection', message: 'unknown' }]);
    return { deleted: name };
  }

  /** A connection's destination, opened (for the upload that uses it, never for an answer). */
  async open(projectId: string, name: string): Promise<DestinationInput> {
    return this.secrets.openJson<DestinationInput>((await this.find(projectId, name)).sealed);
  }

  private async find(projectId: string, name: string): Promise<ConnectionDoc> {
    const doc = await this.connections.findOne({ _id: `${projectId}/${parseName(name)}` });
    if (!doc) throw notFound(`project ${projectId} has no connection "${name.slice(0, 64)}"`, [{ field: 'connection', message: 'unknown' }]);
    return doc;
  }
}

function parseName(name: string): string {
  const parsed = connectionName.safeParse(name);
  if (!parsed.success) throw badInput(`"${name.slice(0, 64)}" is not a connection name: ${parsed.error.issues[0].message}`, [{ field: 'name', message: parsed.error.issues[0].message }]);
  return parsed.data;
}

function view(doc: ConnectionDoc): ConnectionView {
  return { name: doc.name, type: doc.type, destination: doc.summary, createdAt: doc.createdAt, updatedAt: doc.updatedAt };
}
