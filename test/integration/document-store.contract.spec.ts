/**
 * The DocumentStore contract: one set of cases, run on every adapter.
 *  - NedbDocumentStore in a temp dir, always.
 *  - MongoDocumentStore over a real wire connection: the MongoDB at MONGODB_URI when set (a fresh
 *    database, dropped afterwards), otherwise CongoDB, the in-process wire-compatible server from
 *    @push.rocks/smartmongo, started as a child process (test/helpers/congo-server.mjs).
 * Cases a backend cannot honour are skipped with the reason in their title and a console.warn.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import mongoose from 'mongoose';
import { loadConfig } from '../../src/config/config';
import { MongoDocumentStore } from '../../src/repositories/document-store/mongo';
import { NedbDocumentStore } from '../../src/repositories/document-store/nedb';
import { type Collection, type DocumentStore, DuplicateKeyError, type Filter, type StoredDocument } from '../../src/repositories/document-store/port';
import { createDocumentStore } from '../../src/repositories/document-store/factory';

type Doc = StoredDocument & Record<string, unknown>;

interface Harness {
  /** Opens a store over the same data every time it is called (close, then open again to reopen). */
  open(): Promise<DocumentStore>;
  /** Removes the data (temp dir, database). */
  dispose(): Promise<void>;
}

interface ContractOptions {
  /** Reasons this backend cannot honour a group of cases; those cases are skipped, loudly. */
  skip?: { uniqueIndexes?: string };
}

// ---------------------------------------------------------------------------------------------
// The contract.

