import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/**
 * The key that seals credentials when MONTAGE_SECRET_KEY is unset: generated once into
 * `<dataDir>/secret.key` (mode 0600, written exclusively so two processes starting at once
 * agree on one key). Every process of a deployment must read the same key.
 */
export class SecretKeyRepository {
  constructor(private readonly dataDir: string) {}

  get file(): string {
    return path.join(this.dataDir, 'secret.key');
  }

  async readOrCreate(): Promise<{ key: Buffer; created: boolean }> {
    await fs.mkdir(this.dataDir, { recursive: true });
    try {
      await fs.writeFile(this.file, randomBytes(32).toString('base64') + '\n', { flag: 'wx', mode: 0o600 });
      return { key: await this.read(), created: true };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    return { key: await this.read(), created: false };
  }

  private async read(): Promise<Buffer> {
    // A process that lost the race may read before the winner's write is complete.
    for (let tries = 0; ; tries++) {
      const text = (await fs.readFile(this.file, 'utf8')).trim();
      const key = Buffer.from(text, 'base64');
      if (key.length === 32 || tries >= 20) return key;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}
