/**
 * What every request processor shares: the broker's config, its store and managers, its counters.
 * The store exists only once the broker has started (its store host needs the listen port); the
 * broker answers requests before that itself, so processors may use `store` freely.
 */
import type { HostAddress } from '../common/message.js';
import type { MessageStore } from '../store/api.js';
import type { BrokerConfig } from './broker-config.js';
import type { ConsumerManager } from './consumer-manager.js';
import type { ConsumerOffsetManager } from './consumer-offset-manager.js';
import type { ProducerManager } from './producer-manager.js';
import type { TopicConfigManager } from './topic-config-manager.js';

/** Counters for GET_BROKER_RUNTIME_INFO. */
export interface BrokerCounters {
  putMessages: number;
  getMessages: number;
  sendFailures: number;
}

export interface BrokerContext {
  readonly config: BrokerConfig;
  readonly store: MessageStore;
  readonly topics: TopicConfigManager;
  readonly offsets: ConsumerOffsetManager;
  readonly consumers: ConsumerManager;
  readonly producers: ProducerManager;
  readonly counters: BrokerCounters;
  /** announceHost and the actual listen port: what routes and offset message ids carry. */
  readonly storeHost: HostAddress;
  /** PermName bits for the broker as a whole (6 = read + write). */
  readonly brokerPermission: number;
  readonly bootTimestampMs: number;
  /** The id registered with NameServers now: 0 on the master (it changes on failover in controller mode). */
  readonly brokerId: number;
}
