/**
 * The webhooks benchmark: "a webhook receiver down for 60 s then up: every event delivered, in
 * order per token, none lost". The real API in this process (createApp, its embedded Redis,
 * store and render node), a retry schedule suited to the outage (BENCH_WEBHOOK_SCHEDULE,
 * default 5,10,20,30,60 s), BENCH_WEBHOOK_TOKENS (20) tokens of demo/welcome rendered as
 * stills (each makes render.pending, render.processing, render.completed) while the receiver
 * is down (connection refused) for BENCH_WEBHOOK_OUTAGE_S (60) seconds; then it comes back on
 * the same port. The receiver verifies every message with `standardwebhooks` and counts each
 * webhook-id once.
 *
 * Reports events expected / delivered / duplicates / out of order (per token) / unverified,
 * and the time from the receiver coming back to the last delivery.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { loadConfig } from '../src/config/config';
import { createApp } from '../src/main';

const root = path.resolve(__dirname, '..', '..');
const TYPES = ['render.pending', 'render.processing', 'render.completed'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (line: string) => process.stderr.write(`webhooks: ${line}\n`);

export interface WebhookBenchResult {
  tokens: number;
  outageS: number;
  schedule: number[];
  expected: number;
  delivered: number;
  duplicates: number;
  outOfOrder: number;
  unverified: number;
  /** Requests the receiver answered (after it came back), retries included. */
  requests: number;
  /** From the receiver coming back to the last delivery. */
  lastDeliveryAfterBackS: number | null;
  /** Rendering the tokens (all of them within the outage when this is shorter). */
  rendersS: number;
  targets: Array<{ figure: string; value: string; target: string; met: boolean }>;
}

/** A loopback receiver that can be down (refused) and come back on the same port. */
class Receiver {
  secret = '';
  port = 0;
  requests = 0;
  unverified = 0;
  /** webhook-id → times delivered. */
  readonly seen = new Map<string, number>();
  /** token → event types in arrival order (first delivery of each id). */
  readonly order = new Map<string, string[]>();
  lastDeliveryAt = 0;
  private server?: http.Server;

  async up(port = 0): Promise<void> {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests++;
        const body = Buffer.concat(chunks).toString('utf8');
        const header = (name: string) => String(req.headers[name] ?? '');
        const id = header('webhook-id');
        try {
          new Webhook(this.secret).verify(body, { 'webhook-id': id, 'webhook-timestamp': header('webhook-timestamp'), 'webhook-signature': header('webhook-signature') });
        } catch {
          this.unverified++;
        }
        const times = (this.seen.get(id) ?? 0) + 1;
        this.seen.set(id, times);
        if (times === 1) {
          const { type, data } = JSON.parse(body) as { type: string; data: { token: string } };
          this.order.set(data.token, [...(this.order.get(data.token) ?? []), type]);
        }
        this.lastDeliveryAt = Date.now();
        res.writeHead(204).end();
      });
    });
    const server = this.server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
  }

  async down(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
  }

  get delivered(): number {
    return this.seen.size;
  }
}

