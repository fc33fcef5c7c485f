import Datastore from '@seald-io/nedb';
import * as fs from 'node:fs';
import * as path from 'node:path';
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
 * The embedded default behind the DocumentStore port: one @seald-io/nedb datafile per collection
 * under `<dataDir>/db/<name>.db`.
 *
 * nedb's own query language differs from MongoDB's in a few corners (null matching missing fields,
 * `$ne`/`$nin` on array fields, several range operators on one array field), so filters are
 * translated into nedb queries that give MongoDB's answers. nedb has no `$setOnInsert`: upserts are
 * a find followed by an insert or an update, made atomic by running every operation of a
 * collection through one FIFO queue (nedb's executor would serialise each call, but not the pair).
 */
export interface NedbDocumentStoreOptions {
  /** How often each datafile is compacted (nedb's append-only log rewritten); minimum 5000 ms. */
  compactionIntervalMs?: number;
}

const DEFAULT_COMPACTION_INTERVAL_MS = 60_000;
const COLLECTION_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

type Query = Record<string, unknown>;
type Modifiers = { $set?: Record<string, unknown>; $unset?: Record<string, true>; $inc?: Record<string, number>; $addToSet?: Record<string, unknown> };

/** Runs tasks one after another, in the order they were queued. */
class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<R>(task: () => Promise<R>): Promise<R> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once everything queued so far has settled. */
  drained(): Promise<unknown> {
    return this.tail;
  }
}

interface Slot {
  datastore: Datastore;
  queue: SerialQueue;
  loaded: boolean;
  collection: NedbCollection<StoredDocument>;
}

export class NedbDocumentStore implements DocumentStore {
  readonly kind = 'nedb';
  /** Directory holding one `<name>.db` file per collection. */
  readonly directory: string;
  private readonly slots = new Map<string, Slot>();
  private readonly compactionIntervalMs: number;
  private closed = false;

  constructor(dataDir: string, options: NedbDocumentStoreOptions = {}) {
    this.directory = path.join(dataDir, 'db');
    this.compactionIntervalMs = options.compactionIntervalMs ?? DEFAULT_COMPACTION_INTERVAL_MS;
    fs.mkdirSync(this.directory, { recursive: true });
  }

  collection<T extends StoredDocument>(name: string): Collection<T> {
    this.assertOpen();
    let slot = this.slots.get(name);
    if (!slot) {
      if (!COLLECTION_NAME.test(name)) throw new Error(`Invalid collection name "${name}"`);
      const datastore = new Datastore({
        filename: path.join(this.directory, `${name}.db`),
        autoload: true,
        timestampData: false,
        // Without onload, a failed load is thrown as an unhandled rejection; with it, the error
        // surfaces from every operation instead (each awaits autoloadPromise).
        onload: () => undefined,
      });
      const queue = new SerialQueue();
      const created: Slot = {
        datastore,
        queue,
        loaded: false,
        collection: new NedbCollection(name, datastore, queue, () => this.assertOpen()),
      };
      datastore.autoloadPromise?.then(
        () => {
          created.loaded = true;
        },
        () => undefined,
      );
      datastore.setAutocompactionInterval(this.compactionIntervalMs);
      // Compaction must not keep a CLI process alive if someone forgets close().
      (datastore as unknown as { _autocompactionIntervalId?: NodeJS.Timeout | null })._autocompactionIntervalId?.unref?.();
      this.slots.set(name, created);
      slot = created;
    }
    return slot.collection as unknown as Collection<T>;
  }

  async ping(): Promise<void> {
    this.assertOpen();
    await fs.promises.access(this.directory, fs.constants.R_OK | fs.constants.W_OK);
  }

