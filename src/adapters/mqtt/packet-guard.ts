/**
 * Enforces the packet size limit aedes lacks: follows MQTT fixed headers across reads (control
 * byte, then the Remaining Length varint of at most 4 bytes [MQTT-2.2.3]) without buffering any
 * payload, and reports the first packet whose size is over the limit, or a malformed length,
 * before the parser would start accumulating it. It also refuses, at their first byte, a first
 * packet that is not CONNECT [MQTT-3.1.0-1] and the reserved packet types 0 and 15, which the
 * parser would otherwise wait on until the connect timeout.
 */

/** Why a byte stream was refused. */
export type GuardVerdict = { ok: true } | { ok: false; reason: string };

const OK: GuardVerdict = { ok: true };

export class PacketSizeGuard {
  private state: 'control' | 'length' | 'body' = 'control';
  private lengthValue = 0;
  private lengthMultiplier = 1;
  private lengthBytes = 0;
  private bodyLeftBytes = 0;
  private packets = 0;

  constructor(private readonly maxPacketBytes: number) {}

  /** Feeds the next bytes of the connection. */
  feed(chunk: Buffer): GuardVerdict {
    let i = 0;
    while (i < chunk.length) {
      switch (this.state) {
        case 'control': {
          const type = (chunk[i++] as number) >> 4;
          if (this.packets === 0 && type !== 1)
            return { ok: false, reason: 'first packet is not CONNECT [MQTT-3.1.0-1]' };
          if (type === 0 || type === 15) return { ok: false, reason: `reserved packet type ${type} [MQTT-2.2.1]` };
          this.packets++;
          this.state = 'length';
          this.lengthValue = 0;
          this.lengthMultiplier = 1;
          this.lengthBytes = 0;
          break;
        }
        case 'length': {
          const byte = chunk[i++] as number;
          this.lengthBytes++;
          this.lengthValue += (byte & 0x7f) * this.lengthMultiplier;
          this.lengthMultiplier *= 128;
          if ((byte & 0x80) !== 0) {
            if (this.lengthBytes >= 4) return { ok: false, reason: 'malformed Remaining Length [MQTT-2.2.3]' };
            break;
          }
          const packetBytes = 1 + this.lengthBytes + this.lengthValue;
          if (packetBytes > this.maxPacketBytes) {
            return { ok: false, reason: `packet of ${packetBytes} bytes is over the limit of ${this.maxPacketBytes}` };
          }
          this.bodyLeftBytes = this.lengthValue;
          this.state = this.bodyLeftBytes === 0 ? 'control' : 'body';
          break;
        }
        case 'body': {
          const take = Math.min(this.bodyLeftBytes, chunk.length - i);
          i += take;
          this.bodyLeftBytes -= take;
          if (this.bodyLeftBytes === 0) this.state = 'control';
          break;
        }
      }
    }
    return OK;
  }
}
