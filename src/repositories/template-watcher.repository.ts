import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { type FSWatcher, readdirSync, watch } from 'node:fs';
import * as path from 'node:path';

/** One burst of changes below the watched folder: the relative paths touched (forward slashes). */
export interface TemplateChange {
  paths: string[];
}

export type ChangeListener = (change: TemplateChange) => void;

interface Watch {
  /** One fs.watch per directory, by relative path ('' for the root). */
  dirs: Map<string, FSWatcher>;
  listeners: Set<ChangeListener>;
  pending: Set<string>;
  timer?: NodeJS.Timeout;
}

/**
 * fs.watch on every directory of the templates folder, debounced: an editor's save is several
 * events (write, rename of a temp file over the original, chmod), so listeners hear one change
 * per quiet `debounceMs`. Directories are watched rather than files (Node's recursive mode on
 * Linux loses a file replaced by a rename); new sub-folders are picked up as they appear.
 * The watch starts with the first listener of a folder and stops with the last.
 */
@Injectable()
export class TemplateWatcherRepository implements OnModuleDestroy {
  private readonly logger = new Logger('TemplateWatcher');
  private readonly watches = new Map<string, Watch>();

  /** Calls `listener` after each burst of changes below `root`; returns the unsubscribe. */
  subscribe(root: string, listener: ChangeListener, debounceMs = 150): () => void {
    let entry = this.watches.get(root);
    if (!entry) {
      const created: Watch = { dirs: new Map(), listeners: new Set(), pending: new Set() };
      const fire = () => {
        const paths = [...created.pending].sort();
        created.pending.clear();
        for (const l of created.listeners) l({ paths });
      };
      const add = (rel: string) => {
        if (created.dirs.has(rel)) return;
        let watcher: FSWatcher;
        try {
          watcher = watch(path.join(root, rel), { persistent: false });
        } catch (err) {
          if (rel === '') this.logger.warn(`cannot watch ${root}: ${(err as Error).message}`);
          return;
        }
        created.dirs.set(rel, watcher);
        watcher.on('change', (_event, file) => {
          const child = file ? (rel ? `${rel}/${String(file)}` : String(file)) : rel;
          created.pending.add(child);
          clearTimeout(created.timer);
          created.timer = setTimeout(fire, debounceMs);
          if (file) scan(child); // a new sub-folder gets a watch of its own
        });
        // A folder removed under the watch ends its watch: forget it (it is watched again if it comes back).
        watcher.on('error', () => {
          watcher.close();
          created.dirs.delete(rel);
        });
        scan(rel);
      };
      const scan = (rel: string) => {
        let entries: import('node:fs').Dirent[];
        try {
          entries = readdirSync(path.join(root, rel), { withFileTypes: true });
        } catch {
          return; // a file, or gone
        }
        if (!created.dirs.has(rel) && rel !== '') add(rel);
        for (const e of entries) if (e.isDirectory() && !e.name.startsWith('.')) add(rel ? `${rel}/${e.name}` : e.name);
      };
      add('');
      this.watches.set(root, created);
      entry = created;
    }
    entry.listeners.add(listener);
    return () => {
      const current = this.watches.get(root);
      if (!current) return;
      current.listeners.delete(listener);
      if (current.listeners.size === 0) this.close(root);
    };
  }

  private close(root: string): void {
    const entry = this.watches.get(root);
    if (!entry) return;
    clearTimeout(entry.timer);
    for (const w of entry.dirs.values()) w.close();
    this.watches.delete(root);
  }

  onModuleDestroy(): void {
    for (const root of [...this.watches.keys()]) this.close(root);
  }
}
