export interface ProjectLimits {
  /** Width × height × seconds a single movie may have (default: 10 minutes of 1080p). */
  maxPixelSeconds: number;
  /** Bytes of JSON params a request may carry. */
  maxParamsBytes: number;
  // The ones below default to the service's settings (RATE_LIMIT_*, QUOTA_*, OUTPUT_TTL_DAYS, …)
  // when a project has no value of its own; 0 means no limit.
  /** Authenticated requests per API key per minute. */
  requestsPerMinute?: number;
  /** Renders running at once per API key. */
  rendersRunning?: number;
  /** Width × height × seconds rendered per API key per UTC day. */
  pixelSecondsPerDay?: number;
  /** A stored output not fetched for this many days is removed (a later GET renders it again); pinned tokens keep theirs. */
  outputTtlDays?: number;
  /** Tokens made without `ttl` expire after this many days. */
  tokenTtlDays?: number;
  /** Bytes of stored outputs the project may keep; beyond it the least recently fetched unpinned ones go. */
  maxStoredBytes?: number;
}

export type EffectiveLimits = Required<ProjectLimits>;

/** A project's limits with the service's defaults filled in. */
export function effectiveLimits(
  project: Pick<ProjectDoc, 'limits'>,
  defaults: { limits: { requestsPerMinute: number; rendersRunning: number; pixelSecondsPerDay: number }; retention: { outputTtlDays: number; tokenTtlDays: number; maxStoredBytes: number } },
): EffectiveLimits {
  const own = project.limits ?? DEFAULT_LIMITS;
  return {
    maxPixelSeconds: own.maxPixelSeconds ?? DEFAULT_LIMITS.maxPixelSeconds,
    maxParamsBytes: own.maxParamsBytes ?? DEFAULT_LIMITS.maxParamsBytes,
    requestsPerMinute: own.requestsPerMinute ?? defaults.limits.requestsPerMinute,
    rendersRunning: own.rendersRunning ?? defaults.limits.rendersRunning,
    pixelSecondsPerDay: own.pixelSecondsPerDay ?? defaults.limits.pixelSecondsPerDay,
    outputTtlDays: own.outputTtlDays ?? defaults.retention.outputTtlDays,
    tokenTtlDays: own.tokenTtlDays ?? defaults.retention.tokenTtlDays,
    maxStoredBytes: own.maxStoredBytes ?? defaults.retention.maxStoredBytes,
  };
}

/** The limits a project may set (`montage projects limits`), with what each one takes. */
export const SETTABLE_LIMITS = [
  'requestsPerMinute',
  'rendersRunning',
  'pixelSecondsPerDay',
  'outputTtlDays',
  'tokenTtlDays',
  'maxStoredBytes',
  'maxPixelSeconds',
  'maxParamsBytes',
] as const satisfies ReadonlyArray<keyof ProjectLimits>;

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
