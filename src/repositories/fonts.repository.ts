import { Injectable } from '@nestjs/common';
import { readFile, stat } from 'node:fs/promises';
import { fontFamilies, type FontNames } from '../templates/font-names';
import { runTied } from './child-processes';

const MAX_FONT_BYTES = 64 << 20;

/** Font families installed on this machine, as fontconfig (and so Pango and librsvg) sees them. */
@Injectable()
export class FontsRepository {
  private families?: Promise<Set<string>>;

  installedFamilies(): Promise<Set<string>> {
    this.families ??= runTied('fc-list', [':', 'family'], { timeoutMs: 30_000 }).then(
      ({ stdout }) => new Set(stdout.toString('utf8').split('\n').flatMap((line) => line.split(',')).map((f) => f.trim().toLowerCase()).filter(Boolean)),
      () => new Set<string>(), // no fontconfig: every family check will fail with a clear message
    );
    return this.families;
  }

  /** The families a font file declares (its `name` table), or why it is not a usable font. */
  async familiesOf(file: string): Promise<FontNames> {
    let bytes: Buffer;
    try {
      // Fonts are a few MB; a huge file is not read into memory to find out it is not one.
      if ((await stat(file)).size > MAX_FONT_BYTES) return { problem: `is over ${MAX_FONT_BYTES >> 20} MB` };
      bytes = await readFile(file);
    } catch (err) {
      return { problem: `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
    }
    return fontFamilies(bytes);
  }
}
