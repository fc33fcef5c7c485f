import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

/** What the receiver does with one request. */
export type ReceiverBehaviour =
  | { kind: 'ok' }
  | { kind: 'status'; status: number; retryAfter?: string; location?: string }
  /** Never answers (the sender's timeout ends it). */
  | { kind: 'hang' };

export interface ReceivedWebhook {
  id: string;
  timestamp: string;
  signature: string;
  contentType: string;
  body: string;
  /** The parsed body: Standard Webhooks' `{type, timestamp, data}`, or (VNTANA's renders.* and turntable.*) the payload itself, `{event, product, …}`. */
  payload: { type: string; timestamp: string; data: Record<string, unknown>; [field: string]: unknown };
  /** standardwebhooks' verify accepted it with the receiver's secret (when one is set). */
  verified: boolean;
  verifyError?: string;
  /** What the receiver answered. */
  answered: number | 'hang';
  path: string;
  at: number;
}

/**
 * A loopback webhook receiver for tests: verifies each signature with the `standardwebhooks`
 * package, and can be told to fail (500, 410, 302, 503 with Retry-After), to hang past the
 * sender's timeout, or to be down (connection refused) and come back on the same port.
 */
export class WebhookReceiver {
  /** Every request, in arrival order (failed ones included). */
  readonly requests: ReceivedWebhook[] = [];
  /** Requests that were answered 2xx. */
  readonly delivered: ReceivedWebhook[] = [];
  /** The endpoint's secret (set after creating the endpoint); requests are verified with it. */
  secret?: string;
  /** Behaviours for the next requests, in order; then `fallback`. */
  private readonly plan: ReceiverBehaviour[] = [];
  fallback: ReceiverBehaviour = { kind: 'ok' };
  private server: http.Server;
  private readonly hanging = new Set<http.ServerResponse>();
  port = 0;

  private constructor() {
    this.server = this.makeServer();
  }

  static async start(): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver();
    await receiver.listen(0);
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  /** The next requests get these answers, one each. */
  respond(...behaviours: ReceiverBehaviour[]): this {
    this.plan.push(...behaviours);
    return this;
  }

  /** Connection refused from now on (the port stays reserved for `up`). */
  async down(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
  }

  /** Back on the same port. */
  async up(): Promise<void> {
    this.server = this.makeServer();
    await this.listen(this.port);
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
  }

  /** Delivered messages with this webhook-id. */
  deliveriesOf(id: string): ReceivedWebhook[] {
    return this.delivered.filter((r) => r.id === id);
  }

  /** Waits until `test` holds (polled), failing after `ms`. */
  async waitFor(what: string, test: () => boolean, ms = 30_000): Promise<void> {
    const end = Date.now() + ms;
    while (!test()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what} (${this.requests.length} requests, ${this.delivered.length} delivered)`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        this.port = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  private makeServer(): http.Server {
    return http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        const header = (name: string) => String(req.headers[name] ?? '');
        const behaviour = this.plan.shift() ?? this.fallback;
        let verified = false;
        let verifyError: string | undefined;
        if (this.secret) {
          try {
            new Webhook(this.secret).verify(body, { 'webhook-id': header('webhook-id'), 'webhook-timestamp': header('webhook-timestamp'), 'webhook-signature': header('webhook-signature') });
            verified = true;
          } catch (err) {
            verifyError = (err as Error).message;
          }
        }
        let payload: ReceivedWebhook['payload'];
        try {
          payload = JSON.parse(body);
        } catch {
          payload = { type: '(not JSON)', timestamp: '', data: {} };
        }
        const record: ReceivedWebhook = {
          id: header('webhook-id'),
          timestamp: header('webhook-timestamp'),
          signature: header('webhook-signature'),
          contentType: header('content-type'),
          body,
          payload,
          verified,
          verifyError,
          answered: behaviour.kind === 'hang' ? 'hang' : behaviour.kind === 'ok' ? 200 : behaviour.status,
          path: req.url ?? '',
          at: Date.now(),
        };
        this.requests.push(record);
        if (behaviour.kind === 'hang') {
          this.hanging.add(res);
          res.on('close', () => this.hanging.delete(res));
          return;
        }
        if (behaviour.kind === 'ok') {
          this.delivered.push(record);
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
          return;
        }
        const headers: Record<string, string> = { 'content-type': 'text/plain' };
        if (behaviour.retryAfter !== undefined) headers['retry-after'] = behaviour.retryAfter;
        if (behaviour.location !== undefined) headers.location = behaviour.location;
        if (behaviour.status >= 200 && behaviour.status < 300) this.delivered.push(record);
        res.writeHead(behaviour.status, headers).end(`status ${behaviour.status}`);
      });
    });
  }
}
