/**
 * Marks cached files as used (for least-recently-used eviction) at most once per `everyMs`
 * per file and process: marking is a write, a cache hit should not cost one every time.
 */
export class UsedMarker {
  private readonly marked = new Map<string, number>();

  constructor(
    private readonly mark: (file: string) => Promise<void>,
    private readonly everyMs = 60_000,
    private readonly remember = 10_000,
  ) {}

  used(file: string): void {
    const now = Date.now();
    if (now - (this.marked.get(file) ?? 0) < this.everyMs) return;
    this.marked.set(file, now);
    if (this.marked.size > this.remember) this.marked.delete(this.marked.keys().next().value!);
    void this.mark(file).catch(() => undefined);
  }
}
