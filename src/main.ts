import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { loadConfig } from './config/config';

async function bootstrap() {
  const config = loadConfig();
  const app = await NestFactory.create(AppModule);
  app.enableShutdownHooks();
  await app.listen(config.port);
  Logger.log(`Montage listening on http://localhost:${config.port} (templates: ${config.templatesDir})`, 'Montage');
}

bootstrap().catch((err) => {
  // A configuration error is the user's to fix: say what, exit 2 like the CLI does.
  console.error(err instanceof Error ? err.message : err);
  process.exit(2);
});