  /** Waits for queued operations, stops compaction timers and compacts each datafile once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const slots = [...this.slots.values()];
    this.slots.clear();
    // Every collection is closed even if compacting one of them fails; the first failure is reported.
    const results = await Promise.allSettled(
      slots.map(async (slot) => {
        slot.datastore.stopAutocompaction();
        await slot.queue.drained();
        await slot.datastore.autoloadPromise?.catch(() => undefined);
        // A datastore that failed to load never processes its executor queue: do not wait on it.
        if (slot.loaded) await slot.datastore.compactDatafileAsync();
      }),
    );
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * Nest calls this from app.close() when the store is a provider, after every onModuleDestroy
   * (services finishing their last writes) has run.
   */
  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('NedbDocumentStore is closed');
  }
}

class NedbCollection<T extends StoredDocument> implements Collection<T> {
  constructor(
    private readonly name: string,
    private readonly datastore: Datastore,
    private readonly queue: SerialQueue,
    private readonly assertOpen: () => void,
  ) {}

  insertOne(doc: T): Promise<void> {
    return this.op(async () => {
      await this.datastore.insertAsync(doc as Record<string, unknown>);
    });
  }

  findOne(filter: Filter): Promise<T | null> {
    const query = toNedbQuery(filter);
    return this.op(async () => (await this.datastore.findOneAsync(query)) as T | null);
  }

  find(filter: Filter, options: FindOptions = {}): Promise<T[]> {
    const query = toNedbQuery(filter);
    return this.op(async () => {
      let cursor = this.datastore.findAsync(query);
      if (options.sort && Object.keys(options.sort).length > 0) cursor = cursor.sort(options.sort);
      if (options.limit && options.limit > 0) cursor = cursor.limit(options.limit);
      return (await cursor) as unknown as T[];
    });
  }

  findOneAndUpdate(filter: Filter, update: Update, options: { upsert?: boolean } = {}): Promise<T | null> {
    const query = toNedbQuery(filter);
    const { modifiers, setOnInsert } = splitUpdate(update);
    return this.op(async () => {
      // Inside the queue nothing else runs on this collection, so find-then-write is atomic.
      const existing = (await this.datastore.findOneAsync(query)) as T | null;
      if (!existing) {
        if (!options.upsert) return null;
        const doc = buildUpsertDocument(filter, modifiers, setOnInsert);
        return (await this.datastore.insertAsync(doc)) as unknown as T;
      }
      if (!modifiers) return existing;
      const { affectedDocuments } = await this.datastore.updateAsync({ _id: existing._id }, modifiers, {
        multi: false,
        upsert: false,
        returnUpdatedDocs: true,
      });
      return (affectedDocuments as T | null) ?? null;
    });
  }

  updateMany(filter: Filter, update: Update): Promise<number> {
    const query = toNedbQuery(filter);
    const { modifiers } = splitUpdate(update);
    return this.op(async () => {
      // An update with nothing left to apply (only $setOnInsert) must not become a nedb replacement.
      if (!modifiers) return this.datastore.countAsync(query) as unknown as Promise<number>;
      const { numAffected } = await this.datastore.updateAsync(query, modifiers, { multi: true, upsert: false });
      return numAffected;
    });
  }

  deleteOne(filter: Filter): Promise<number> {
    const query = toNedbQuery(filter);
    return this.op(() => this.datastore.removeAsync(query, { multi: false }));
  }

  deleteMany(filter: Filter): Promise<number> {
    const query = toNedbQuery(filter);
    return this.op(() => this.datastore.removeAsync(query, { multi: true }));
  }

  countDocuments(filter: Filter): Promise<number> {
    const query = toNedbQuery(filter);
    return this.op(async () => (await this.datastore.countAsync(query)) as unknown as number);
  }

  ensureIndex(fields: Record<string, 1 | -1>, options: { unique?: boolean } = {}): Promise<void> {
    const names = Object.keys(fields);
    if (names.length === 0) throw new Error('ensureIndex needs at least one field');
    // nedb always indexes _id uniquely.
    if (names.length === 1 && names[0] === '_id') return this.op(async () => undefined);
    return this.op(() =>
      this.datastore.ensureIndexAsync({ fieldName: names.length === 1 ? names[0] : names, unique: options.unique === true }),
    );
  }

