import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { type FSWatcher, watch } from 'node:fs';

/** One burst of changes below the watched folder: the relative paths touched (forward slashes). */
export interface TemplateChange {
  paths: string[];
}

export type ChangeListener = (change: TemplateChange) => void;

/**
 * fs.watch (recursive) on the templates folder, debounced: an editor's save is several events
 * (write, rename of a temp file, chmod), so listeners hear one change per quiet `debounceMs`.
 * The watch starts with the first listener and stops with the last.
 */
@Injectable()
export class TemplateWatcherRepository implements OnModuleDestroy {
  private readonly logger = new Logger('TemplateWatcher');
  private readonly watchers = new Map<string, { watcher: FSWatcher; listeners: Set<ChangeListener>; pending: Set<string>; timer?: NodeJS.Timeout }>();

  /** Calls `listener` after each burst of changes below `dir`; returns the unsubscribe. */
  subscribe(dir: string, listener: ChangeListener, debounceMs = 150): () => void {
    let entry = this.watchers.get(dir);
    if (!entry) {
      const pending = new Set<string>();
      const listeners = new Set<ChangeListener>();
      let watcher: FSWatcher;
      try {
        watcher = watch(dir, { recursive: true, persistent: false });
      } catch (err) {
        this.logger.warn(`cannot watch ${dir}: ${(err as Error).message}`);
        return () => undefined;
      }
      const created = { watcher, listeners, pending, timer: undefined as NodeJS.Timeout | undefined };
      watcher.on('change', (_event, file) => {
        if (file) pending.add(String(file).split('\\').join('/'));
        clearTimeout(created.timer);
        created.timer = setTimeout(() => {
          const paths = [...pending].sort();
          pending.clear();
          for (const l of listeners) l({ paths });
        }, debounceMs);
      });
      // A folder removed under the watch: the watch ends; listeners keep their subscription object.
      watcher.on('error', (err) => this.logger.warn(`watch on ${dir} failed: ${err.message}`));
      this.watchers.set(dir, created);
      entry = created;
    }
    entry.listeners.add(listener);
    return () => {
      const current = this.watchers.get(dir);
      if (!current) return;
      current.listeners.delete(listener);
      if (current.listeners.size === 0) this.close(dir);
    };
  }

  private close(dir: string): void {
    const entry = this.watchers.get(dir);
    if (!entry) return;
    clearTimeout(entry.timer);
    entry.watcher.close();
    this.watchers.delete(dir);
  }

  onModuleDestroy(): void {
    for (const dir of [...this.watchers.keys()]) this.close(dir);
  }
}
