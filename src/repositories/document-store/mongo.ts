import { randomUUID } from 'node:crypto';
import mongoose from 'mongoose';
import {
  type Collection,
  type DocumentStore,
  DuplicateKeyError,
  FILTER_OPERATORS,
  type Filter,
  type FindOptions,
  type StoredDocument,
  type Update,
  UPDATE_OPERATORS,
} from './port';

/**
 * MongoDB behind the DocumentStore port. Mongoose is only the connection layer: every operation
 * goes to the native driver collection underneath (`connection.db.collection(name)`), no schemas.
 * The port is MongoDB's own semantics, so filters and updates pass through after validation.
 */
export interface MongoDocumentStoreOptions {
  /** Database to use; default: the one named in the URI, else `montage`. */
  dbName?: string;
  /** How long to wait for a reachable server before giving up (default 10 s). */
  serverSelectionTimeoutMS?: number;
}

const DUPLICATE_KEY_CODES = new Set([11000, 11001]);

/** The database named in a MongoDB connection string, if any (`mongodb://h1,h2/db?opts`). */
export function databaseNameFromUri(uri: string): string | undefined {
  const beforeOptions = uri.replace(/^mongodb(\+srv)?:\/\//, '').split('?')[0];
  const hostsAndPath = beforeOptions.slice(beforeOptions.lastIndexOf('@') + 1);
  const slash = hostsAndPath.indexOf('/');
  if (slash < 0) return undefined;
  const name = decodeURIComponent(hostsAndPath.slice(slash + 1));
  return name === '' ? undefined : name;
}

export class MongoDocumentStore implements DocumentStore {
  readonly kind = 'mongodb';
  private readonly collections = new Map<string, MongoCollection<StoredDocument>>();
  private closed = false;

  private constructor(private readonly connection: mongoose.Connection) {}

  /** Connects (and waits until a server answers) before returning the store. */
  static async create(uri: string, options: MongoDocumentStoreOptions = {}): Promise<MongoDocumentStore> {
    const connection = mongoose.createConnection(uri, {
      dbName: options.dbName ?? databaseNameFromUri(uri) ?? 'montage',
      serverSelectionTimeoutMS: options.serverSelectionTimeoutMS ?? 10_000,
      // Nothing is queued while disconnected: an operation fails instead of hanging.
      bufferCommands: false,
      autoIndex: false,
      autoCreate: false,
    });
    try {
      await connection.asPromise();
    } catch (err) {
      await connection.close(true).catch(() => undefined);
      throw err;
    }
    return new MongoDocumentStore(connection);
  }

  /** The database this store reads and writes. */
  get databaseName(): string {
    return this.connection.name;
  }

  collection<T extends StoredDocument>(name: string): Collection<T> {
    this.assertOpen();
    let collection = this.collections.get(name);
    if (!collection) {
      // ignoreUndefined: an undefined field is left out (as the embedded store does), not stored as null.
      const native = this.db().collection(name, { ignoreUndefined: true });
      collection = new MongoCollection(name, native, () => this.assertOpen());
      this.collections.set(name, collection);
    }
    return collection as unknown as Collection<T>;
  }

  async ping(): Promise<void> {
    this.assertOpen();
    await this.db().admin().command({ ping: 1 });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.collections.clear();
    await this.connection.close();
  }

  /**
   * Nest calls this from app.close() when the store is a provider, after every onModuleDestroy
   * (services finishing their last writes) has run.
   */
  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  private db() {
    const db = this.connection.db;
    if (!db) throw new Error('MongoDocumentStore is not connected');
    return db;
  }

  private assertOpen(): void {
    // The driver would silently reconnect a closed client; refuse instead.
    if (this.closed) throw new Error('MongoDocumentStore is closed');
  }
}

type NativeCollection = ReturnType<mongoose.mongo.Db['collection']>;
type NativeFilter = Parameters<NativeCollection['find']>[0];
type NativeUpdate = Parameters<NativeCollection['updateMany']>[1];

class MongoCollection<T extends StoredDocument> implements Collection<T> {
  constructor(
    private readonly name: string,
    private readonly native: NativeCollection,
    private readonly assertOpen: () => void,
  ) {}

  insertOne(doc: T): Promise<void> {
    return this.op(async () => {
      // A copy: the driver writes a generated _id into the object it is given.
      const copy = { ...doc } as Record<string, unknown>;
      if (copy._id === undefined) copy._id = randomUUID();
      await this.native.insertOne(copy as never);
    });
  }

  findOne(filter: Filter): Promise<T | null> {
    const query = checkFilter(filter);
    return this.op(async () => (await this.native.findOne(query)) as unknown as T | null);
  }

  find(filter: Filter, options: FindOptions = {}): Promise<T[]> {
    const query = checkFilter(filter);
    return this.op(async () => {
      let cursor = this.native.find(query);
      if (options.sort && Object.keys(options.sort).length > 0) cursor = cursor.sort(options.sort);
      if (options.limit && options.limit > 0) cursor = cursor.limit(options.limit);
      return (await cursor.toArray()) as unknown as T[];
    });
  }

  findOneAndUpdate(filter: Filter, update: Update, options: { upsert?: boolean } = {}): Promise<T | null> {
    const query = checkFilter(filter);
    const modifiers = checkUpdate(update);
    const upsert = options.upsert === true;
    if (upsert) {
      // Ids are strings everywhere: never let the server invent an ObjectId.
      const idCondition = filter._id;
      const idFromFilter = idCondition !== undefined && (idCondition === null || typeof idCondition !== 'object');
      if (!idFromFilter) modifiers.$setOnInsert = { ...(modifiers.$setOnInsert ?? {}), _id: randomUUID() };
    }
    return this.op(async () => {
      if (Object.keys(modifiers).length === 0) return (await this.native.findOne(query)) as unknown as T | null;
      const doc = await this.native.findOneAndUpdate(query, modifiers as NativeUpdate, { upsert, returnDocument: 'after' });
      return (doc as unknown as T | null) ?? null;
    });
  }

  /** Returns how many documents matched (as the embedded store does), changed or not. */
  updateMany(filter: Filter, update: Update): Promise<number> {
    const query = checkFilter(filter);
    const modifiers = checkUpdate(update);
    delete modifiers.$setOnInsert; // never inserts: nothing to apply
    return this.op(async () => {
      if (Object.keys(modifiers).length === 0) return this.native.countDocuments(query);
      const result = await this.native.updateMany(query, modifiers as NativeUpdate);
      return result.matchedCount;
    });
  }

  deleteOne(filter: Filter): Promise<number> {
    const query = checkFilter(filter);
    return this.op(async () => (await this.native.deleteOne(query)).deletedCount);
  }

  deleteMany(filter: Filter): Promise<number> {
    const query = checkFilter(filter);
    return this.op(async () => (await this.native.deleteMany(query)).deletedCount);
  }

  countDocuments(filter: Filter): Promise<number> {
    const query = checkFilter(filter);
    return this.op(() => this.native.countDocuments(query));
  }

  ensureIndex(fields: Record<string, 1 | -1>, options: { unique?: boolean } = {}): Promise<void> {
    if (Object.keys(fields).length === 0) throw new Error('ensureIndex needs at least one field');
    // _id is always uniquely indexed (and MongoDB refuses a `unique` option on it).
    if (Object.keys(fields).length === 1 && '_id' in fields) return this.op(async () => undefined);
    return this.op(async () => {
      await this.native.createIndex(fields, options.unique ? { unique: true } : {});
    });
  }

  private op<R>(task: () => Promise<R>): Promise<R> {
    try {
      this.assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    return task().catch((err: unknown) => {
      const code = (err as { code?: unknown } | null)?.code;
      if (typeof code === 'number' && DUPLICATE_KEY_CODES.has(code)) {
        const duplicate = new DuplicateKeyError(`Duplicate key in collection "${this.name}": ${(err as Error).message}`);
        Object.defineProperty(duplicate, 'cause', { value: err, enumerable: false });
        throw duplicate;
      }
      throw err;
    });
  }
}

/** Only what the port allows: the embedded store must be able to give the same answer. */
function checkFilter(filter: Filter): NativeFilter {
  if (filter === null || typeof filter !== 'object') throw new Error('Filter must be an object');
  for (const [field, condition] of Object.entries(filter)) {
    if (field.startsWith('$')) throw new Error(`Unsupported filter operator ${field}`);
    // With ignoreUndefined, { a: undefined } would be sent as {} and match everything.
    if (condition === undefined) throw new Error(`Filter value for "${field}" is undefined`);
    if (condition === null || typeof condition !== 'object' || Array.isArray(condition) || (condition as unknown) instanceof Date) continue;
    const operators = Object.keys(condition);
    if (operators.length === 0 || !operators.every((key) => key.startsWith('$'))) {
      throw new Error(
        `Filter values must be scalars or operator objects ({ $in, $nin, $ne, $lt, $lte, $gt, $gte, $exists }); use dot paths for nested fields (got ${JSON.stringify(condition)})`,
      );
    }
    for (const [operator, operand] of Object.entries(condition)) {
      if (!FILTER_OPERATORS.has(operator)) throw new Error(`Unsupported filter operator ${operator} on "${field}"`);
      if (operand === undefined) throw new Error(`Filter operand ${operator} on "${field}" is undefined`);
      if ((operator === '$in' || operator === '$nin') && !Array.isArray(operand)) throw new Error(`$in/$nin on "${field}" needs an array`);
    }
  }
  return filter as NativeFilter;
}

type Modifiers = {
  $set?: Record<string, unknown>;
  $unset?: Record<string, unknown>;
  $inc?: Record<string, number>;
  $addToSet?: Record<string, unknown>;
  $setOnInsert?: Record<string, unknown>;
};

function checkUpdate(update: Update): Modifiers {
  if (update === null || typeof update !== 'object') throw new Error('Update must be an object');
  const modifiers: Modifiers = {};
  for (const [operator, operand] of Object.entries(update)) {
    if (!UPDATE_OPERATORS.has(operator)) {
      throw new Error(`Unsupported update operator ${operator} (only $set, $unset, $inc, $addToSet and $setOnInsert; no replacement documents)`);
    }
    if (operand === undefined) continue;
    if (operand === null || typeof operand !== 'object' || Array.isArray(operand)) throw new Error(`${operator} needs an object`);
    const fields = Object.entries(operand as Record<string, unknown>).filter(([, value]) => value !== undefined);
    if (fields.length === 0) continue;
    if (operator === '$inc') {
      for (const [field, amount] of fields) {
        if (typeof amount !== 'number' || Number.isNaN(amount)) throw new Error(`$inc on "${field}" needs a number`);
      }
    }
    modifiers[operator as keyof Modifiers] = Object.fromEntries(
      operator === '$unset' ? fields.map(([field]) => [field, '']) : fields,
    ) as Record<string, number>;
  }
  return modifiers;
}
