import { Global, Logger, Module } from '@nestjs/common';
import { MONTAGE_CONFIG, type MontageConfig } from '../config/config';
import { SecretKeyRepository } from '../repositories/secret-key.repository';
import { parseSecretKey, SecretBox } from './secret-box';

/** The SecretBox that seals credentials (connections, upload tasks, webhook secrets) in the store. */
@Global()
@Module({
  providers: [
    {
      provide: SecretBox,
      inject: [MONTAGE_CONFIG],
      useFactory: async (config: MontageConfig) => {
        if (config.secretKey) return new SecretBox(parseSecretKey(config.secretKey));
        const repo = new SecretKeyRepository(config.dataDir);
        const { key, created } = await repo.readOrCreate();
        if (created) new Logger('Secrets').warn(`generated ${repo.file} to seal credentials; every process of this deployment needs it (or set MONTAGE_SECRET_KEY)`);
        if (key.length !== 32) throw new Error(`${repo.file} is not a 32-byte base64 key`);
        return new SecretBox(key);
      },
    },
  ],
  exports: [SecretBox],
})
export class SecretsModule {}
