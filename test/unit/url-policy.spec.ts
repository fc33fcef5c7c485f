import { MontageError } from '../../src/common/errors';
import { MAX_MEDIA_URL_LENGTH, displayUrl, isPublicAddress, parseMediaUrl } from '../../src/assets/url-policy';

describe('isPublicAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'IPv6 loopback'],
    ['10.0.0.1', 'private 10/8'],
    ['10.255.255.255', 'private 10/8'],
    ['172.16.0.1', 'private 172.16/12'],
    ['172.31.255.254', 'private 172.16/12'],
    ['192.168.1.1', 'private 192.168/16'],
    ['169.254.169.254', 'link-local (cloud metadata)'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['100.127.255.254', 'carrier-grade NAT'],
    ['fe80::1', 'IPv6 link-local'],
    ['fe80::1%eth0', 'IPv6 link-local with zone'],
    ['fc00::1', 'IPv6 unique-local'],
    ['fd12:3456:789a::1', 'IPv6 unique-local'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:10.0.0.1', 'IPv4-mapped private'],
    ['::ffff:169.254.169.254', 'IPv4-mapped link-local'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'IPv6 unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'IPv6 multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.1', 'documentation (TEST-NET-1)'],
    ['198.18.0.1', 'benchmarking'],
    ['2001:db8::1', 'IPv6 documentation'],
    ['64:ff9b::a00:1', 'NAT64 wrapping 10.0.0.1'],
    ['2002:a00:1::1', '6to4 wrapping 10.0.0.1'],
    ['2001::1', 'Teredo'],
    ['not-an-ip', 'unparseable'],
    ['', 'empty'],
    // Forms that older rules called public:
    ['::127.0.0.1', 'IPv4-compatible loopback'],
    ['::7f00:1', 'IPv4-compatible loopback, hex'],
    ['::a9fe:a9fe', 'IPv4-compatible cloud metadata (169.254.169.254)'],
    ['::10.0.0.1', 'IPv4-compatible private'],
    ['::8.8.8.8', 'IPv4-compatible, even public (deprecated form)'],
    ['fec0::1', 'IPv6 site-local (deprecated)'],
    ['feff::1', 'IPv6 site-local, top'],
    ['64:ff9b::7f00:1', 'NAT64 wrapping 127.0.0.1'],
    ['64:ff9b::a9fe:a9fe', 'NAT64 wrapping 169.254.169.254'],
    ['64:ff9b::192.168.0.1', 'NAT64 wrapping 192.168.0.1, dotted'],
    ['64:ff9b:1::a00:1', 'local-use NAT64 (RFC 8215)'],
    ['64:ff9b:1:ffff::808:808', 'local-use NAT64, any address'],
    ['::ffff:0:7f00:1', 'IPv4-translated (RFC 6145)'],
    ['::ffff:a9fe:a9fe', 'IPv4-mapped metadata, hex'],
    ['100::1', 'discard-only'],
    ['2002:7f00:1::1', '6to4 wrapping 127.0.0.1'],
    ['2002:808:808::1', '6to4 wrapping a public address (deprecated relays)'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo'],
    ['2001:2::1', 'benchmarking'],
    ['2001:10::1', 'ORCHID'],
    ['3fff::1', 'documentation (RFC 9637)'],
    ['5f00::1', 'SRv6 SID'],
    ['4000::1', 'outside 2000::/3'],
    ['fe80::1%25eth0', 'link-local with an encoded zone'],
  ])('refuses %s (%s)', (ip) => {
    expect(isPublicAddress(ip)).toBe(false);
  });

  it.each(['8.8.8.8', '1.1.1.1', '93.184.216.34', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808', '2a00:1450:4001:80b::200e', '2001:4860:4860::8888'])(
    'allows public %s',
    (ip) => {
      expect(isPublicAddress(ip)).toBe(true);
    },
  );
});

describe('parseMediaUrl', () => {
  function badInputMessage(raw: string): string {
    try {
      parseMediaUrl(raw);
    } catch (error) {
      expect(error).toBeInstanceOf(MontageError);
      expect((error as MontageError).kind).toBe('bad_input');
      return (error as MontageError).message;
    }
    throw new Error(`expected ${raw} to be refused`);
  }

  it.each([
    ['http://example.com/a.png', 'http://example.com/a.png'],
    ['https://example.com/v.mp4?x=1#t', 'https://example.com/v.mp4?x=1#t'],
    ['HTTPS://EXAMPLE.com:8443/a', 'https://example.com:8443/a'],
    ['http://8.8.8.8/a.png', 'http://8.8.8.8/a.png'],
    ['http://[2606:4700::1111]/a.png', 'http://[2606:4700::1111]/a.png'],
  ])('accepts %s', (raw, href) => {
    expect(parseMediaUrl(raw).href).toBe(href);
  });

  it.each([
    ['file:///etc/passwd', /only http and https.*not file/],
    ['ftp://example.com/a.png', /not ftp/],
    ['javascript:alert(1)', /not javascript/],
    ['data:image/png;base64,AAAA', /not data/],
    ['gopher://example.com/', /not gopher/],
    ['https://user:pass@example.com/a.png', /credentials/],
    ['https://user@example.com/a.png', /credentials/],
    ['/relative/path.png', /not a valid absolute URL/],
    ['not a url', /not a valid absolute URL/],
    ['', /not a valid absolute URL/],
  ])('refuses %s', (raw, message) => {
    expect(badInputMessage(raw)).toMatch(message);
  });

  it('refuses URLs longer than the limit and does not echo them whole', () => {
    const raw = `https://example.com/${'a'.repeat(MAX_MEDIA_URL_LENGTH)}`;
    const message = badInputMessage(raw);
    expect(message).toMatch(/longer than 2048/);
    expect(message.length).toBeLessThan(400);
  });

  it('accepts a URL of exactly the limit', () => {
    const prefix = 'https://example.com/';
    const raw = prefix + 'a'.repeat(MAX_MEDIA_URL_LENGTH - prefix.length);
    expect(parseMediaUrl(raw).href).toHaveLength(MAX_MEDIA_URL_LENGTH);
  });

  it('refuses a URL that the parser lengthens past the limit', () => {
    const prefix = 'https://example.com/';
    // Each é becomes %C3%A9, so the normalized href is far longer than the raw string.
    const raw = prefix + 'é'.repeat(MAX_MEDIA_URL_LENGTH - prefix.length);
    expect(badInputMessage(raw)).toMatch(/longer than 2048/);
  });

  it('names the URL in the message', () => {
    expect(badInputMessage('ftp://files.example.com/x.png')).toContain('ftp://files.example.com/x.png');
  });
});

describe('displayUrl', () => {
  it('keeps short URLs whole and truncates long ones to 200 characters', () => {
    expect(displayUrl('https://example.com/a')).toBe('https://example.com/a');
    expect(displayUrl(new URL(`https://example.com/${'b'.repeat(500)}`))).toHaveLength(201);
  });
});
