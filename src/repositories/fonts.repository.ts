import { Injectable } from '@nestjs/common';
import { runTied } from './child-processes';

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
}