export async function benchWebhooks(): Promise<WebhookBenchResult> {
  const tokens = Math.max(1, Number(process.env.BENCH_WEBHOOK_TOKENS ?? 20));
  const outageS = Math.max(0, Number(process.env.BENCH_WEBHOOK_OUTAGE_S ?? 60));
  const scheduleText = process.env.BENCH_WEBHOOK_SCHEDULE || '5,10,20,30,60';
  const schedule = scheduleText.split(',').map(Number);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'montage-bench-webhooks-'));
  const env = {
    MONTAGE_TEMPLATES_DIR: process.env.MONTAGE_TEMPLATES_DIR ?? path.join(root, 'templates'),
    MONTAGE_DATA_DIR: dataDir,
    DELIVERY_ALLOW_PRIVATE: '1',
    WEBHOOK_RETRY_SCHEDULE: scheduleText,
    WEBHOOK_TIMEOUT_MS: '5000',
    EMBEDDED_RENDER_NODE: '1',
  };
  const app = await createApp(loadConfig({ ...process.env, ...env }), ['error']);
  const receiver = new Receiver();
  try {
    await app.listen(0, '127.0.0.1');
    const api = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    const key = fs.readFileSync(path.join(dataDir, 'demo-api-key'), 'utf8').trim();
    const call = async (method: string, route: string, body?: unknown) => {
      const res = await fetch(`${api}${route}`, { method, headers: { Authorization: `Bearer ${key}`, ...(body ? { 'Content-Type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
      if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${await res.text()}`);
      return res.json() as Promise<Record<string, unknown>>;
    };

    // The receiver's port is taken, then let go: connection refused until it comes back there.
    await receiver.up();
    const endpoint = await call('POST', '/v2/webhooks/demo', { url: `http://127.0.0.1:${receiver.port}/hook`, events: ['render.*'] });
    receiver.secret = String(endpoint.secret);
    await receiver.down();
    const outageStart = Date.now();
    log(`receiver down for ${outageS} s; rendering ${tokens} tokens (demo/welcome.png)`);

    // Two renders at a time, each token POSTed then fetched (pending, processing, completed).
    let next = 0;
    const rendersStart = Date.now();
    await Promise.all(
      [0, 1].map(async () => {
        while (next < tokens) {
          const i = next++;
          const created = await call('POST', '/v2/render/demo', { movie: 'welcome', params: { name: `Bench ${i} ${process.pid}` }, metadata: { i } });
          const res = await fetch(`${api}/v2/get/${created.token}.png`);
          if (!res.ok) throw new Error(`GET ${created.token}.png: ${res.status}`);
          await res.arrayBuffer();
        }
      }),
    );
    const rendersS = (Date.now() - rendersStart) / 1000;
    log(`rendered in ${rendersS.toFixed(1)} s`);

    await sleep(Math.max(0, outageStart + outageS * 1000 - Date.now()));
    await receiver.up(receiver.port);
    const backAt = Date.now();
    const expected = tokens * TYPES.length;
    log(`receiver up again; waiting for ${expected} events`);
    // At worst a message waits out the step after the outage, then its siblings follow.
    const deadline = backAt + (Math.max(...schedule) * 1.2 + 60) * 1000;
    while (receiver.delivered < expected && Date.now() < deadline) await sleep(100);
    await sleep(2000); // anything sent twice would come now

    const duplicates = [...receiver.seen.values()].reduce((sum, n) => sum + n - 1, 0);
    const outOfOrder = [...receiver.order.values()].filter((types) => types.join() !== TYPES.join()).length + Math.max(0, tokens - receiver.order.size);
    const lastDeliveryAfterBackS = receiver.lastDeliveryAt >= backAt ? Number(((receiver.lastDeliveryAt - backAt) / 1000).toFixed(1)) : null;
    const result: Omit<WebhookBenchResult, 'targets'> = {
      tokens,
      outageS,
      schedule,
      expected,
      delivered: receiver.delivered,
      duplicates,
      outOfOrder,
      unverified: receiver.unverified,
      requests: receiver.requests,
      lastDeliveryAfterBackS,
      rendersS: Number(rendersS.toFixed(1)),
    };
    const met = result.delivered === expected && duplicates === 0 && outOfOrder === 0 && result.unverified === 0;
    return {
      ...result,
      targets: [
        {
          figure: `webhooks: receiver down ${outageS} s then up (${tokens} tokens × 3 events, retries ${scheduleText} s)`,
          value: `${result.delivered}/${expected} delivered, ${duplicates} twice, ${outOfOrder} out of order, ${result.unverified} unverified; last ${lastDeliveryAfterBackS ?? '–'} s after it came back`,
          target: 'every event, in order per token, none twice',
          met,
        },
      ],
    };
  } finally {
    await receiver.down();
    await app.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  benchWebhooks().then(
    (r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`),
    (err: Error) => {
      process.stderr.write(`${err.stack ?? err}\n`);
      process.exitCode = 1;
    },
  );
}
