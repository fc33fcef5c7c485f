import { Module } from '@nestjs/common';
import { UPLOAD_TARGETS } from './port';

/** Every upload destination's driver, by type (filled in as drivers land). */
@Module({
  providers: [{ provide: UPLOAD_TARGETS, useFactory: () => ({}) }],
  exports: [UPLOAD_TARGETS],
})
export class UploadTargetModule {}
