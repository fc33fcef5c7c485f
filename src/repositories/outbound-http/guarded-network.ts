import * as dns from 'node:dns';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { isPublicAddress } from '../../assets/url-policy';

/** Thrown when a host is, or resolves to, an address the policy forbids. */
export class PrivateAddressError extends Error {
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(`${host} resolves to a private, loopback or link-local address (${address})`);
    this.name = 'PrivateAddressError';
  }
}

/**
 * A `lookup` that resolves a host and refuses it if any address is not public. The socket then
 * connects to exactly the addresses that were checked, so a second, rebinding DNS answer is
 * never used. `refuse` makes the error the caller reports.
 */
export function checkedLookup(allowPrivateAddresses: boolean, refuse: (host: string, address: string) => Error = (h, a) => new PrivateAddressError(h, a)): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const refused = allowPrivateAddresses ? undefined : addresses.find((a) => !isPublicAddress(a.address));
      if (refused) return callback(refuse(hostname, refused.address), []);
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
}

/** Node connects to IP literals without calling `lookup`: they are judged here. Throws PrivateAddressError. */
export function assertAllowedLiteral(hostname: string, allowPrivateAddresses: boolean): void {
  const literal = hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(literal) && !allowPrivateAddresses && !isPublicAddress(literal)) throw new PrivateAddressError(hostname, literal);
}

/**
 * One address of `host` that the policy allows, for protocols whose clients take an address
 * (FTP, SFTP): connecting to it means connecting to what was checked.
 */
export async function resolveAllowed(host: string, allowPrivateAddresses: boolean): Promise<string> {
  const literal = host.replace(/^\[(.*)\]$/, '$1');
  if (isIP(literal)) {
    assertAllowedLiteral(literal, allowPrivateAddresses);
    return literal;
  }
  const addresses = await dns.promises.lookup(host, { all: true });
  const refused = allowPrivateAddresses ? undefined : addresses.find((a) => !isPublicAddress(a.address));
  if (refused) throw new PrivateAddressError(host, refused.address);
  return addresses[0].address;
}

/** Agents whose every connection goes through the checked lookup (for SDKs that take an agent). */
export function guardedAgents(allowPrivateAddresses: boolean): { http: http.Agent; https: https.Agent } {
  const lookup = checkedLookup(allowPrivateAddresses);
  return { http: new http.Agent({ keepAlive: true, lookup }), https: new https.Agent({ keepAlive: true, lookup }) };
}
