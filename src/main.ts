import 'reflect-metadata';
import { type LogLevel, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RenderRunner } from './renders/render-runner.service';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { AppModule } from './app.module';
import { badInput, MontageError } from './common/errors';
import { JsonExceptionFilter, sendError } from './common/http-exception.filter';
import { jsonPolicyProblems } from './common/json-policy';
import { loadConfig, type MontageConfig } from './config/config';
import { LifecycleService } from './lifecycle/lifecycle.service';
import { handleShutdown } from './lifecycle/shutdown';
import { JOB_QUEUE } from './jobs/queue.module';
import type { JobQueueRepository } from './repositories/job-queue/job-queue.repository';
import { RedisServerRepository } from './repositories/job-queue/redis-server.repository';
import { startStartupProbe } from './repositories/startup-probe.server';

import { json } from 'express';

const MULTIPART_ROUTES = new Set(['/v1/farm/upload-target']);
const JSON_TYPE = /^application\/([\w.+-]*\+)?json\s*(;|$)/i;

/**
 * Before any route: a body that is not JSON is 415, and a JSON body must pass the policy
 * (depth, keys) before anything of it is used or stored.
 */
function requestBodyPolicy(req: Request, res: Response, next: NextFunction): void {
  // Multipart forms, streamed by their own route (the farm's upload URL when storage is local).
  if (MULTIPART_ROUTES.has(req.path) && req.method === 'POST') return next();
  const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (hasBody && ['POST', 'PUT', 'PATCH'].includes(req.method) && !JSON_TYPE.test(req.headers['content-type'] ?? '')) {
    sendError(res, new MontageError('unsupported_media_type', 'send the request body as JSON, with Content-Type: application/json'));
    return;
  }
  if (req.body !== null && typeof req.body === 'object') {
    const problems = jsonPolicyProblems(req.body);
    if (problems.length > 0) {
      sendError(res, badInput(`the request body cannot be accepted: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`, problems));
      return;
    }
  }
  next();
}

/** The HTTP application, configured the same way for `npm start` and for the tests. */
export async function createApp(config: MontageConfig = loadConfig(), logger: LogLevel[] = ['error', 'warn', 'log']): Promise<NestExpressApplication> {
  // forceCloseConnections: once renders have drained, viewers still connected are cut rather than waited for.
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), { bodyParser: false, logger, forceCloseConnections: true, abortOnError: false });
  // A batch carries many requests: its route alone takes a larger body (parsed once: the general parser skips it).
  app.use('/v2/batch', json({ limit: config.deliveries.batchMaxBodyBytes }));
  app.useBodyParser('json', { limit: config.maxBodyBytes });
  app.use(requestBodyPolicy);
  app.useGlobalFilters(new JsonExceptionFilter());
  // Outputs are meant to be embedded anywhere; keys travel in headers, never cookies.
  app.enableCors({
    origin: '*',
    exposedHeaders: ['Content-Length', 'Content-Range', 'Accept-Ranges', 'ETag', 'X-Montage-Status', 'Retry-After'],
    allowedHeaders: ['Authorization', 'X-Api-Key', 'Content-Type', 'Range'],
  });
  if (config.trustProxy) app.set('trust proxy', true);
  return app;
}

/**
 * SIGTERM/SIGINT: no new connections and no new renders; jobs this process runs (the embedded
 * node's) get SHUTDOWN_GRACE_MS to finish (their viewers keep streaming), then go back to their
 * queue for another node or the next start; connections close (without waiting for a Redis
 * that is gone); the private redis-server stops last. Renders on other nodes go on.
 */
export async function stopApp(app: NestExpressApplication, config: MontageConfig): Promise<void> {
  const deadline = Date.now() + config.shutdownGraceMs;
  app.get(LifecycleService).draining = true;
  app.get(RedisServerRepository).holdRestarts(); // a private redis-server stopping now (a Ctrl-C to the group) stays stopped
  const server = app.getHttpServer();
  server.close();
  server.closeIdleConnections();
  // Viewers of renders on other nodes and the embedded node's jobs share the grace period.
  await Promise.all([app.get(RenderRunner).drain(config.shutdownGraceMs), app.get<JobQueueRepository>(JOB_QUEUE).drainWorkers(Math.max(0, deadline - Date.now()))]);
  await app.close();
}

async function bootstrap() {
  const logger = new Logger('Montage');
  const config = loadConfig();
  // Until the modules are up (a store or bucket may keep them waiting), probes get an answer.
  const probe = config.port ? await startStartupProbe(config.port) : undefined;
  let app: NestExpressApplication;
  try {
    app = await createApp(config);
    await app.init(); // module start-up (the store, the storage) happens here, under the probe
  } finally {
    await probe?.close();
  }
  const shutdown = handleShutdown({ name: 'API', graceMs: config.shutdownGraceMs, logger, stop: () => stopApp(app, config) });
  app.get(LifecycleService).onFatal((message) => shutdown.begin(message, 1));
  await app.listen(config.port);
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  logger.log(`Montage listening on http://localhost:${port} (templates: ${config.templatesDir}, data: ${config.dataDir})`);
}

if (require.main === module) {
  bootstrap().catch((err) => {
    // A configuration error is the user's to fix: say what, exit 2 like the CLI does; anything else (a dependency that never came) exits 1.
    const isConfig = err instanceof MontageError && err.kind === 'bad_input';
    console.error(err instanceof Error ? err.message : err);
    process.exit(isConfig ? 2 : 1);
  });
}
