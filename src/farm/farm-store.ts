import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { RateLimitsService } from '../limits/rate-limits.service';
import { keyIdOf, ProjectsService } from '../projects/projects.service';
import type { ProjectDoc } from '../projects/project.types';
import { type Collection, DOCUMENT_STORE, type DocumentStore, type StoredDocument } from '../repositories/document-store/port';
import { FARM_FILES_COLLECTION, FARM_JOBS_COLLECTION, type FarmFileDoc, type FarmJobDoc } from './farm.types';

/** A zip download's exclusions (the frames the client has), named by a short id in its signed URL. */
export interface FarmDownloadDoc extends StoredDocument {
  job: string;
  project: string;
  /** Frames left out of the zip. */
  exclude: number[];
  createdAt: string;
  expiresAt: string;
}

export const FARM_DOWNLOADS_COLLECTION = 'farm_downloads';

/**
 * The document store and the projects of the app module (its own providers, not exported to
 * feature modules): looked up once the application is built, as the webhooks module does.
 */
@Injectable()
export class FarmStore {
  private store?: DocumentStore;
  private projectsService?: ProjectsService;
  private rateLimits?: RateLimitsService;

  constructor(private readonly moduleRef: ModuleRef) {}

  collection<T extends StoredDocument>(name: string): Collection<T> {
    return (this.store ??= this.moduleRef.get<DocumentStore>(DOCUMENT_STORE, { strict: false })).collection<T>(name);
  }

  get jobs(): Collection<FarmJobDoc> {
    return this.collection<FarmJobDoc>(FARM_JOBS_COLLECTION);
  }

  get files(): Collection<FarmFileDoc> {
    return this.collection<FarmFileDoc>(FARM_FILES_COLLECTION);
  }

  get downloads(): Collection<FarmDownloadDoc> {
    return this.collection<FarmDownloadDoc>(FARM_DOWNLOADS_COLLECTION);
  }

  /**
   * The key's project: 401 without a key or with one no project has. Every farm and product
   * request passes here once, and pays into the key's requests per minute (429 beyond it), as
   * the render API's do.
   */
  async authenticateKey(key: string | undefined): Promise<ProjectDoc> {
    const project = await (this.projectsService ??= this.moduleRef.get(ProjectsService, { strict: false })).authenticateKey(key);
    await (this.rateLimits ??= this.moduleRef.get(RateLimitsService, { strict: false })).countRequest(project, keyIdOf(key!));
    return project;
  }

  /** A project by id (to verify a signed URL with its secret). */
  async project(id: string): Promise<ProjectDoc | undefined> {
    return (this.projectsService ??= this.moduleRef.get(ProjectsService, { strict: false })).get(id).catch(() => undefined);
  }
}
