import { Injectable } from '@nestjs/common';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/** Font families installed on this machine, as fontconfig (and so Pango and librsvg) sees them. */
@Injectable()
export class FontsRepository {
  private families?: Promise<Set<string>>;

  installedFamilies(): Promise<Set<string>> {
    this.families ??= promisify(execFile)('fc-list', [':', 'family'], { maxBuffer: 16 * 1024 * 1024 }).then(
      ({ stdout }) => new Set(stdout.split('\n').flatMap((line) => line.split(',')).map((f) => f.trim().toLowerCase()).filter(Boolean)),
      () => new Set<string>(), // no fontconfig: every family check will fail with a clear message
    );
    return this.families;
  }
}
