import * as http from 'node:http';
import { startupState } from '../health/startup-state';

/**
 * A bare HTTP server on the service's port while its modules start (a document store or a
 * bucket that does not answer yet): `/health/live` says the process lives, `/health/ready`
 * and `/health` say what it waits for, everything else is 503 with `Retry-After`. Closed just
 * before the service itself listens.
 */
export async function startStartupProbe(port: number, host?: string): Promise<{ close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    // Kinds only (`store`, `storage`, `queue`): where they are and why they fail is for the log.
    const pending = startupState.pending();
    const waiting = pending.map((p) => `the ${p.name} (${p.waitingSec} s)`).join(', ');
    const path = (req.url ?? '/').split('?')[0];
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    if (path === '/health/live') {
      res.writeHead(200).end(JSON.stringify({ status: 'starting' }));
      return;
    }
    res.setHeader('Retry-After', '5');
    const message = waiting ? `Montage is starting: waiting for ${waiting}` : 'Montage is starting';
    if (path === '/health' || path === '/health/ready') {
      res.writeHead(503).end(JSON.stringify({ status: 'starting', waitingFor: pending.map((p) => p.name) }));
      return;
    }
    res.writeHead(503).end(JSON.stringify({ statusCode: 503, error: 'Service Unavailable', message }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
