import { Webhook } from 'standardwebhooks';
import { WEBHOOK_RETRY_SCHEDULE } from '../../src/config/config';
import { WebhookSignerRepository } from '../../src/repositories/webhook-signer.repository';
import {
  classifyResponse,
  gateDelayMs,
  GATE_MAX_MS,
  GATE_MIN_MS,
  KEPT_ATTEMPTS,
  matchesEvent,
  messageBody,
  messageIdFor,
  nextSeq,
  parseEvents,
  parseRetryAfter,
  retryDelayMs,
  webhookUrlProblem,
  withAttempt,
} from '../../src/webhooks/webhook-policy';
import { WEBHOOK_EVENT_TYPES } from '../../src/webhooks/webhook.types';

// The pure rules of webhook delivery, and signatures checked by the standardwebhooks package.

describe('retryDelayMs', () => {
  const schedule = WEBHOOK_RETRY_SCHEDULE; // 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h

  it('follows the schedule: the step after the n-th attempt, ±20 % jitter', () => {
    expect(retryDelayMs(schedule, 1, undefined, () => 0.5)).toBe(5000);
    expect(retryDelayMs(schedule, 1, undefined, () => 0)).toBe(4000);
    expect(retryDelayMs(schedule, 1, undefined, () => 0.999999)).toBe(6000);
    expect(retryDelayMs(schedule, 2, undefined, () => 0.5)).toBe(300_000);
    expect(retryDelayMs(schedule, 9, undefined, () => 0.5)).toBe(86_400_000);
  });

  it('stays within ±20 % with real randomness', () => {
    for (let attempt = 1; attempt <= schedule.length; attempt++) {
      for (let i = 0; i < 200; i++) {
        const d = retryDelayMs(schedule, attempt)!;
        expect(d).toBeGreaterThanOrEqual(schedule[attempt - 1] * 1000 * 0.8);
        expect(d).toBeLessThanOrEqual(schedule[attempt - 1] * 1000 * 1.2);
      }
    }
  });

  it('is undefined once the schedule is spent (10 attempts with the default schedule)', () => {
    expect(retryDelayMs(schedule, 10)).toBeUndefined();
    expect(retryDelayMs(schedule, 10, 5000)).toBeUndefined();
    expect(retryDelayMs([1, 1], 3)).toBeUndefined();
    expect(retryDelayMs(schedule, 0)).toBeUndefined();
  });

  it('takes the receiver’s Retry-After instead, without jitter, capped at the largest step and at least 1 s', () => {
    expect(retryDelayMs(schedule, 1, 120_000, () => 0)).toBe(120_000);
    expect(retryDelayMs(schedule, 3, 2000)).toBe(2000); // shorter than the schedule's step: the receiver knows
    expect(retryDelayMs(schedule, 1, 10 * 24 * 3600_000)).toBe(86_400_000);
    expect(retryDelayMs([1, 2, 3], 1, 60_000)).toBe(3000);
    expect(retryDelayMs(schedule, 1, 0)).toBe(1000);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-12-03T12:00:00Z');

  it('reads delay-seconds', () => {
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 5 ', now)).toBe(5000);
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(['7', '9'], now)).toBe(7000);
  });

  it('reads an HTTP date (IMF-fixdate, RFC 850, asctime); a date past is now', () => {
    expect(parseRetryAfter('Thu, 03 Dec 2026 12:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Thursday, 03-Dec-26 12:01:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Thu Dec  3 12:00:10 2026', now)).toEqual(expect.any(Number)); // asctime has no zone: local time
    expect(parseRetryAfter('Wed, 02 Dec 2026 12:00:00 GMT', now)).toBe(0);
  });

  it('ignores what it cannot read', () => {
    for (const bad of [undefined, '', 'soon', '1.5', '-1', '1e3', '12345678901', 'Thu, 99 Foo 2026']) expect(parseRetryAfter(bad, now)).toBeUndefined();
  });
});

describe('classifyResponse', () => {
  it('2xx is delivered, 410 disables, everything else (3xx included: never followed) is a failed attempt', () => {
    for (const s of [200, 201, 202, 204, 299]) expect(classifyResponse(s)).toBe('delivered');
    expect(classifyResponse(410)).toBe('gone');
    for (const s of [100, 300, 301, 302, 303, 307, 308, 400, 401, 404, 408, 409, 429, 500, 502, 503, 504]) expect(classifyResponse(s)).toBe('failed');
  });
});

describe('event subscriptions', () => {
  it('match exact types, families and everything', () => {
    expect(matchesEvent(['render.completed'], 'render.completed')).toBe(true);
    expect(matchesEvent(['render.completed'], 'render.failed')).toBe(false);
    expect(matchesEvent(['render.*'], 'render.failed')).toBe(true);
    expect(matchesEvent(['render.*'], 'upload.failed')).toBe(false);
    expect(matchesEvent(['upload.*', 'batch.completed'], 'batch.completed')).toBe(true);
    expect(matchesEvent(['upload.*', 'batch.completed'], 'batch.output')).toBe(false);
    for (const t of WEBHOOK_EVENT_TYPES) expect(matchesEvent(['*'], t)).toBe(true);
  });

  it('are checked: unknown names are a 400 that lists the valid ones', () => {
    expect(parseEvents(['render.*', 'render.*', 'upload.failed'])).toEqual(['render.*', 'upload.failed']);
    expect(() => parseEvents(['render.done'])).toThrow(/unknown event type "render\.done"; the valid ones are render\.pending, render\.processing, .*, render\.\*, upload\.\*, batch\.\*, renders\.\*, turntable\.\*, \*/);
    expect(() => parseEvents(['render'])).toThrow(/unknown event type/);
    expect(() => parseEvents([1])).toThrow(/unknown event type number/);
    expect(() => parseEvents([])).toThrow(/1 to 32/);
    expect(() => parseEvents('render.*')).toThrow(/a list/);
    try {
      parseEvents(['x']);
    } catch (err) {
      expect((err as { kind: string; details: Array<{ field: string }> }).kind).toBe('bad_input');
      expect((err as { details: Array<{ field: string }> }).details[0].field).toBe('events');
    }
  });
});

describe('webhookUrlProblem', () => {
  it('accepts http(s) URLs', () => {
    expect(webhookUrlProblem('https://hooks.example.com/montage?x=1', false)).toBeUndefined();
    expect(webhookUrlProblem('http://93.184.215.14:8080/hook', false)).toBeUndefined();
  });

  it.each([
    ['another scheme', 'ftp://example.com/x', /only http and https/],
    ['javascript:', 'javascript:alert(1)', /only http and https/],
    ['user and password', 'https://user:pw@example.com/', /credentials/],
    ['a user', 'https://user@example.com/', /credentials/],
    ['over 2048 characters', `https://example.com/${'a'.repeat(2048)}`, /longer than 2048/],
    ['a NUL', 'https://example.com/a\u0000b', /NUL/],
    ['white space', 'https://exa mple.com/', /white space/],
    ['a relative URL', '/relative', /not a valid absolute URL/],
  ])('refuses %s', (_what, url, problem) => {
    expect(webhookUrlProblem(url, true)).toMatch(problem);
  });

  it('refuses private, loopback and link-local literals and localhost unless private addresses are allowed', () => {
    for (const url of ['http://127.0.0.1/', 'http://10.0.0.8/', 'http://192.168.1.1/', 'http://169.254.169.254/', 'http://[::1]/', 'http://[fd00::1]/', 'http://[::ffff:10.0.0.1]/', 'http://localhost:8080/', 'http://a.localhost/', 'http://0.0.0.0/']) {
      expect(webhookUrlProblem(url, false)).toMatch(/private|this machine/);
      expect(webhookUrlProblem(url, true)).toBeUndefined();
    }
  });
});

describe('message ids, order and the attempt log', () => {
  it('the same event to the same endpoint is the same id; anything else differs', () => {
    const a = messageIdFor(['ep_1', 'render.completed', 'render.completed:tok:mp4:1a']);
    expect(a).toMatch(/^msg_[A-Za-z0-9_-]{43}$/);
    expect(messageIdFor(['ep_1', 'render.completed', 'render.completed:tok:mp4:1a'])).toBe(a);
    expect(messageIdFor(['ep_2', 'render.completed', 'render.completed:tok:mp4:1a'])).not.toBe(a);
    expect(messageIdFor(['ep_1', 'render.failed', 'render.completed:tok:mp4:1a'])).not.toBe(a);
  });

  it('seq never goes back, even if the clock does', () => {
    const first = nextSeq(2_000_000);
    const second = nextSeq(1_000_000);
    const third = nextSeq(1_000_000);
    expect(second).toBeGreaterThan(first);
    expect(third).toBeGreaterThan(second);
  });

  it('keeps the last 20 attempts', () => {
    let attempts: Array<{ at: string; ms: number; status?: number }> = [];
    for (let i = 0; i < 25; i++) attempts = withAttempt(attempts, { at: String(i), ms: i, status: 500 });
    expect(attempts).toHaveLength(KEPT_ATTEMPTS);
    expect(attempts[0].at).toBe('5');
    expect(attempts[19].at).toBe('24');
  });

  it('a waiting message looks again soon while its sibling is due or sending, otherwise just after the sibling’s next attempt (capped)', () => {
    const now = 1_000_000;
    expect(gateDelayMs({ nextAttemptAt: new Date(now - 5).toISOString(), leaseUntil: 0 }, now)).toBe(GATE_MIN_MS);
    expect(gateDelayMs({ nextAttemptAt: new Date(now + 60_000).toISOString(), leaseUntil: now + 5000 }, now)).toBe(GATE_MIN_MS);
    expect(gateDelayMs({ nextAttemptAt: new Date(now + 5000).toISOString(), leaseUntil: 0 }, now)).toBe(5100);
    expect(gateDelayMs({ nextAttemptAt: new Date(now + 50).toISOString(), leaseUntil: 0 }, now)).toBe(GATE_MIN_MS);
    expect(gateDelayMs({ nextAttemptAt: new Date(now + 7200_000).toISOString(), leaseUntil: 0 }, now)).toBe(GATE_MAX_MS);
  });

  it('bodies have Standard Webhooks’ shape', () => {
    const body = messageBody('render.completed', { token: 't' }, new Date('2026-12-03T12:00:00Z'));
    expect(body).toBe('{"type":"render.completed","timestamp":"2026-12-03T12:00:00.000Z","data":{"token":"t"}}');
  });
});

describe('WebhookSignerRepository', () => {
  const signer = new WebhookSignerRepository();
  const body = messageBody('render.completed', { token: 'abc', metadata: { é: '✓' } }, new Date());

  it('makes whsec_ secrets of 24 random bytes', () => {
    const a = signer.newSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(Buffer.from(a.slice(6), 'base64')).toHaveLength(24);
    expect(signer.newSecret()).not.toBe(a);
    expect(signer.isUsableSecret(a)).toBe(true);
    expect(signer.isUsableSecret('whsec_c2hvcnQ=')).toBe(false);
    expect(signer.isUsableSecret('secret')).toBe(false);
  });

  it('signs what standardwebhooks’ verify accepts, and only that', () => {
    const secret = signer.newSecret();
    const headers = signer.sign('msg_abc', new Date(), body, [secret]);
    expect(headers['webhook-id']).toBe('msg_abc');
    expect(headers['webhook-timestamp']).toMatch(/^\d{10}$/);
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(new Webhook(secret).verify(body, { ...headers })).toEqual(JSON.parse(body));
    expect(() => new Webhook(secret).verify(body.replace('abc', 'abd'), { ...headers })).toThrow(/No matching signature/);
    expect(() => new Webhook(secret).verify(body, { ...headers, 'webhook-id': 'msg_other' })).toThrow(/No matching signature/);
    expect(() => new Webhook(signer.newSecret()).verify(body, { ...headers })).toThrow(/No matching signature/);
    expect(() => signer.verify(secret, body, { ...headers })).not.toThrow();
  });

  it('an old timestamp is refused by receivers: each attempt is signed anew', () => {
    const secret = signer.newSecret();
    const old = signer.sign('msg_abc', new Date(Date.now() - 10 * 60_000), body, [secret]);
    expect(() => new Webhook(secret).verify(body, { ...old })).toThrow(/too old/);
  });

  it('signs with every secret of a rotation, space-separated: either verifies', () => {
    const [oldSecret, newSecret] = [signer.newSecret(), signer.newSecret()];
    const headers = signer.sign('msg_x', new Date(), body, [newSecret, oldSecret]);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(() => new Webhook(oldSecret).verify(body, { ...headers })).not.toThrow();
    expect(() => new Webhook(newSecret).verify(body, { ...headers })).not.toThrow();
  });
});
