/**
 * Client-side unique message ids (RocketMQ MessageClientIDSetter): 16 bytes as 32 upper-case hex
 * characters. The first 10 bytes are fixed per process (IPv4 4, pid 2, a random instance word 4), the
 * last 6 change per message (milliseconds since the start of the month 4, counter 2). The id goes in
 * the UNIQ_KEY property and is what users see as the message id.
 */
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';

/** The first non-internal IPv4 address of this host, or 127.0.0.1. */
export function localIPv4(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === 'IPv4' && !address.internal) return address.address;
    }
  }
  return '127.0.0.1';
}

function fixedPrefix(): string {
  const bytes = Buffer.alloc(10);
  const parts = localIPv4().split('.');
  for (let i = 0; i < 4; i++) bytes[i] = Number(parts[i] ?? 0);
  bytes.writeUInt16BE(process.pid & 0xffff, 4);
  randomBytes(4).copy(bytes, 6);
  return bytes.toString('hex').toUpperCase();
}

const PREFIX = fixedPrefix();
let counter = 0;
let monthStartMs = 0;
let nextMonthStartMs = 0;

function refreshMonth(nowMs: number): void {
  const now = new Date(nowMs);
  monthStartMs = new Date(now.getFullYear(), now.getMonth(), 1).getTime();
  nextMonthStartMs = new Date(now.getFullYear(), now.getMonth() + 1, 1).getTime();
}

/** A new unique message id. */
export function createUniqueMessageId(nowMs = Date.now()): string {
  if (nowMs >= nextMonthStartMs || nowMs < monthStartMs) refreshMonth(nowMs);
  const tail = Buffer.alloc(6);
  tail.writeUInt32BE((nowMs - monthStartMs) >>> 0, 0);
  tail.writeUInt16BE(counter, 4);
  counter = (counter + 1) & 0xffff;
  return PREFIX + tail.toString('hex').toUpperCase();
}
