import { Injectable, OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ProjectsService } from '../projects/projects.service';
import type { ProjectDoc } from '../projects/project.types';
import { type Collection, DOCUMENT_STORE, type DocumentStore } from '../repositories/document-store/port';
import type { TokenDoc } from '../renders/render.types';
import { ENDPOINTS_COLLECTION, MESSAGES_COLLECTION, type WebhookEndpointDoc, type WebhookMessageDoc } from './webhook.types';

/**
 * The collections webhooks use. The document store is the app module's own provider (not
 * exported to feature modules), so it is looked up in the application once the modules are
 * built, the first time it is needed.
 */
@Injectable()
export class WebhookStore implements OnModuleInit {
  private store?: DocumentStore;

  constructor(private readonly moduleRef: ModuleRef) {}

  private db(): DocumentStore {
    return (this.store ??= this.moduleRef.get<DocumentStore>(DOCUMENT_STORE, { strict: false }));
  }

  get endpoints(): Collection<WebhookEndpointDoc> {
    return this.db().collection<WebhookEndpointDoc>(ENDPOINTS_COLLECTION);
  }

  get messages(): Collection<WebhookMessageDoc> {
    return this.db().collection<WebhookMessageDoc>(MESSAGES_COLLECTION);
  }

  /** Read only: which tokens have a render key (indexed on `renderKeys` by the tokens service). */
  get tokens(): Collection<TokenDoc> {
    return this.db().collection<TokenDoc>('tokens');
  }

  async onModuleInit(): Promise<void> {
    await this.endpoints.ensureIndex({ project: 1 });
    await this.messages.ensureIndex({ endpoint: 1, status: 1 });
    await this.messages.ensureIndex({ orderKey: 1 });
    // The sweep's question: pending messages overdue.
    await this.messages.ensureIndex({ status: 1, nextAttemptAt: 1 });
  }
}

/** API-key checks through the app's ProjectsService (looked up like the store). */
@Injectable()
export class ProjectAccess {
  private projects?: ProjectsService;

  constructor(private readonly moduleRef: ModuleRef) {}

  /** 401 without a key or with a key no project has; 403 with another project's key. */
  authenticate(project: string, apiKey: string | undefined): Promise<ProjectDoc> {
    this.projects ??= this.moduleRef.get(ProjectsService, { strict: false });
    return this.projects.authenticate(project, apiKey);
  }
}
