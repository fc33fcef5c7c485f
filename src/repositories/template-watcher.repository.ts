import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { type FSWatcher, readdirSync, statSync, watch } from 'node:fs';
import * as path from 'node:path';

/** One burst of changes below the watched folder: the relative paths touched (forward slashes). */
export interface TemplateChange {
  paths: string[];
}

export type ChangeListener = (change: TemplateChange) => void;

interface Watch {
  /** One fs.watch per directory, by relative path ('' for the root), with the directory's inode. */
  dirs: Map<string, { watcher: FSWatcher; ino: number }>;
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
      const inodeOf = (rel: string) => {
        try {
          const st = statSync(path.join(root, rel));
          return st.isDirectory() ? st.ino : undefined;
        } catch {
          return undefined;
        }
      };
      // A folder removed (or replaced: `rm -rf` and a copy, a checkout) leaves a dead watch on
      // Linux, without an error: it and the ones below it go, and a folder there now is watched anew.
      const drop = (rel: string) => {
        for (const [dir, w] of [...created.dirs]) {
          if (dir !== rel && !dir.startsWith(`${rel}/`)) continue;
          w.watcher.close();
          created.dirs.delete(dir);
        }
      };
      const add = (rel: string) => {
        const ino = inodeOf(rel);
        const known = created.dirs.get(rel);
        if (known && known.ino === ino) return;
        if (known) drop(rel);
        if (ino === undefined) return;
        let watcher: FSWatcher;
        try {
          watcher = watch(path.join(root, rel), { persistent: false });
        } catch (err) {
          if (rel === '') this.logger.warn(`cannot watch ${root}: ${(err as Error).message}`);
          return;
        }
        created.dirs.set(rel, { watcher, ino });
        watcher.on('change', (_event, file) => {
          const child = file ? (rel ? `${rel}/${String(file)}` : String(file)) : rel;
          created.pending.add(child);
          clearTimeout(created.timer);
          created.timer = setTimeout(fire, debounceMs);
          if (file && inodeOf(child) === undefined) drop(child);
          else if (file) scan(child); // a new (or replaced) sub-folder gets a watch of its own
        });
        // A folder removed under the watch ends its watch: forget it (it is watched again if it comes back).
        watcher.on('error', () => drop(rel));
        scan(rel);
      };
      const scan = (rel: string) => {
        let entries: import('node:fs').Dirent[];
        try {
          entries = readdirSync(path.join(root, rel), { withFileTypes: true });
        } catch {
          return; // a file, or gone
        }
        if (rel !== '') add(rel);
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
    for (const w of entry.dirs.values()) w.watcher.close();
    this.watches.delete(root);
  }

  onModuleDestroy(): void {
    for (const root of [...this.watches.keys()]) this.close(root);
  }
}
