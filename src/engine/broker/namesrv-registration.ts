/**
 * The broker's side of the NameServer conversation (RocketMQ BrokerOuterAPI): REGISTER_BROKER (103)
 * with the whole topic table to every NameServer, at start, on a timer and after topic changes, and
 * UNREGISTER_BROKER (104) at shutdown. Registrations are serialized and coalesced: a change while one
 * is in flight causes exactly one more. A NameServer that is down is logged and retried next time.
 */
import { crc32 } from 'node:zlib';
import { createLogger } from '../common/logger.js';
import { RequestCode, ResponseCode } from '../remoting/codes.js';
import { createRequest } from '../remoting/command.js';
import { encodeRegisterBrokerBody } from '../remoting/route-data.js';
import type { RemotingClient } from '../remoting/tcp-client.js';
import type { TopicConfigSerializeWrapper } from './topic-config-manager.js';

export interface BrokerIdentity {
  brokerName: string;
  clusterName: string;
  brokerId: number;
  /** announceHost:port, as put into routes. */
  brokerAddr: string;
  /** announceHost:(port + 1), RocketMQ's HA port. */
  haServerAddr: string;
}

const log = createLogger('broker-registration');

/** A NameServer being down is routine: log why, without a stack every interval. */
function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class NameServerRegistration {
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly client: RemotingClient,
    private readonly namesrvAddresses: readonly string[],
    private readonly identity: () => BrokerIdentity,
    private readonly topics: () => TopicConfigSerializeWrapper,
    private readonly timeoutMs: number,
    /** Sees each successful answer (a slave learns its master's addresses from masterAddr/haServerAddr). */
    private readonly onRegistered?: (extFields: Readonly<Record<string, string>>) => void,
  ) {}

  /** Registers with every NameServer; resolves when this (or a coalesced) round has finished. */
  registerAll(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.registerRound();
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Waits for a registration in flight (shutdown). */
  async idle(): Promise<void> {
    await this.running;
  }

  async unregisterAll(): Promise<void> {
    const identity = this.identity();
    const header = {
      brokerName: identity.brokerName,
      brokerAddr: identity.brokerAddr,
      clusterName: identity.clusterName,
      brokerId: String(identity.brokerId),
    };
    await Promise.all(
      this.namesrvAddresses.map(async (address) => {
        try {
          await this.client.invoke(address, createRequest(RequestCode.UnregisterBroker, { ...header }), this.timeoutMs);
        } catch (err) {
          log.warn({ namesrv: address, reason: reasonOf(err) }, 'unregistering from NameServer failed');
        }
      }),
    );
  }

  private async registerRound(): Promise<void> {
    const identity = this.identity();
    const body = encodeRegisterBrokerBody({ topicConfigSerializeWrapper: this.topics(), filterServerList: [] });
    const header = {
      brokerName: identity.brokerName,
      brokerAddr: identity.brokerAddr,
      clusterName: identity.clusterName,
      haServerAddr: identity.haServerAddr,
      brokerId: String(identity.brokerId),
      compressed: 'false',
      // UtilAll.crc32: CRC-32 masked to 31 bits; the NameServer may check it.
      bodyCrc32: String(crc32(body) & 0x7fffffff),
    };
    await Promise.all(
      this.namesrvAddresses.map(async (address) => {
        try {
          const response = await this.client.invoke(
            address,
            createRequest(RequestCode.RegisterBroker, { ...header }, body),
            this.timeoutMs,
          );
          if (response.code !== ResponseCode.Success) {
            log.warn(
              { namesrv: address, code: response.code, remark: response.remark },
              'NameServer refused registration',
            );
          } else {
            this.onRegistered?.(response.extFields);
          }
        } catch (err) {
          log.warn({ namesrv: address, reason: reasonOf(err) }, 'registering with NameServer failed');
        }
      }),
    );
  }
}