function describeContract(name: string, makeHarness: () => Promise<Harness>, options: ContractOptions = {}): void {
  describe(`DocumentStore contract: ${name}`, () => {
    let harness: Harness;
    let store: DocumentStore;
    let sequence = 0;
    const fresh = <T extends StoredDocument = Doc>(): Collection<T> => store.collection<T>(`c${++sequence}`);

    beforeAll(async () => {
      harness = await makeHarness();
      store = await harness.open();
    });

    afterAll(async () => {
      await store?.close();
      await harness?.dispose();
    });

    /** `it`, or `it.skip` with the reason in the title, and listed on the console once per backend. */
    const skipped: string[] = [];
    const unless = (reason: string | undefined) => (title: string, fn: () => Promise<void>) => {
      if (!reason) return it(title, fn);
      skipped.push(`  - ${title}: ${reason}`);
      return it.skip(`${title} (skipped on ${name}: ${reason})`, fn);
    };
    beforeAll(() => {
      if (skipped.length > 0) console.warn(`DocumentStore contract: ${skipped.length} case(s) skipped on ${name}:\n${skipped.join('\n')}`);
    });
    const withUniqueIndexes = unless(options.skip?.uniqueIndexes);

    describe('$addToSet', () => {
      it('adds each value once, without lost updates under concurrency, and matches arrays by element', async () => {
        const c = fresh<{ _id: string; keys?: string[] }>();
        await c.insertOne({ _id: 't', keys: [] });
        await Promise.all(['a', 'b', 'c', 'd', 'e', 'f', 'a', 'b'].map((k) => c.findOneAndUpdate({ _id: 't' }, { $addToSet: { keys: k } })));
        const doc = await c.findOne({ _id: 't' });
        expect([...(doc?.keys ?? [])].sort()).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
        expect(await c.countDocuments({ keys: 'c' })).toBe(1);
        expect(await c.countDocuments({ keys: 'z' })).toBe(0);
      });
    });

    describe('insertOne / findOne', () => {
      it('round-trips nested objects, arrays, numbers, booleans, null and unicode', async () => {
        const c = fresh();
        const doc: Doc = {
          _id: 'round-trip',
          title: 'Zoë’s “café” — 日本語 ✓ 🎬👩🏽‍💻',
          'ключ': 'значение',
          empty: '',
          int: 42,
          negative: -7,
          zero: 0,
          float: 3.14159,
          big: 2 ** 40 + 1,
          yes: true,
          no: false,
          nothing: null,
          tags: ['a', 'b', 'a'],
          mixed: [1, 'two', false, null, { three: 3 }, [4, [5]]],
          emptyList: [],
          emptyObject: {},
          nested: { level1: { level2: { level3: 'deep', list: [{ x: 1 }, { x: 2 }] } }, emoji: '🎞️' },
        };
        await c.insertOne(doc);
        expect(await c.findOne({ _id: 'round-trip' })).toEqual(doc);
        expect(await c.findOne({ _id: 'missing' })).toBeNull();
      });

      it('keeps stored documents apart from the objects passed in and handed out', async () => {
        const c = fresh();
        const doc: Doc = { _id: 'isolated', nested: { n: 1 }, list: [1] };
        await c.insertOne(doc);
        (doc.nested as { n: number }).n = 99;
        const read = (await c.findOne({ _id: 'isolated' }))!;
        expect(read).toEqual({ _id: 'isolated', nested: { n: 1 }, list: [1] });
        (read.list as number[]).push(2);
        expect(await c.findOne({ _id: 'isolated' })).toEqual({ _id: 'isolated', nested: { n: 1 }, list: [1] });
      });

      it('rejects a duplicate _id with DuplicateKeyError and keeps the original', async () => {
        const c = fresh();
        await c.insertOne({ _id: 'dup', v: 1 });
        const error = await c.insertOne({ _id: 'dup', v: 2 }).catch((err: unknown) => err);
        expect(error).toBeInstanceOf(DuplicateKeyError);
        expect((error as Error).name).toBe('DuplicateKeyError');
        expect(await c.findOne({ _id: 'dup' })).toEqual({ _id: 'dup', v: 1 });
        expect(await c.countDocuments({})).toBe(1);
      });
    });

    describe('find', () => {
      let c: Collection<Doc>;
      const ids = async (filter: Filter) => (await c.find(filter, { sort: { _id: 1 } })).map((d) => d._id);

      beforeAll(async () => {
        c = fresh();
        const docs: Doc[] = [
          { _id: 'a', n: 1, s: 'apple', tags: ['x', 'y'], meta: { color: 'red', size: 3 }, opt: 'set', flag: true },
          { _id: 'b', n: 2, s: 'banana', tags: ['y'], meta: { color: 'green', size: 5 }, opt: null, flag: false },
          { _id: 'c', n: 3, s: 'cherry', tags: [], meta: { color: 'red', size: 7 }, flag: true },
          { _id: 'd', n: 4, s: 'date', tags: ['z'], meta: { color: 'blue', size: 1 } },
        ];
        for (const doc of docs) await c.insertOne(doc);
      });

      it('matches everything with an empty filter', async () => {
        expect(await ids({})).toEqual(['a', 'b', 'c', 'd']);
      });

      it('matches equality on fields and dot paths, AND across fields', async () => {
        expect(await ids({ flag: true })).toEqual(['a', 'c']);
        expect(await ids({ 'meta.color': 'red' })).toEqual(['a', 'c']);
        expect(await ids({ flag: true, 'meta.color': 'red', n: { $gt: 1 } })).toEqual(['c']);
        expect(await ids({ s: 'nope' })).toEqual([]);
      });

      it('matches null on null and on missing fields', async () => {
        expect(await ids({ opt: null })).toEqual(['b', 'c', 'd']);
        expect(await ids({ opt: { $ne: null } })).toEqual(['a']);
      });

      it('matches a scalar against array elements', async () => {
        expect(await ids({ tags: 'y' })).toEqual(['a', 'b']);
      });

      it('$in / $nin', async () => {
        expect(await ids({ s: { $in: ['apple', 'date', 'zzz'] } })).toEqual(['a', 'd']);
        expect(await ids({ s: { $in: [] } })).toEqual([]);
        expect(await ids({ s: { $nin: ['apple', 'date'] } })).toEqual(['b', 'c']);
        expect(await ids({ tags: { $in: ['z', 'x'] } })).toEqual(['a', 'd']);
        // On an array field, $nin means "no element is in the list".
        expect(await ids({ tags: { $nin: ['y'] } })).toEqual(['c', 'd']);
        expect(await ids({ opt: { $in: [null, 'set'] } })).toEqual(['a', 'b', 'c', 'd']);
        expect(await ids({ 'meta.color': { $in: ['green', 'blue'] } })).toEqual(['b', 'd']);
      });

      it('$ne, including missing fields and array fields', async () => {
        expect(await ids({ 'meta.color': { $ne: 'red' } })).toEqual(['b', 'd']);
        expect(await ids({ flag: { $ne: true } })).toEqual(['b', 'd']);
        expect(await ids({ tags: { $ne: 'y' } })).toEqual(['c', 'd']);
      });

      it('$lt / $lte / $gt / $gte on numbers, strings and dot paths', async () => {
        expect(await ids({ n: { $lt: 2 } })).toEqual(['a']);
        expect(await ids({ n: { $lte: 2 } })).toEqual(['a', 'b']);
        expect(await ids({ n: { $gt: 3 } })).toEqual(['d']);
        expect(await ids({ n: { $gte: 3 } })).toEqual(['c', 'd']);
        expect(await ids({ n: { $gt: 1, $lt: 4 } })).toEqual(['b', 'c']);
        expect(await ids({ s: { $gte: 'c' } })).toEqual(['c', 'd']);
        expect(await ids({ s: { $lt: 'b' } })).toEqual(['a']);
        expect(await ids({ 'meta.size': { $gte: 5 } })).toEqual(['b', 'c']);
        // Comparisons only match values of the same type.
        expect(await ids({ s: { $gt: 0 } })).toEqual([]);
      });

      it('$exists (a null value exists)', async () => {
        expect(await ids({ opt: { $exists: true } })).toEqual(['a', 'b']);
        expect(await ids({ opt: { $exists: false } })).toEqual(['c', 'd']);
        expect(await ids({ 'meta.size': { $exists: true } })).toEqual(['a', 'b', 'c', 'd']);
        expect(await ids({ 'meta.weight': { $exists: false } })).toEqual(['a', 'b', 'c', 'd']);
      });

      it('sorts ascending and descending, on dot paths and on several keys', async () => {
        const order = async (sort: Record<string, 1 | -1>, filter: Filter = {}) => (await c.find(filter, { sort })).map((d) => d._id);
        expect(await order({ n: 1 })).toEqual(['a', 'b', 'c', 'd']);
        expect(await order({ n: -1 })).toEqual(['d', 'c', 'b', 'a']);
        expect(await order({ s: -1 })).toEqual(['d', 'c', 'b', 'a']);
        expect(await order({ 'meta.size': 1 })).toEqual(['d', 'a', 'b', 'c']);
        expect(await order({ 'meta.color': 1, n: -1 })).toEqual(['d', 'b', 'c', 'a']);
        expect(await order({ n: -1 }, { flag: true })).toEqual(['c', 'a']);
      });

      it('limits, after sorting', async () => {
        expect((await c.find({}, { sort: { n: 1 }, limit: 2 })).map((d) => d._id)).toEqual(['a', 'b']);
        expect((await c.find({}, { sort: { n: -1 }, limit: 1 })).map((d) => d._id)).toEqual(['d']);
        expect((await c.find({ 'meta.color': 'red' }, { sort: { n: -1 }, limit: 5 })).map((d) => d._id)).toEqual(['c', 'a']);
        expect(await c.find({}, { limit: 3 })).toHaveLength(3);
      });

      it('countDocuments', async () => {
        expect(await c.countDocuments({})).toBe(4);
        expect(await c.countDocuments({ flag: true })).toBe(2);
        expect(await c.countDocuments({ n: { $gte: 2 } })).toBe(3);
        expect(await c.countDocuments({ tags: 'y', _id: { $ne: 'a' } })).toBe(1);
        expect(await c.countDocuments({ s: 'nope' })).toBe(0);
      });
    });

    describe('findOneAndUpdate', () => {
      it('applies $set, $inc and $unset (dot paths too) and returns the document after', async () => {
        const c = fresh();
        await c.insertOne({ _id: 'job', status: 'queued', attempts: 0, meta: { a: 1, b: 2 }, tmp: 'x', gone: 1, alsoGone: true });
        const after = await c.findOneAndUpdate(
          { _id: 'job' },
          {
            $set: { status: 'rendering', 'meta.b': 3, 'meta.c': 'new', list: [1, 2] },
            $inc: { attempts: 1, 'meta.a': 2, fresh: 5 },
            $unset: { tmp: true, gone: 1, alsoGone: '' },
          },
        );
        const expected = { _id: 'job', status: 'rendering', attempts: 1, meta: { a: 3, b: 3, c: 'new' }, list: [1, 2], fresh: 5 };
        expect(after).toEqual(expected);
        expect(await c.findOne({ _id: 'job' })).toEqual(expected);
        expect(await c.findOneAndUpdate({ _id: 'job' }, { $inc: { attempts: -3 } })).toMatchObject({ attempts: -2 });
      });

      it('returns null and changes nothing when nothing matches', async () => {
        const c = fresh();
        await c.insertOne({ _id: 'one', status: 'done' });
        expect(await c.findOneAndUpdate({ _id: 'one', status: 'queued' }, { $set: { status: 'rendering' } })).toBeNull();
        expect(await c.findOneAndUpdate({ _id: 'other' }, { $set: { status: 'rendering' } })).toBeNull();
        expect(await c.find({})).toEqual([{ _id: 'one', status: 'done' }]);
      });

      it('updates only one document when several match', async () => {
        const c = fresh();
        for (const _id of ['p', 'q', 'r']) await c.insertOne({ _id, group: 'g', claimed: false });
        const claimed = await c.findOneAndUpdate({ group: 'g', claimed: false }, { $set: { claimed: true } });
        expect(claimed).toMatchObject({ group: 'g', claimed: true });
        expect(await c.countDocuments({ claimed: true })).toBe(1);
      });

      it('upsert inserts with $setOnInsert applied, and leaves $setOnInsert out on update', async () => {
        const c = fresh();
        const first = await c.findOneAndUpdate(
          { _id: 'u1' },
          { $set: { status: 'queued' }, $inc: { attempts: 1 }, $setOnInsert: { createdAt: 't0', owner: 'me' } },
          { upsert: true },
        );
        expect(first).toEqual({ _id: 'u1', status: 'queued', attempts: 1, createdAt: 't0', owner: 'me' });
        const second = await c.findOneAndUpdate(
          { _id: 'u1' },
          { $set: { status: 'done' }, $inc: { attempts: 1 }, $setOnInsert: { createdAt: 't1', extra: true } },
          { upsert: true },
        );
        expect(second).toEqual({ _id: 'u1', status: 'done', attempts: 2, createdAt: 't0', owner: 'me' });
        expect(await c.countDocuments({})).toBe(1);
      });

      it('upsert without an _id in the filter seeds the filter fields and a string _id', async () => {
        const c = fresh();
        const inserted = (await c.findOneAndUpdate({ key: 'k1', 'owner.id': 'o1' }, { $set: { n: 1 } }, { upsert: true }))!;
        expect(inserted).toMatchObject({ key: 'k1', owner: { id: 'o1' }, n: 1 });
        expect(typeof inserted._id).toBe('string');
        expect(inserted._id.length).toBeGreaterThan(0);
        const updated = await c.findOneAndUpdate({ key: 'k1', 'owner.id': 'o1' }, { $set: { n: 2 } }, { upsert: true });
        expect(updated).toEqual({ ...inserted, n: 2 });
        expect(await c.findOne({ _id: inserted._id })).toEqual({ ...inserted, n: 2 });
        expect(await c.countDocuments({})).toBe(1);
      });

      it('with only $setOnInsert, leaves an existing document as it is', async () => {
        const c = fresh();
        await c.insertOne({ _id: 's', v: 1 });
        expect(await c.findOneAndUpdate({ _id: 's' }, { $setOnInsert: { v: 2 } }, { upsert: true })).toEqual({ _id: 's', v: 1 });
        expect(await c.findOneAndUpdate({ _id: 's' }, { $setOnInsert: { v: 2 } })).toEqual({ _id: 's', v: 1 });
      });

      it('a guarded update matches once: 20 concurrent claims, exactly one wins (single-flight)', async () => {
        const c = fresh();
        const jobs = ['r1', 'r2', 'r3', 'r4', 'r5'];
        for (const _id of jobs) await c.insertOne({ _id, status: 'queued' });
        const claims = jobs.flatMap((_id) =>
          Array.from({ length: 20 }, () => c.findOneAndUpdate({ _id, status: 'queued' }, { $set: { status: 'rendering' } })),
        );
        const results = await Promise.all(claims);
        for (const _id of jobs) {
          const won = results.filter((doc) => doc !== null && doc._id === _id);
          expect(won).toEqual([{ _id, status: 'rendering' }]);
        }
        expect(results.filter((doc) => doc === null)).toHaveLength(jobs.length * 19);
        expect(await c.countDocuments({ status: 'rendering' })).toBe(jobs.length);
      });

      it('concurrent upserts of one _id create one document and apply every update', async () => {
        const c = fresh();
        const results = await Promise.all(
          Array.from({ length: 20 }, () =>
            c.findOneAndUpdate({ _id: 'counter' }, { $inc: { n: 1 }, $setOnInsert: { createdAt: 'first' } }, { upsert: true }),
          ),
        );
        expect(results.every((doc) => doc !== null && doc._id === 'counter')).toBe(true);
        expect(await c.find({})).toEqual([{ _id: 'counter', n: 20, createdAt: 'first' }]);
      });
    });

    describe('updateMany / deleteOne / deleteMany', () => {
      it('updateMany updates every match and returns how many matched', async () => {
        const c = fresh();
        for (const [i, group] of ['a', 'a', 'b', 'a', 'b'].entries()) await c.insertOne({ _id: `m${i}`, group, v: i });
        expect(await c.updateMany({ group: 'a' }, { $set: { flag: true }, $inc: { v: 10 } })).toBe(3);
        expect((await c.find({ flag: true }, { sort: { _id: 1 } })).map((d) => [d._id, d.v])).toEqual([
          ['m0', 10],
          ['m1', 11],
          ['m3', 13],
        ]);
        expect(await c.countDocuments({ group: 'b', flag: { $exists: false } })).toBe(2);
        expect(await c.updateMany({ group: 'zzz' }, { $set: { flag: true } })).toBe(0);
        expect(await c.updateMany({ v: { $gte: 10 } }, { $unset: { flag: 1 } })).toBe(3);
        expect(await c.countDocuments({ flag: { $exists: true } })).toBe(0);
        expect(await c.updateMany({ group: { $in: ['a', 'b'] } }, { $set: { status: 'pending' } })).toBe(5);
      });

      it('deleteOne deletes at most one and deleteMany all matches, both returning the count', async () => {
        const c = fresh();
        for (const [i, group] of ['a', 'a', 'a', 'b', 'b'].entries()) await c.insertOne({ _id: `d${i}`, group });
        expect(await c.deleteOne({ group: 'a' })).toBe(1);
        expect(await c.countDocuments({ group: 'a' })).toBe(2);
        expect(await c.deleteOne({ group: 'zzz' })).toBe(0);
        expect(await c.deleteOne({ _id: 'd3' })).toBe(1);
        expect(await c.findOne({ _id: 'd3' })).toBeNull();
        expect(await c.deleteMany({ group: 'a' })).toBe(2);
        expect(await c.deleteMany({ group: 'a' })).toBe(0);
        expect(await c.find({})).toEqual([{ _id: 'd4', group: 'b' }]);
        expect(await c.deleteMany({})).toBe(1);
        expect(await c.countDocuments({})).toBe(0);
        // A deleted _id can be used again.
        await c.insertOne({ _id: 'd0', group: 'again' });
        expect(await c.findOne({ _id: 'd0' })).toEqual({ _id: 'd0', group: 'again' });
      });
    });

    describe('indexes', () => {
      it('a non-unique index changes no answer and can be ensured again', async () => {
        const c = fresh();
        await c.ensureIndex({ status: 1 });
        await c.ensureIndex({ status: 1 });
        await c.ensureIndex({ _id: 1 });
        await c.insertOne({ _id: 'i1', status: 'x' });
        await c.insertOne({ _id: 'i2', status: 'x' });
        expect(await c.countDocuments({ status: 'x' })).toBe(2);
        expect(await c.findOneAndUpdate({ status: 'x', _id: 'i2' }, { $set: { status: 'y' } })).toEqual({ _id: 'i2', status: 'y' });
        expect(await c.countDocuments({ status: 'x' })).toBe(1);
      });

      withUniqueIndexes('a unique index on a non-_id field rejects duplicates with DuplicateKeyError', async () => {
        const c = fresh();
        await c.ensureIndex({ email: 1 }, { unique: true });
        await c.ensureIndex({ email: 1 }, { unique: true });
        await c.insertOne({ _id: 'u1', email: 'a@example.com' });
        await c.insertOne({ _id: 'u2', email: 'b@example.com' });
        await expect(c.insertOne({ _id: 'u3', email: 'a@example.com' })).rejects.toBeInstanceOf(DuplicateKeyError);
        await expect(c.findOneAndUpdate({ _id: 'u2' }, { $set: { email: 'a@example.com' } })).rejects.toBeInstanceOf(DuplicateKeyError);
        await expect(c.updateMany({ _id: 'u2' }, { $set: { email: 'a@example.com' } })).rejects.toBeInstanceOf(DuplicateKeyError);
        await expect(
          c.findOneAndUpdate({ _id: 'u4' }, { $set: { email: 'b@example.com' } }, { upsert: true }),
        ).rejects.toBeInstanceOf(DuplicateKeyError);
        expect(await c.find({}, { sort: { _id: 1 } })).toEqual([
          { _id: 'u1', email: 'a@example.com' },
          { _id: 'u2', email: 'b@example.com' },
        ]);
      });

      withUniqueIndexes('a compound unique index rejects only a duplicate combination', async () => {
        const c = fresh();
        await c.ensureIndex({ project: 1, name: -1 }, { unique: true });
        await c.insertOne({ _id: 'x1', project: 'p', name: 'a' });
        await c.insertOne({ _id: 'x2', project: 'p', name: 'b' });
        await c.insertOne({ _id: 'x3', project: 'q', name: 'a' });
        await expect(c.insertOne({ _id: 'x4', project: 'p', name: 'a' })).rejects.toBeInstanceOf(DuplicateKeyError);
        expect(await c.countDocuments({})).toBe(3);
      });

      withUniqueIndexes('ensuring a unique index over existing duplicates fails with DuplicateKeyError', async () => {
        const c = fresh();
        await c.insertOne({ _id: 'e1', slug: 'same' });
        await c.insertOne({ _id: 'e2', slug: 'same' });
        await expect(c.ensureIndex({ slug: 1 }, { unique: true })).rejects.toBeInstanceOf(DuplicateKeyError);
        await c.insertOne({ _id: 'e3', slug: 'same' });
        expect(await c.countDocuments({ slug: 'same' })).toBe(3);
      });
    });

    describe('lifecycle', () => {
      it('ping resolves on an open store', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it('data survives close and reopen', async () => {
        const first = await harness.open();
        const a = first.collection<Doc>('persisted');
        await a.insertOne({ _id: 'keep', v: 1, nested: { list: [1, 2] } });
        await a.insertOne({ _id: 'change', v: 1 });
        await a.insertOne({ _id: 'drop', v: 1 });
        await a.findOneAndUpdate({ _id: 'change' }, { $set: { v: 2 }, $unset: { nested: 1 } });
        await a.findOneAndUpdate({ _id: 'upserted' }, { $set: { v: 3 }, $setOnInsert: { createdAt: 't0' } }, { upsert: true });
        await a.deleteOne({ _id: 'drop' });
        await first.close();

        const second = await harness.open();
        try {
          const b = second.collection<Doc>('persisted');
          expect(await b.find({}, { sort: { _id: 1 } })).toEqual([
            { _id: 'change', v: 2 },
            { _id: 'keep', v: 1, nested: { list: [1, 2] } },
            { _id: 'upserted', v: 3, createdAt: 't0' },
          ]);
          await b.insertOne({ _id: 'after-reopen' });
          expect(await b.countDocuments({})).toBe(4);
        } finally {
          await second.close();
        }
      });

      withUniqueIndexes('a unique index survives close and reopen', async () => {
        const first = await harness.open();
        await first.collection<Doc>('unique-persisted').ensureIndex({ code: 1 }, { unique: true });
        await first.collection<Doc>('unique-persisted').insertOne({ _id: 'one', code: 'c' });
        await first.close();
        const second = await harness.open();
        try {
          await expect(second.collection<Doc>('unique-persisted').insertOne({ _id: 'two', code: 'c' })).rejects.toBeInstanceOf(
            DuplicateKeyError,
          );
        } finally {
          await second.close();
        }
      });

      it('close is idempotent; a closed store refuses work instead of reconnecting', async () => {
        const other = await harness.open();
        const c = other.collection<Doc>('closing');
        await c.insertOne({ _id: 'x' });
        await other.close();
        await other.close();
        await expect(other.ping()).rejects.toThrow(/closed/);
        await expect(c.findOne({ _id: 'x' })).rejects.toThrow(/closed/);
        expect(() => other.collection('closing')).toThrow(/closed/);
      });

      it('close stops every timer and socket the store opened', async () => {
        const before = activeResources();
        const other = await harness.open();
        const c = other.collection<Doc>('handles');
        await c.insertOne({ _id: 'h' });
        await c.findOneAndUpdate({ _id: 'h' }, { $set: { v: 1 } });
        await other.ping();
        await other.close();
        // Sockets report closed a moment after close() resolves; the shared store's timers come and go.
        await eventually(() => {
          const after = activeResources();
          for (const kind of ['Timeout', 'TCPSocketWrap', 'TCPWRAP'] as const) {
            expect({ kind, count: after[kind] }).toEqual({ kind, count: Math.min(after[kind], before[kind]) });
          }
        });
      });
    });
  });
}

function activeResources(): Record<'Timeout' | 'TCPSocketWrap' | 'TCPWRAP', number> {
  const counts = { Timeout: 0, TCPSocketWrap: 0, TCPWRAP: 0 };
  for (const kind of process.getActiveResourcesInfo()) if (kind in counts) counts[kind as keyof typeof counts] += 1;
  return counts;
}

async function eventually(check: () => void, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backends.

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'montage-store-'));
}

