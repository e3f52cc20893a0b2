/**
 * Producer groups and their channels (RocketMQ ProducerManager). The broker needs them to reach a
 * producer later (transaction checks); heartbeats register, unregister, close and expiry remove.
 */
import type { RemotingChannel } from '../remoting/channel.js';
import type { ClientChannelInfo } from './client-channel.js';

export class ProducerManager {
  private readonly groups = new Map<string, Map<string, ClientChannelInfo>>();

  register(groupName: string, info: ClientChannelInfo): void {
    let channels = this.groups.get(groupName);
    if (channels === undefined) {
      channels = new Map();
      this.groups.set(groupName, channels);
    }
    const existing = channels.get(info.channel.id);
    if (existing !== undefined && existing.clientId === info.clientId) existing.lastUpdateMs = info.lastUpdateMs;
    else channels.set(info.channel.id, info);
  }

  unregister(groupName: string, channel: RemotingChannel): void {
    const channels = this.groups.get(groupName);
    if (channels === undefined) return;
    channels.delete(channel.id);
    if (channels.size === 0) this.groups.delete(groupName);
  }

  removeChannel(channel: RemotingChannel): void {
    for (const groupName of [...this.groups.keys()]) this.unregister(groupName, channel);
  }

  /** A live channel of the group (for broker -> producer requests), or undefined. */
  anyChannel(groupName: string): ClientChannelInfo | undefined {
    for (const info of this.groups.get(groupName)?.values() ?? []) if (!info.channel.closed) return info;
    return undefined;
  }

  groupNames(): string[] {
    return [...this.groups.keys()];
  }

  expiredChannels(olderThanMs: number): RemotingChannel[] {
    const expired = new Map<string, RemotingChannel>();
    for (const channels of this.groups.values()) {
      for (const info of channels.values())
        if (info.lastUpdateMs < olderThanMs) expired.set(info.channel.id, info.channel);
    }
    return [...expired.values()];
  }
}
