/**
 * The RocketMQ 4.x HA wire format (HAService / HAConnection), pure and incremental, no sockets:
 *
 *   slave -> master: repeated 8-byte big-endian CommitLog offsets (the slave's max offset)
 *   master -> slave: repeated frames [CommitLog offset 8][data size 4][data size bytes], a size of 0
 *                    being a heartbeat
 *
 * Decoders take chunks as they arrive, return what became complete, and report a malformed input as
 * a reason string so that the connection owner can close with it.
 */

/** Bytes of a slave's offset report. */
export const REPORT_BYTES = 8;
/** Bytes of a transfer frame's header. */
export const TRANSFER_HEADER_BYTES = 12;

export function encodeReport(commitLogOffset: number): Buffer {
  const report = Buffer.allocUnsafe(REPORT_BYTES);
  report.writeBigInt64BE(BigInt(commitLogOffset));
  return report;
}

/** The 12-byte header of a frame carrying `dataBytes` bytes from `commitLogOffset`. */
export function encodeTransferHeader(commitLogOffset: number, dataBytes: number): Buffer {
  const header = Buffer.allocUnsafe(TRANSFER_HEADER_BYTES);
  header.writeBigInt64BE(BigInt(commitLogOffset), 0);
  header.writeInt32BE(dataBytes, 8);
  return header;
}

function safeOffset(value: bigint): number | undefined {
  return value >= 0n && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}

export type DecodeOutcome<T> = { readonly items: T[] } | { readonly items: T[]; readonly error: string };

/** Slave reports, as read by the master. */
export class ReportDecoder {
  private partial = Buffer.alloc(0);

  push(chunk: Buffer): DecodeOutcome<number> {
    const bytes = this.partial.length === 0 ? chunk : Buffer.concat([this.partial, chunk]);
    const items: number[] = [];
    let at = 0;
    for (; at + REPORT_BYTES <= bytes.length; at += REPORT_BYTES) {
      const offset = safeOffset(bytes.readBigInt64BE(at));
      if (offset === undefined) return { items, error: `reported offset ${bytes.readBigInt64BE(at)} is out of range` };
      items.push(offset);
    }
    this.partial = Buffer.from(bytes.subarray(at));
    return { items };
  }
}

export interface TransferFrame {
  commitLogOffset: number;
  data: Buffer;
}

/**
 * Master frames, as read by the slave. Checks the announced size before buffering the data, and
 * joins the chunks of a large frame once, when it is complete.
 */
export class TransferDecoder {
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  /** Bytes needed before parsing can make progress. */
  private neededBytes = TRANSFER_HEADER_BYTES;

  constructor(private readonly maxFrameBytes: number) {}

  push(chunk: Buffer): DecodeOutcome<TransferFrame> {
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
    if (this.bufferedBytes < this.neededBytes) return { items: [] };
    const bytes = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, this.bufferedBytes);
    const items: TransferFrame[] = [];
    let at = 0;
    this.neededBytes = TRANSFER_HEADER_BYTES;
    while (bytes.length - at >= TRANSFER_HEADER_BYTES) {
      const offset = safeOffset(bytes.readBigInt64BE(at));
      const size = bytes.readInt32BE(at + 8);
      if (offset === undefined) return { items, error: `frame offset ${bytes.readBigInt64BE(at)} is out of range` };
      if (size < 0 || size > this.maxFrameBytes) {
        return { items, error: `frame of ${size} bytes (limit ${this.maxFrameBytes})` };
      }
      if (bytes.length - at < TRANSFER_HEADER_BYTES + size) {
        this.neededBytes = TRANSFER_HEADER_BYTES + size;
        break;
      }
      const dataAt = at + TRANSFER_HEADER_BYTES;
      items.push({ commitLogOffset: offset, data: bytes.subarray(dataAt, dataAt + size) });
      at = dataAt + size;
    }
    const rest = bytes.subarray(at);
    this.chunks = rest.length === 0 ? [] : [Buffer.from(rest)];
    this.bufferedBytes = rest.length;
    return { items };
  }
}
