import { ContainerClient, newPipeline, type Pipeline, RestError, type RequestPolicy, type RequestPolicyFactory, type WebResource } from '@azure/storage-blob';
import * as http from 'node:http';
import * as https from 'node:https';
import { assertAllowedLiteral, checkedLookup, PrivateAddressError, resolveAllowed } from '../outbound-http/guarded-network';
import { type AzureDestination, DestinationType, type UploadContext, type UploadResult, type UploadSource, type UploadTarget, UploadRefused } from './port';

/** Blocks of 4 MiB, 4 of them in flight: about 20 MiB of memory per upload at most. */
const BLOCK_BYTES = 4 * 1024 * 1024;
const BLOCKS_IN_FLIGHT = 4;

/** Storage error codes another attempt would get again. */
const REFUSED_CODES = new Set([
  'AuthenticationFailed',
  'AuthorizationFailure',
  'AuthorizationPermissionMismatch',
  'AuthorizationResourceTypeMismatch',
  'AuthorizationProtocolMismatch',
  'AuthorizationSourceIPMismatch',
  'AuthorizationServiceMismatch',
  'ContainerNotFound',
  'ContainerDisabled',
  'ContainerBeingDeleted',
  'AccountIsDisabled',
  'InvalidResourceName',
  'InvalidQueryParameterValue',
  'RequestBodyTooLarge',
]);

/**
 * Uploads to Azure Blob Storage through a container SAS URL: the output is staged as blocks and
 * committed once at the end, so a failed attempt leaves nothing under the name (uncommitted
 * blocks are not a blob, and Azure drops them after a week).
 */
export class AzureUploadTarget implements UploadTarget<DestinationType.Azure> {
  readonly type = DestinationType.Azure;

  async upload(destination: AzureDestination, source: UploadSource, ctx: UploadContext): Promise<UploadResult> {
    const container = parseSasUrl(destination.sas_url);
    const where = `Azure container ${describeContainer(container)}`;
    if (ctx.signal.aborted) throw new Error(`the upload to ${where} was aborted before it started`);
    try {
      // The SAS URL is the client's: its host is judged before anything is read or sent.
      assertAllowedLiteral(container.hostname, ctx.allowPrivateAddresses);
      await resolveAllowed(container.hostname, ctx.allowPrivateAddresses);
    } catch (err) {
      if (err instanceof PrivateAddressError) throw new UploadRefused(`${where} is not allowed: ${err.message}`);
      throw new Error(`${where} cannot be reached: ${(err as Error).message}`);
    }

    const guarded = guardedPipeline(ctx.allowPrivateAddresses);
    const blob = new ContainerClient(destination.sas_url, guarded.pipeline).getBlockBlobClient(destination.filename);
    const stream = await source.open();
    // stageBlock is not given the abort signal by the SDK: ending the stream stops the staging,
    // and the signal stops the commit.
    const onAbort = () => stream.destroy(new Error('aborted'));
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      let reported = 0;
      const uploaded = await blob.uploadStream(stream, BLOCK_BYTES, BLOCKS_IN_FLIGHT, {
        blobHTTPHeaders: { blobContentType: destination.contenttype || source.contentType, blobCacheControl: destination.cachecontrol },
        metadata: destination.metadata,
        abortSignal: ctx.signal,
        onProgress: ({ loadedBytes }) => {
          if (loadedBytes > reported) ctx.onProgress((reported = loadedBytes));
        },
      });
      const url = new URL(blob.url);
      url.search = '';
      return { url: url.toString(), etag: uploaded.etag?.replace(/^"|"$/g, '') };
    } catch (err) {
      if (ctx.signal.aborted) throw new Error(`the upload to ${where} was aborted`);
      throw plainError(err, where, destination.sas_url);
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
      stream.destroy();
      guarded.close();
    }
  }
}

function parseSasUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UploadRefused('the Azure SAS URL is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UploadRefused(`the Azure SAS URL must be https, not ${url.protocol.replace(/:$/, '')}`);
  return url;
}

/** The container as messages may show it: no SAS (it is the credential). */
function describeContainer(url: URL): string {
  return `${url.host}${url.pathname}`;
}

/**
 * A storage pipeline whose every connection resolves through the checked lookup, so a host that
 * passed the first check cannot answer a private address later (DNS rebinding). The SDK takes no
 * agent option, but its legacy request-policy factories may set `agent` on each request, which
 * its Node HTTP client then uses instead of its own shared agents. No gap is known: every request
 * of this pipeline (stage, commit, retries) goes through the policy; the agents are this upload's
 * own and closed after it.
 */
export function guardedPipeline(allowPrivateAddresses: boolean): { pipeline: Pipeline; close: () => void } {
  const lookup = checkedLookup(allowPrivateAddresses);
  const agents = { http: new http.Agent({ keepAlive: true, lookup }), https: new https.Agent({ keepAlive: true, lookup }) };
  const guardedAgent: RequestPolicyFactory = {
    create: (next: RequestPolicy): RequestPolicy => ({
      sendRequest: (request: WebResource) => {
        request.agent = request.url.startsWith('https:') ? agents.https : agents.http;
        return next.sendRequest(request);
      },
    }),
  };
  // Anonymous: the SAS in the URL is the credential.
  const pipeline = newPipeline(undefined, { retryOptions: { maxTries: 3 } });
  pipeline.factories.push(guardedAgent);
  return {
    pipeline,
    close: () => {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}

/**
 * The SDK's error as a plain one: UploadRefused for what another attempt would repeat, a plain
 * Error (retried) for the rest. The SAS never appears in the message.
 */
export function plainError(err: unknown, where: string, sasUrl: string): Error {
  const sas = new URL(sasUrl).search.slice(1);
  const scrub = (text: string) => {
    let out = sas ? text.split(sas).join('***') : text;
    out = out.replace(/([?&]sig=)[^&\s"']+/gi, '$1***');
    return out;
  };
  if (err instanceof UploadRefused) return err;
  if (err instanceof PrivateAddressError) return new UploadRefused(`${where} is not allowed: ${err.message}`);
  if (err instanceof RestError) {
    if (err.cause instanceof PrivateAddressError) return new UploadRefused(`${where} is not allowed: ${err.cause.message}`);
    const code = typeof err.code === 'string' ? err.code : (err.details as { errorCode?: string } | undefined)?.errorCode;
    const said = scrub((err.message || '').split('\n')[0]);
    const what = `${code ?? 'error'}${err.statusCode ? ` (HTTP ${err.statusCode})` : ''}${said && said !== code ? `: ${said}` : ''}`;
    const status = err.statusCode ?? 0;
    if ((code && REFUSED_CODES.has(code)) || status === 401 || status === 403) return new UploadRefused(`${where} refused the upload: ${what}`);
    return new Error(`the upload to ${where} failed: ${what}`);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new Error(`the upload to ${where} failed: ${scrub(message.split('\n')[0])}`);
}
