import { isIPv4, isIPv6 } from 'node:net';
import type { HostAddress } from './message.js';

/** Parses "host:port" (IPv6 as "[::1]:port" or with the last colon as separator). */
export function parseHostAddress(text: string): HostAddress {
  const colon = text.lastIndexOf(':');
  if (colon <= 0) throw new Error(`address "${text}" is not host:port`);
  let host = text.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const port = Number(text.slice(colon + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`address "${text}" has no valid port`);
  return { host, port };
}

export function formatHostAddress(address: HostAddress): string {
  return isIPv6(address.host) ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/** IPv4-mapped IPv6 addresses ("::ffff:127.0.0.1") are recorded as plain IPv4. */
export function normalizeHost(host: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(host);
  return mapped?.[1] ?? host;
}

export function isIPv6Host(host: string): boolean {
  return !isIPv4(normalizeHost(host)) && isIPv6(host);
}

/** Writes the IP bytes (4 or 16) at `at`; returns bytes written. Unknown hosts are written as 0.0.0.0. */
export function writeIpBytes(target: Buffer, at: number, host: string): number {
  const normalized = normalizeHost(host);
  if (isIPv4(normalized)) {
    const parts = normalized.split('.');
    for (let i = 0; i < 4; i++) target[at + i] = Number(parts[i]);
    return 4;
  }
  if (isIPv6(normalized)) {
    const groups = expandIPv6(normalized);
    for (let i = 0; i < 8; i++) target.writeUInt16BE(groups[i] ?? 0, at + i * 2);
    return 16;
  }
  target.fill(0, at, at + 4);
  return 4;
}

export function readIpBytes(source: Buffer, at: number, length: 4 | 16): string {
  if (length === 4) return `${source[at]}.${source[at + 1]}.${source[at + 2]}.${source[at + 3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(source.readUInt16BE(at + i * 2).toString(16));
  return groups.join(':');
}

function expandIPv6(host: string): number[] {
  const [head = '', tail] = host.split('::');
  const headGroups = head.length > 0 ? head.split(':') : [];
  const tailGroups = tail !== undefined && tail.length > 0 ? tail.split(':') : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  return [...headGroups, ...Array<string>(Math.max(0, missing)).fill('0'), ...tailGroups].map((g) => parseInt(g, 16));
}
