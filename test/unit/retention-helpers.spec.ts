import { PeriodicPass } from '../../src/retention/periodic-pass';
import { UsedMarker } from '../../src/retention/used-marker';

describe('PeriodicPass', () => {
  it('runs after each interval, never two passes at once, and a call during a pass gets that pass', async () => {
    let runs = 0;
    let release!: () => void;
    const pass = new PeriodicPass(
      () => new Promise<number>((resolve) => {
        runs++;
        release = () => resolve(runs);
      }),
      10,
      () => undefined,
    );
    const a = pass.now();
    const b = pass.now();
    expect(runs).toBe(1);
    release();
    expect(await a).toBe(1);
    expect(await b).toBe(1);
    pass.start();
    await new Promise((r) => setTimeout(r, 50));
    expect(runs).toBe(2); // the timed pass waits for its own end before the next is scheduled
    release();
    pass.stop();
    const after = runs;
    await new Promise((r) => setTimeout(r, 50));
    expect(runs).toBe(after);
  });

  it('reports a failed pass and goes on', async () => {
    const errors: string[] = [];
    let calls = 0;
    const pass = new PeriodicPass(async () => {
      calls++;
      throw new Error(`boom ${calls}`);
    }, 5, (err) => errors.push(err.message));
    pass.start();
    await new Promise((r) => setTimeout(r, 60));
    pass.stop();
    expect(errors.slice(0, 2)).toEqual(['boom 1', 'boom 2']);
  });
});

describe('UsedMarker', () => {
  it('marks a file at most once per interval, each file on its own', async () => {
    const marked: string[] = [];
    const marker = new UsedMarker(async (f) => void marked.push(f), 60_000);
    marker.used('a');
    marker.used('a');
    marker.used('b');
    expect(marked).toEqual(['a', 'b']);
  });

  it('forgets the oldest beyond what it remembers, and ignores a failing mark', () => {
    const marked: string[] = [];
    const marker = new UsedMarker(async (f) => {
      marked.push(f);
      throw new Error('gone');
    }, 60_000, 2);
    for (const f of ['a', 'b', 'c', 'a']) marker.used(f);
    expect(marked).toEqual(['a', 'b', 'c', 'a']);
  });
});