  /** Every operation: refuse after close, wait for the datafile, run in the collection's queue. */
  private op<R>(task: () => Promise<R>): Promise<R> {
    try {
      this.assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.queue.run(async () => {
      await this.datastore.autoloadPromise;
      try {
        return await task();
      } catch (err) {
        throw this.translateError(err);
      }
    });
  }

  private translateError(err: unknown): unknown {
    if (err && typeof err === 'object' && (err as { errorType?: unknown }).errorType === 'uniqueViolated') {
      const duplicate = new DuplicateKeyError(`Duplicate key in collection "${this.name}": ${(err as Error).message}`);
      Object.defineProperty(duplicate, 'cause', { value: err, enumerable: false });
      return duplicate;
    }
    return err;
  }
}

// ---------------------------------------------------------------------------------------------
// Filter translation: the port's MongoDB semantics expressed in nedb's query language.

function isOperatorObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Date || value instanceof RegExp) {
    return false;
  }
  const keys = Object.keys(value);
  if (keys.length > 0 && keys.every((key) => key.startsWith('$'))) return true;
  throw new Error(
    `Filter values must be scalars or operator objects ({ $in, $nin, $ne, $lt, $lte, $gt, $gte, $exists }); use dot paths for nested fields (got ${JSON.stringify(value)})`,
  );
}

/** MongoDB equality: `null` also matches a missing field. */
function equalityClause(field: string, value: unknown): Query {
  if (value === undefined) throw new Error(`Filter value for "${field}" is undefined`);
  if (value === null) return { $or: [{ [field]: null }, { [field]: { $exists: false } }] };
  return { [field]: value };
}

function inClause(field: string, values: unknown): Query {
  if (!Array.isArray(values)) throw new Error(`$in/$nin on "${field}" needs an array`);
  const present = values.filter((value) => value !== null && value !== undefined);
  const clauses: Query[] = [];
  if (present.length > 0 || values.length === 0) clauses.push({ [field]: { $in: present } });
  if (present.length !== values.length) clauses.push(equalityClause(field, null));
  return clauses.length === 1 ? clauses[0] : { $or: clauses };
}

export function toNedbQuery(filter: Filter): Query {
  if (filter === null || typeof filter !== 'object') throw new Error('Filter must be an object');
  const query: Query = {};
  const and: Query[] = [];
  for (const [field, condition] of Object.entries(filter)) {
    if (field.startsWith('$')) throw new Error(`Unsupported filter operator ${field}`);
    if (condition === undefined) throw new Error(`Filter value for "${field}" is undefined`);
    if (!isOperatorObject(condition)) {
      // Plain equality stays at the top level so nedb can use its indexes (_id above all).
      if (condition !== null) query[field] = condition;
      else and.push(equalityClause(field, condition));
      continue;
    }
    for (const [operator, operand] of Object.entries(condition)) {
      if (!FILTER_OPERATORS.has(operator)) throw new Error(`Unsupported filter operator ${operator} on "${field}"`);
      if (operand === undefined) throw new Error(`Filter operand ${operator} on "${field}" is undefined`);
      switch (operator) {
        case '$in':
          and.push(inClause(field, operand));
          break;
        // MongoDB: $ne / $nin are the negation of equality / $in, which on an array field means
        // "no element matches"; nedb would accept any non-matching element.
        case '$nin':
          and.push({ $not: inClause(field, operand) });
          break;
        case '$ne':
          and.push({ $not: equalityClause(field, operand) });
          break;
        case '$exists':
          and.push({ [field]: { $exists: Boolean(operand) } });
          break;
        default:
          // One clause per range operator: on an array field MongoDB lets each bound be met by a
          // different element.
          and.push({ [field]: { [operator]: operand } });
      }
    }
  }
  if (and.length > 0) query.$and = and;
  return query;
}

