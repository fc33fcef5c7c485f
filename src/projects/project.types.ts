export interface ProjectLimits {
  /** Width × height × seconds a single movie may have (default: 10 minutes of 1080p). */
  maxPixelSeconds: number;
  /** Bytes of JSON params a request may carry. */
  maxParamsBytes: number;
}

export interface ProjectDoc {
  _id: string;
  /** sha256 of each API key; the keys themselves are shown once and never stored. */
  keyHashes: string[];
  /** Key for signed `/v1/render` URLs (HMAC-SHA256). */
  signingSecret: string;
  /** Public projects accept unsigned `/v1/render` URLs. */
  public: boolean;
  limits: ProjectLimits;
  createdAt: string;
}

export const DEFAULT_LIMITS: ProjectLimits = { maxPixelSeconds: 1920 * 1080 * 600, maxParamsBytes: 64 * 1024 };

/** Where projects are kept: a document collection (MongoDB) or one JSON file each (embedded). */
export interface ProjectsRepository {
  get(id: string): Promise<ProjectDoc | undefined>;
  /** The project holding an API key hash. */
  findByKeyHash(hash: string): Promise<ProjectDoc | undefined>;
  /** Fails with DuplicateKeyError when the id is taken. */
  create(doc: ProjectDoc): Promise<void>;
  save(doc: ProjectDoc): Promise<void>;
  list(): Promise<ProjectDoc[]>;
}

export const PROJECTS_REPOSITORY = Symbol('PROJECTS_REPOSITORY');
