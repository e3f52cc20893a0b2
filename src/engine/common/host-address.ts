/**
 * Host addresses: "host:port" text, and the IP bytes RocketMQ records for a born or store host.
 */
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

/**
 * The IP bytes of each host seen lately. Every record carries a born host and a store host, and the
 * same few hosts recur, so parsing them once (node:net's address regexes) keeps them off the append
 * path. Bounded: cleared when full, so a flood of distinct hosts costs parsing, never memory.
 */
const ipBytesCache = new Map<string, Buffer>();
const IP_BYTES_CACHE_LIMIT = 4096;
const UNKNOWN_HOST_BYTES = Buffer.alloc(4);

/** The IP bytes recorded for `host`: 4 for IPv4 (and unknown hosts, as 0.0.0.0), 16 for IPv6. Do not modify. */
function ipBytesOf(host: string): Buffer {
  const cached = ipBytesCache.get(host);
  if (cached !== undefined) return cached;
  const bytes = parseIpBytes(host);
  if (ipBytesCache.size >= IP_BYTES_CACHE_LIMIT) ipBytesCache.clear();
  ipBytesCache.set(host, bytes);
  return bytes;
}

function parseIpBytes(host: string): Buffer {
  const normalized = normalizeHost(host);
  if (isIPv4(normalized)) return Buffer.from(normalized.split('.').map(Number));
  if (isIPv6(normalized)) {
    const bytes = Buffer.alloc(16);
    const groups = expandIPv6(normalized);
    for (let i = 0; i < 8; i++) bytes.writeUInt16BE(groups[i] ?? 0, i * 2);
    return bytes;
  }
  return UNKNOWN_HOST_BYTES;
}

export function isIPv6Host(host: string): boolean {
  return ipBytesOf(host).length === 16;
}

/** Writes the IP bytes (4 or 16) at `at`; returns bytes written. Unknown hosts are written as 0.0.0.0. */
export function writeIpBytes(target: Buffer, at: number, host: string): number {
  const bytes = ipBytesOf(host);
  target.set(bytes, at);
  return bytes.length;
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