/** A MongoDB to talk to: MONGODB_URI, or CongoDB started once for this file (stopped in afterAll). */
const REAL_MONGODB_URI = process.env.MONGODB_URI?.trim() || undefined;
let congo: { child: ChildProcessWithoutNullStreams; uri: string } | undefined;
let congoStarting: Promise<string> | undefined;

function mongoUri(): Promise<string> {
  if (REAL_MONGODB_URI) return Promise.resolve(REAL_MONGODB_URI);
  congoStarting ??= startCongo();
  return congoStarting;
}

function startCongo(): Promise<string> {
  const script = path.join(__dirname, '..', 'helpers', 'congo-server.mjs');
  const child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'pipe'] });
  return new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => fail(new Error(`CongoDB did not start within 20 s: ${err}`)), 20_000);
    function fail(error: Error) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(error);
    }
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && !congo) {
        clearTimeout(timer);
        congo = { child, uri: line.trim() };
        resolve(congo.uri);
      }
    });
    child.once('exit', (code, signal) => {
      if (!congo) fail(new Error(`CongoDB exited (${code ?? signal}) before printing its URI: ${err}`));
    });
  });
}

afterAll(async () => {
  if (!congo) return;
  const { child } = congo;
  congo = undefined;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  child.stdin.destroy();
  child.stdout.destroy();
  child.stderr.destroy();
});

