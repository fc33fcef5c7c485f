// Starts CongoDB, the in-process MongoDB wire-protocol server from @push.rocks/smartmongo (a dev
// dependency; ESM only, hence a child process rather than an import from jest), on a free loopback
// port, in memory, and prints its connection URI as the first line on stdout.
// Stops on SIGTERM/SIGINT, or when stdin closes (the parent went away), so it never outlives the tests.
//
// One patch brings CongoDB (@push.rocks/smartmongo 2.2.0) closer to MongoDB without letting a wrong
// adapter pass: MongoDB accepts any BSON value as `_id` (Montage uses strings), CongoDB turns every
// `_id` into an ObjectId and rejects other strings ("input must be a 24 character hex string").
// String ids are kept as they are, keyed apart from ObjectIds.
// Not patched, so the contract suite skips it on CongoDB: unique indexes are not enforced.
// The URI asks the driver to poll the server's state (serverMonitoringMode=poll): CongoDB advertises
// a topologyVersion but answers the streaming `hello` once, without moreToCome, and the driver then
// drops the connection pool in the middle of the tests ("Server ended moreToCome unexpectedly").
import { CongoServer, MemoryStorageAdapter } from '@push.rocks/smartmongo/dist_ts/congodb/index.js';

// String ids: CongoDB keys documents and index entries by `_id.toHexString()`.
Object.defineProperty(String.prototype, 'toHexString', {
  value: function toHexString() {
    return `string:${this}`;
  },
  enumerable: false,
  configurable: true,
  writable: true,
});
const insertObjectId = MemoryStorageAdapter.prototype.insertOne;
MemoryStorageAdapter.prototype.insertOne = async function insertOne(dbName, collName, doc) {
  if (typeof doc._id !== 'string') return insertObjectId.call(this, dbName, collName, doc);
  const collection = this.ensureCollection(dbName, collName);
  const key = doc._id.toHexString();
  // "Duplicate key" in the message is what CongoDB's insert handler maps to code 11000.
  if (collection.has(key)) throw Object.assign(new Error(`Duplicate key error: _id ${doc._id}`), { code: 11000 });
  const stored = { ...doc };
  collection.set(key, stored);
  return stored;
};

const server = new CongoServer({ host: '127.0.0.1', port: 0, storage: 'memory' });
await server.start();
// Started on port 0: ask the listening socket which port it got (getConnectionUri() would say 0).
const address = server.server?.address();
if (!address || typeof address !== 'object') throw new Error('CongoDB is not listening');
process.stdout.write(`mongodb://127.0.0.1:${address.port}/?serverMonitoringMode=poll\n`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await server.stop().catch(() => undefined);
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
