import { Module } from '@nestjs/common';
import { MONTAGE_CONFIG, type MontageConfig } from '../../config/config';
import { AzureUploadTarget } from './azure.target';
import { FacebookUploadTarget } from './facebook.target';
import { FtpUploadTarget } from './ftp.target';
import { HttpUploadTarget } from './http.target';
import { DestinationType, UPLOAD_TARGETS } from './port';
import { S3UploadTarget } from './s3.target';
import { SftpUploadTarget } from './sftp.target';
import { YouTubeUploadTarget } from './youtube.target';

/** Every upload destination's driver, by type (filled in as drivers land). */
@Module({
  providers: [
    {
      provide: UPLOAD_TARGETS,
      useFactory: (config: MontageConfig) => ({
        [DestinationType.S3]: new S3UploadTarget(),
        [DestinationType.Http]: new HttpUploadTarget(),
        [DestinationType.Azure]: new AzureUploadTarget(),
        [DestinationType.Ftp]: new FtpUploadTarget(),
        [DestinationType.Sftp]: new SftpUploadTarget(),
        [DestinationType.YouTube]: new YouTubeUploadTarget(config.deliveries),
        [DestinationType.Facebook]: new FacebookUploadTarget(config.deliveries),
      }),
      inject: [MONTAGE_CONFIG],
    },
  ],
  exports: [UPLOAD_TARGETS],
})
export class UploadTargetModule {}