async function dropDatabase(uri: string, dbName: string): Promise<void> {
  const connection = await mongoose.createConnection(uri, { dbName, serverSelectionTimeoutMS: 5000 }).asPromise();
  try {
    await connection.dropDatabase();
  } finally {
    await connection.close();
  }
}

describeContract('nedb', async () => {
  const dataDir = tempDir();
  return {
    open: async () => new NedbDocumentStore(dataDir),
    dispose: async () => fs.rmSync(dataDir, { recursive: true, force: true }),
  };
});

describeContract(
  REAL_MONGODB_URI ? 'mongodb (MONGODB_URI)' : 'mongodb (CongoDB)',
  async () => {
    const uri = await mongoUri();
    const dbName = `montage_contract_${process.pid}_${randomUUID().slice(0, 8)}`;
    return {
      open: () => MongoDocumentStore.create(uri, { dbName, serverSelectionTimeoutMS: 5000 }),
      dispose: () => dropDatabase(uri, dbName),
    };
  },
  REAL_MONGODB_URI ? {} : { skip: { uniqueIndexes: 'CongoDB does not enforce unique indexes' } },
);

// ---------------------------------------------------------------------------------------------
// Adapter-specific behaviour outside the shared contract.

describe('NedbDocumentStore on disk', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = tempDir();
  });
  afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('keeps one datafile per collection under <dataDir>/db/<name>.db', async () => {
    const store = new NedbDocumentStore(dataDir);
    expect(store.kind).toBe('nedb');
    await store.collection<Doc>('renders').insertOne({ _id: 'r' });
    await store.collection<Doc>('tokens').insertOne({ _id: 't' });
    await store.close();
    expect(fs.readdirSync(path.join(dataDir, 'db')).sort()).toEqual(['renders.db', 'tokens.db']);
  });

  it('compacts the datafile on close, so updates do not grow it forever', async () => {
    const store = new NedbDocumentStore(dataDir);
    const c = store.collection<Doc>('busy');
    await c.insertOne({ _id: 'job', n: 0 });
    for (let i = 0; i < 50; i++) await c.findOneAndUpdate({ _id: 'job' }, { $inc: { n: 1 } });
    const file = path.join(dataDir, 'db', 'busy.db');
    const lines = () => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
    expect(lines()).toBeGreaterThan(50);
    await store.close();
    expect(lines()).toBe(1);
    const reopened = new NedbDocumentStore(dataDir);
    expect(await reopened.collection<Doc>('busy').findOne({ _id: 'job' })).toEqual({ _id: 'job', n: 50 });
    await reopened.close();
  });

  it('reports a corrupt datafile from every operation instead of hanging, and still closes', async () => {
    fs.mkdirSync(path.join(dataDir, 'db'), { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'db', 'broken.db'), 'not json\nnor this\n');
    const store = new NedbDocumentStore(dataDir);
    await expect(store.collection<Doc>('broken').findOne({ _id: 'x' })).rejects.toThrow();
    await expect(store.collection<Doc>('broken').insertOne({ _id: 'x' })).rejects.toThrow();
    await store.close();
  });

  it('refuses collection names that are not plain file names', () => {
    const store = new NedbDocumentStore(dataDir);
    expect(() => store.collection('../escape')).toThrow(/Invalid collection name/);
    expect(() => store.collection('')).toThrow(/Invalid collection name/);
    return store.close();
  });
});

describe('createDocumentStore', () => {
  it('uses nedb under dataDir when MONGODB_URI is not set', async () => {
    const dataDir = tempDir();
    try {
      const config = loadConfig({ MONTAGE_DATA_DIR: dataDir });
      expect(config.mongodbUri).toBeUndefined();
      const store = await createDocumentStore(config, {});
      expect(store.kind).toBe('nedb');
      await store.collection<Doc>('probe').insertOne({ _id: 'p' });
      await store.close();
      expect(fs.existsSync(path.join(dataDir, 'db', 'probe.db'))).toBe(true);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('uses MongoDB when MONGODB_URI is set', async () => {
    const uri = await mongoUri();
    const config = loadConfig({ MONTAGE_DATA_DIR: os.tmpdir(), MONGODB_URI: uri });
    expect(config.mongodbUri).toBe(uri);
    const store = await createDocumentStore(config, { MONGODB_URI: uri });
    try {
      expect(store.kind).toBe('mongodb');
      await store.ping();
    } finally {
      await store.close();
    }
  });
});
