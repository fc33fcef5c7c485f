import {
  BlobServiceClient,
  ContainerSASPermissions,
  generateBlobSASQueryParameters,
  SASProtocol,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';
import * as path from 'node:path';
import { eventually, freePort, spawnProc, type Proc } from './processes';

const AZURITE_BLOB = path.resolve(__dirname, '../../node_modules/azurite/dist/src/blob/main.js');
/** Azurite's well-known development account (published in its README; it guards nothing). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  /** http://127.0.0.1:<port>/devstoreaccount1 */
  accountUrl: string;
  /** A container SAS URL (read, add, create, write, delete, list) of a new container. */
  containerSasUrl(container: string, options?: { permissions?: string; key?: string }): Promise<string>;
  /** A blob's bytes, or undefined when there is no (committed) blob by that name. */
  readBlob(container: string, name: string): Promise<Buffer | undefined>;
  /** The blob's headers and metadata, as Azure reports them. */
  blobProperties(container: string, name: string): Promise<{ contentType?: string; cacheControl?: string; metadata?: Record<string, string>; etag?: string }>;
  /** Names of blocks staged but never committed under `name`. */
  uncommittedBlocks(container: string, name: string): Promise<string[]>;
  service: BlobServiceClient;
  stop(): Promise<void>;
}

/** Azurite's blob service (the Azure Storage emulator) in memory on a free loopback port. */
export async function startAzurite(): Promise<Azurite> {
  const port = await freePort();
  const proc: Proc = spawnProc(
    process.execPath,
    [AZURITE_BLOB, '--blobHost', '127.0.0.1', '--blobPort', String(port), '--inMemoryPersistence', '--skipApiVersionCheck', '--loose', '--disableTelemetry', '--silent'],
    process.env,
  );
  const accountUrl = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  const credential = new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);
  const service = new BlobServiceClient(accountUrl, credential);
  const stop = async () => {
    if (proc.running()) {
      process.kill(proc.pid, 'SIGTERM');
      const killed = setTimeout(() => proc.running() && process.kill(proc.pid, 'SIGKILL'), 5000);
      await proc.exited;
      clearTimeout(killed);
    }
  };
  try {
    await eventually(
      'Azurite to answer',
      async () => {
        if (!proc.running()) throw new Error(`Azurite exited: ${proc.output().slice(-2000)}`);
        await service.getProperties();
        return true;
      },
      30_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    accountUrl,
    service,
    containerSasUrl: async (container, options = {}) => {
      await service.getContainerClient(container).createIfNotExists();
      const sas = generateBlobSASQueryParameters(
        {
          containerName: container,
          permissions: ContainerSASPermissions.parse(options.permissions ?? 'racwdl'),
          startsOn: new Date(Date.now() - 60_000),
          expiresOn: new Date(Date.now() + 3600_000),
          protocol: SASProtocol.HttpsAndHttp,
        },
        options.key ? new StorageSharedKeyCredential(AZURITE_ACCOUNT, options.key) : credential,
      );
      return `${accountUrl}/${container}?${sas.toString()}`;
    },
    readBlob: async (container, name) => {
      try {
        return await service.getContainerClient(container).getBlobClient(name).downloadToBuffer();
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return undefined;
        throw err;
      }
    },
    blobProperties: async (container, name) => {
      const props = await service.getContainerClient(container).getBlobClient(name).getProperties();
      return { contentType: props.contentType, cacheControl: props.cacheControl, metadata: props.metadata, etag: props.etag };
    },
    uncommittedBlocks: async (container, name) => {
      try {
        const list = await service.getContainerClient(container).getBlockBlobClient(name).getBlockList('uncommitted');
        return (list.uncommittedBlocks ?? []).map((b) => b.name);
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return [];
        throw err;
      }
    },
    stop,
  };
}
