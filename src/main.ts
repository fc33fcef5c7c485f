import 'reflect-metadata';
import { type LogLevel, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import { JsonExceptionFilter } from './common/http-exception.filter';
import { loadConfig, type MontageConfig } from './config/config';

/** The HTTP application, configured the same way for `npm start` and for the tests. */
export async function createApp(config: MontageConfig = loadConfig(), logger: LogLevel[] = ['error', 'warn', 'log']): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), { bodyParser: false, logger });
  app.useBodyParser('json', { limit: config.maxBodyBytes });
  app.useGlobalFilters(new JsonExceptionFilter());
  // Outputs are meant to be embedded anywhere; keys travel in headers, never cookies.
  app.enableCors({
    origin: '*',
    exposedHeaders: ['Content-Length', 'Content-Range', 'Accept-Ranges', 'ETag', 'X-Montage-Status'],
    allowedHeaders: ['Authorization', 'X-Api-Key', 'Content-Type', 'Range'],
  });
  if (config.trustProxy) app.set('trust proxy', true);
  app.enableShutdownHooks();
  return app;
}

async function bootstrap() {
  const config = loadConfig();
  const app = await createApp(config);
  await app.listen(config.port);
  Logger.log(`Montage listening on http://localhost:${config.port} (templates: ${config.templatesDir}, data: ${config.dataDir})`, 'Montage');
}

if (require.main === module) {
  bootstrap().catch((err) => {
    // A configuration error is the user's to fix: say what, exit 2 like the CLI does.
    console.error(err instanceof Error ? err.message : err);
    process.exit(2);
  });
}