// ---------------------------------------------------------------------------------------------
// Updates.

function splitUpdate(update: Update): { modifiers: Modifiers | null; setOnInsert: Record<string, unknown> } {
  if (update === null || typeof update !== 'object') throw new Error('Update must be an object');
  const modifiers: Modifiers = {};
  for (const [operator, operand] of Object.entries(update)) {
    if (!UPDATE_OPERATORS.has(operator)) {
      throw new Error(`Unsupported update operator ${operator} (only $set, $unset, $inc, $addToSet and $setOnInsert; no replacement documents)`);
    }
    if (operand === undefined) continue;
    if (operand === null || typeof operand !== 'object' || Array.isArray(operand)) throw new Error(`${operator} needs an object`);
  }
  const set = withoutUndefined(update.$set);
  if (Object.keys(set).length > 0) modifiers.$set = set;
  const unset = Object.keys(update.$unset ?? {});
  if (unset.length > 0) modifiers.$unset = Object.fromEntries(unset.map((field) => [field, true as const]));
  const inc = withoutUndefined(update.$inc) as Record<string, number>;
  for (const [field, amount] of Object.entries(inc)) {
    if (typeof amount !== 'number' || Number.isNaN(amount)) throw new Error(`$inc on "${field}" needs a number`);
  }
  if (Object.keys(inc).length > 0) modifiers.$inc = inc;
  const addToSet = withoutUndefined(update.$addToSet);
  if (Object.keys(addToSet).length > 0) modifiers.$addToSet = addToSet; // nedb's own $addToSet: same semantics
  return { modifiers: Object.keys(modifiers).length > 0 ? modifiers : null, setOnInsert: withoutUndefined(update.$setOnInsert) };
}

function withoutUndefined(object: Record<string, unknown> | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object ?? {}).filter(([, value]) => value !== undefined));
}

/** What MongoDB inserts on upsert: the filter's equality fields, then $setOnInsert, $set, $inc, $unset. */
function buildUpsertDocument(filter: Filter, modifiers: Modifiers | null, setOnInsert: Record<string, unknown>): Record<string, unknown> {
  const doc: Record<string, unknown> = {};
  for (const [field, condition] of Object.entries(filter)) {
    if (!isOperatorObject(condition)) setPath(doc, field, structuredClone(condition));
  }
  for (const [field, value] of Object.entries(setOnInsert)) setPath(doc, field, structuredClone(value));
  for (const [field, value] of Object.entries(modifiers?.$set ?? {})) setPath(doc, field, structuredClone(value));
  for (const [field, amount] of Object.entries(modifiers?.$inc ?? {})) {
    const current = getPath(doc, field);
    if (current !== undefined && typeof current !== 'number') throw new Error(`Cannot apply $inc to non-numeric field "${field}"`);
    setPath(doc, field, ((current as number | undefined) ?? 0) + amount);
  }
  for (const [field, value] of Object.entries(modifiers?.$addToSet ?? {})) setPath(doc, field, [structuredClone(value)]);
  for (const field of Object.keys(modifiers?.$unset ?? {})) unsetPath(doc, field);
  return doc;
}

function getPath(doc: Record<string, unknown>, field: string): unknown {
  let current: unknown = doc;
  for (const part of field.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function setPath(doc: Record<string, unknown>, field: string, value: unknown): void {
  const parts = field.split('.');
  let current = doc;
  for (const part of parts.slice(0, -1)) {
    const next = current[part];
    if (next === null || typeof next !== 'object') current[part] = {};
    current = current[part] as Record<string, unknown>;
  }
  current[parts[parts.length - 1]] = value;
}

function unsetPath(doc: Record<string, unknown>, field: string): void {
  const parts = field.split('.');
  const parent = getPath(doc, parts.slice(0, -1).join('.') || '');
  const container = parts.length === 1 ? doc : parent;
  if (container !== null && typeof container === 'object') delete (container as Record<string, unknown>)[parts[parts.length - 1]];
}
