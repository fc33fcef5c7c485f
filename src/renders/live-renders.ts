import { Injectable } from '@nestjs/common';
import type { LiveRender } from './live-render';

/**
 * Renders running in this process, by render key: single flight for their viewers, and the
 * live files the sweeper must leave alone.
 */
@Injectable()
export class LiveRenders {
  private readonly byKey = new Map<string, LiveRender>();

  get(key: string): LiveRender | undefined {
    return this.byKey.get(key);
  }

  has(key: string): boolean {
    return this.byKey.has(key);
  }

  add(live: LiveRender): void {
    this.byKey.set(live.key, live);
  }

  remove(live: LiveRender): void {
    if (this.byKey.get(live.key) === live) this.byKey.delete(live.key);
  }

  all(): LiveRender[] {
    return [...this.byKey.values()];
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Live files of renders running here, and of those that finished under a minute ago (kept for slow followers). */
  readonly keptFiles = new Set<string>();
}
