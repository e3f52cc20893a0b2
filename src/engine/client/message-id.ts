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

/** Upper-case hex of every byte value: an id is built from these without a Buffer per message. */
const HEX_BYTES = Array.from({ length: 256 }, (_, value) => value.toString(16).toUpperCase().padStart(2, '0'));
/** The prefix and time part of the last id, reused while the millisecond is the same. */
let lastMs = -1;
let prefixAndTime = '';

function hexByte(value: number): string {
  return HEX_BYTES[value & 0xff] ?? '00';
}

/** A new unique message id. */
export function createUniqueMessageId(nowMs = Date.now()): string {
  if (nowMs !== lastMs) {
    if (nowMs >= nextMonthStartMs || nowMs < monthStartMs) refreshMonth(nowMs);
    const sinceMonthStart = (nowMs - monthStartMs) >>> 0;
    prefixAndTime =
      PREFIX +
      hexByte(sinceMonthStart >>> 24) +
      hexByte(sinceMonthStart >>> 16) +
      hexByte(sinceMonthStart >>> 8) +
      hexByte(sinceMonthStart);
    lastMs = nowMs;
  }
  const id = prefixAndTime + hexByte(counter >>> 8) + hexByte(counter);
  counter = (counter + 1) & 0xffff;
  return id;
}
