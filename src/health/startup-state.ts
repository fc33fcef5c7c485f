/**
 * What this process is still waiting for while it starts (a store, a bucket, Redis), shared
 * by the waits that fill it and the probes that report it. One per process, on purpose: the
 * start-up probe answers before any module exists.
 */
const waiting = new Map<string, { since: number; reason: string }>();

export const startupState = {
  waiting(name: string, reason: string): void {
    const known = waiting.get(name);
    waiting.set(name, { since: known?.since ?? Date.now(), reason });
  },
  reached(name: string): void {
    waiting.delete(name);
  },
  /** Each dependency not reached yet, by its public name (`store`, `storage`, `queue`), and why (for the log). */
  pending(): Array<{ name: string; reason: string; waitingSec: number }> {
    return [...waiting].map(([name, w]) => ({ name, reason: w.reason, waitingSec: Math.round((Date.now() - w.since) / 1000) }));
  },
};
