/**
 * The persistence port: a small, Mongo-style document API that both adapters honour exactly
 * (MongoDB through mongoose, and the embedded @seald-io/nedb default). Services depend on this
 * interface only. Correctness never relies on multi-document transactions: every state change
 * that must be atomic is a single-document `findOneAndUpdate` with a guard in its filter.
 */
export interface StoredDocument {
  _id: string;
}

/** Equality on fields (dot paths allowed) or one of the operators below. */
export type FieldCondition =
  | string
  | number
  | boolean
  | null
  | { $in?: unknown[]; $nin?: unknown[]; $ne?: unknown; $lt?: number | string; $lte?: number | string; $gt?: number | string; $gte?: number | string; $exists?: boolean };
export type Filter = Record<string, FieldCondition>;

export interface Update {
  $set?: Record<string, unknown>;
  $unset?: Record<string, true | 1 | ''>;
  $inc?: Record<string, number>;
  /** Adds one value to an array field unless it is there already (atomic, no lost updates). */
  $addToSet?: Record<string, unknown>;
  /** Applied only when an upsert inserts. */
  $setOnInsert?: Record<string, unknown>;
}

/** The operators both adapters accept, and nothing else. */
export const FILTER_OPERATORS: ReadonlySet<string> = new Set(['$in', '$nin', '$ne', '$lt', '$lte', '$gt', '$gte', '$exists']);
export const UPDATE_OPERATORS: ReadonlySet<string> = new Set(['$set', '$unset', '$inc', '$addToSet', '$setOnInsert']);

export interface FindOptions {
  sort?: Record<string, 1 | -1>;
  limit?: number;
}

export class DuplicateKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DuplicateKeyError';
  }
}

export interface Collection<T extends StoredDocument> {
  /** Throws DuplicateKeyError when `_id` (or a unique index) is taken. */
  insertOne(doc: T): Promise<void>;
  findOne(filter: Filter): Promise<T | null>;
  find(filter: Filter, options?: FindOptions): Promise<T[]>;
  /** Atomic on one document; returns the document after the update (or null when none matched and no upsert). */
  findOneAndUpdate(filter: Filter, update: Update, options?: { upsert?: boolean }): Promise<T | null>;
  updateMany(filter: Filter, update: Update): Promise<number>;
  deleteOne(filter: Filter): Promise<number>;
  deleteMany(filter: Filter): Promise<number>;
  countDocuments(filter: Filter): Promise<number>;
  ensureIndex(fields: Record<string, 1 | -1>, options?: { unique?: boolean }): Promise<void>;
}

export interface DocumentStore {
  /** Which backend, for /health and logs: 'nedb' or 'mongodb'. */
  readonly kind: string;
  collection<T extends StoredDocument>(name: string): Collection<T>;
  /** Throws when the backend is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const DOCUMENT_STORE = Symbol('DOCUMENT_STORE');
