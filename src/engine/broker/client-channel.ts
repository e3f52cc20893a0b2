/**
 * What the broker knows about one client connection in a group (RocketMQ ClientChannelInfo).
 */
import type { RemotingChannel } from '../remoting/channel.js';

export interface ClientChannelInfo {
  channel: RemotingChannel;
  clientId: string;
  language: string;
  version: number;
  /** Last heartbeat; channels silent longer than clientChannelExpiryMs are dropped. */
  lastUpdateMs: number;
}
