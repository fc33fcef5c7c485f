import { Module } from '@nestjs/common';
import { MONTAGE_CONFIG, type MontageConfig } from '../../config/config';
import { LocalOutputStorage } from './local';
import { S3OutputStorage } from './s3';
import { RenderModule } from '../../render/render.module';
import { OUTPUT_STORAGE, type OutputStorage } from './port';

export function createOutputStorage(config: MontageConfig): OutputStorage {
  return config.storage.kind === 's3' ? new S3OutputStorage(config.storage, config.dataDir) : new LocalOutputStorage(config.storage.dir);
}

/** The storage of outputs and segments chosen by STORAGE_URL, shared by the API and render nodes. */
@Module({
  imports: [RenderModule], // for MONTAGE_CONFIG
  providers: [{ provide: OUTPUT_STORAGE, inject: [MONTAGE_CONFIG], useFactory: createOutputStorage }],
  exports: [OUTPUT_STORAGE],
})
export class OutputStorageModule {}
