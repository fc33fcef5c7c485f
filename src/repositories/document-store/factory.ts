import * as path from 'node:path';
import type { MontageConfig } from '../../config/config';
import { MongoDocumentStore } from './mongo';
import { NedbDocumentStore } from './nedb';
import type { DocumentStore } from './port';

/**
 * MongoDB (through mongoose) when MONGODB_URI is set, the embedded nedb store under
 * `<dataDir>/db/` otherwise. An explicit `env.MONGODB_URI` wins over the loaded config.
 */
export async function createDocumentStore(config: MontageConfig, env: NodeJS.ProcessEnv = process.env): Promise<DocumentStore> {
  const uri = (env.MONGODB_URI !== undefined ? env.MONGODB_URI : config.mongodbUri)?.trim();
  if (uri) return MongoDocumentStore.create(uri);
  const store = new NedbDocumentStore(path.resolve(config.dataDir));
  await store.ping();
  return store;
}
