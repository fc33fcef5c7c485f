import { type DynamicModule, Global, Module } from '@nestjs/common';
import { MONTAGE_CONFIG, type MontageConfig } from './config';

/**
 * The configuration, read once by the entry point (API, render node, CLI) and given to every
 * module: nothing else reads the environment or writes to it.
 */
@Global()
@Module({})
export class ConfigModule {
  static forRoot(config: MontageConfig): DynamicModule {
    return { module: ConfigModule, global: true, providers: [{ provide: MONTAGE_CONFIG, useValue: config }], exports: [MONTAGE_CONFIG] };
  }
}
