import type { Command } from 'commander';
import type { WebhookEndpointView, WebhookMessageView } from '../webhooks/webhook.types';
import { type ApiOptions, apiClient, withApiOptions } from './api-client';

/** Where commands write: results to `out`, notes to `err`. */
export interface CliHelpers {
  out: (text: string) => void;
  err: (text: string) => void;
  env?: NodeJS.ProcessEnv;
}

const processHelpers: CliHelpers = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

type Options = ApiOptions & { json?: boolean };

const seg = (value: string) => encodeURIComponent(value);

function endpointLine(e: WebhookEndpointView): string {
  return `${e.id}  ${e.url}  ${e.events.join(',')}${e.disabled ? `  DISABLED (${e.disabled.reason})` : ''}${e.description ? `  # ${e.description}` : ''}\n`;
}

function messageLine(m: WebhookMessageView): string {
  const last = m.attempts[m.attempts.length - 1];
  const n = m.attemptCount;
  const lastText = last ? `  last: ${last.at} ${last.status ?? '-'}${last.error ? ` (${last.error})` : ''} in ${last.ms} ms` : '';
  return `${m.id}  ${m.type}  ${m.status}  ${n} attempt${n === 1 ? '' : 's'}${lastText}${m.nextAttemptAt ? `  next: ${m.nextAttemptAt}` : ''}${m.status === 'failed' && m.lastError && !last?.error ? `  (${m.lastError})` : ''}\n`;
}

/**
 * `montage webhooks add|list|remove|enable|log|replay|rotate-secret`: a project's webhook
 * endpoints through a running API (the CLI never opens the service's store).
 */
export function registerWebhookCommands(program: Command, helpers: CliHelpers = processHelpers): Command {
  const { out, err } = helpers;
  const client = (opts: ApiOptions) => apiClient(opts, helpers.env ?? process.env);
  const json = (value: unknown) => out(`${JSON.stringify(value, null, 2)}\n`);
  const webhooks = program.command('webhooks').description("a project's webhook endpoints, through a running API (--api, --key or MONTAGE_API_URL, MONTAGE_API_KEY)");

  withApiOptions(
    webhooks
      .command('add')
      .description('register an endpoint; prints its signing secret (shown once)')
      .argument('<project>')
      .argument('<url>')
      .option('--events <list>', 'comma-separated event types or patterns (render.*, upload.*, batch.*, *)', '*')
      .option('--description <text>', 'a note for people')
      .option('--json', 'print JSON'),
  ).action(async (project: string, url: string, opts: Options & { events: string; description?: string }) => {
    const events = opts.events.split(',').map((e) => e.trim()).filter(Boolean);
    const created = await client(opts).request<WebhookEndpointView & { secret: string }>('POST', `/v2/webhooks/${seg(project)}`, {
      url,
      events,
      ...(opts.description !== undefined ? { description: opts.description } : {}),
    });
    if (opts.json) json(created);
    else out(`id:      ${created.id}\nurl:     ${created.url}\nevents:  ${created.events.join(',')}\nsecret:  ${created.secret}\n`);
    err('keep the secret now: it is shown once (rotate-secret makes a new one)\n');
  });

  withApiOptions(webhooks.command('list').description("a project's endpoints").argument('<project>').option('--json', 'print JSON')).action(async (project: string, opts: Options) => {
    const { endpoints } = await client(opts).request<{ endpoints: WebhookEndpointView[] }>('GET', `/v2/webhooks/${seg(project)}`);
    if (opts.json) return json({ endpoints });
    for (const e of endpoints) out(endpointLine(e));
    if (endpoints.length === 0) err(`project ${project} has no webhook endpoints\n`);
  });

  withApiOptions(webhooks.command('remove').description('delete an endpoint and its delivery log').argument('<project>').argument('<id>')).action(async (project: string, id: string, opts: Options) => {
    const { deleted } = await client(opts).request<{ deleted: string }>('DELETE', `/v2/webhooks/${seg(project)}/${seg(id)}`);
    out(`deleted ${deleted}\n`);
  });

  withApiOptions(webhooks.command('enable').description('re-enable an endpoint that was disabled (its receiver answered 410)').argument('<project>').argument('<id>')).action(
    async (project: string, id: string, opts: Options) => {
      const endpoint = await client(opts).request<WebhookEndpointView>('PATCH', `/v2/webhooks/${seg(project)}/${seg(id)}`, { disabled: false });
      out(endpointLine(endpoint));
    },
  );

  withApiOptions(
    webhooks
      .command('log')
      .description("an endpoint's delivery log, newest first")
      .argument('<project>')
      .argument('<id>')
      .option('--status <status>', 'pending, delivered or failed')
      .option('--limit <n>', 'at most this many (1–200, default 50)')
      .option('--json', 'print JSON (every attempt)'),
  ).action(async (project: string, id: string, opts: Options & { status?: string; limit?: string }) => {
    const query = new URLSearchParams();
    if (opts.status !== undefined) query.set('status', opts.status);
    if (opts.limit !== undefined) query.set('limit', opts.limit);
    const q = query.size > 0 ? `?${query}` : '';
    const log = await client(opts).request<{ endpoint: string; messages: WebhookMessageView[] }>('GET', `/v2/webhooks/${seg(project)}/${seg(id)}/deliveries${q}`);
    if (opts.json) return json(log);
    for (const m of log.messages) out(messageLine(m));
    if (log.messages.length === 0) err('no messages\n');
  });

  withApiOptions(webhooks.command('replay').description('send a message again (same webhook-id)').argument('<project>').argument('<id>').argument('<message>')).action(
    async (project: string, id: string, message: string, opts: Options) => {
      const replayed = await client(opts).request<{ message: string; replay: number }>('POST', `/v2/webhooks/${seg(project)}/${seg(id)}/deliveries/${seg(message)}/replay`);
      out(`replaying ${replayed.message} (replay ${replayed.replay})\n`);
    },
  );

  withApiOptions(
    webhooks
      .command('rotate-secret')
      .description('a new signing secret (shown once); the old one also signs for a while')
      .argument('<project>')
      .argument('<id>')
      .option('--old-secret-valid <seconds>', 'how long the old secret also signs (default 86400; 0: stop now)'),
  ).action(async (project: string, id: string, opts: Options & { oldSecretValid?: string }) => {
    const body = opts.oldSecretValid !== undefined ? { oldSecretValidSeconds: /^\d{1,9}$/.test(opts.oldSecretValid) ? Number(opts.oldSecretValid) : opts.oldSecretValid } : undefined;
    const rotated = await client(opts).request<{ id: string; secret: string; previousSecretValidUntil?: string }>('POST', `/v2/webhooks/${seg(project)}/${seg(id)}/rotate-secret`, body);
    out(`id:      ${rotated.id}\nsecret:  ${rotated.secret}\n`);
    err(`keep the secret now: it is shown once${rotated.previousSecretValidUntil ? `; the old one also signs until ${rotated.previousSecretValidUntil}` : ''}\n`);
  });

  return webhooks;
}
