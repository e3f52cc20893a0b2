/**
 * Consumer groups and their members (RocketMQ ConsumerManager + ConsumerGroupInfo): which client
 * channels belong to each group and what the group subscribes to. Heartbeats register members and
 * subscriptions; unregister, channel close and expiry remove them. Whenever a group's member set
 * changes the `onMembersChanged` listener runs, and the broker notifies every member
 * (NOTIFY_CONSUMER_IDS_CHANGED) so that clients rebalance at once rather than at their next timer.
 */
import type { RemotingChannel } from '../remoting/channel.js';
import type { ClientChannelInfo } from './client-channel.js';
import type { ConsumerData, SubscriptionData } from './heartbeat-data.js';

export class ConsumerGroupInfo {
  /** By channel id. */
  readonly channels = new Map<string, ClientChannelInfo>();
  /** By topic. */
  readonly subscriptions = new Map<string, SubscriptionData>();
  consumeType = 'CONSUME_PASSIVELY';
  messageModel = 'CLUSTERING';
  consumeFromWhere = 'CONSUME_FROM_LAST_OFFSET';
  lastUpdateMs = Date.now();

  constructor(readonly groupName: string) {}

  clientIds(): string[] {
    return [...this.channels.values()].map((info) => info.clientId);
  }

  /** Adds or refreshes the channel; true when it is a new member. */
  updateChannel(info: ClientChannelInfo): boolean {
    const existing = this.channels.get(info.channel.id);
    this.lastUpdateMs = info.lastUpdateMs;
    if (existing === undefined || existing.clientId !== info.clientId) {
      this.channels.set(info.channel.id, info);
      return true;
    }
    existing.lastUpdateMs = info.lastUpdateMs;
    return false;
  }

  /**
   * Takes the subscriptions of a heartbeat (RocketMQ updateSubscription): new topics are added, a
   * topic's subscription is replaced when its subVersion grows, topics no longer named are dropped.
   */
  updateSubscriptions(subscriptions: readonly SubscriptionData[]): boolean {
    let changed = false;
    const named = new Set<string>();
    for (const sub of subscriptions) {
      named.add(sub.topic);
      const old = this.subscriptions.get(sub.topic);
      if (old === undefined || sub.subVersion > old.subVersion || old.subString !== sub.subString) {
        this.subscriptions.set(sub.topic, sub);
        changed = true;
      }
    }
    for (const topic of [...this.subscriptions.keys()]) {
      if (!named.has(topic)) {
        this.subscriptions.delete(topic);
        changed = true;
      }
    }
    return changed;
  }
}

export type MembersChangedListener = (group: string, members: ClientChannelInfo[]) => void;

export class ConsumerManager {
  private readonly groups = new Map<string, ConsumerGroupInfo>();

  constructor(private readonly onMembersChanged: MembersChangedListener) {}

  group(groupName: string): ConsumerGroupInfo | undefined {
    return this.groups.get(groupName);
  }

  groupNames(): string[] {
    return [...this.groups.keys()];
  }

  findSubscription(groupName: string, topic: string): SubscriptionData | undefined {
    return this.groups.get(groupName)?.subscriptions.get(topic);
  }

  /** Registers a heartbeat's consumer data for the channel. */
  register(data: ConsumerData, info: ClientChannelInfo): void {
    let group = this.groups.get(data.groupName);
    if (group === undefined) {
      group = new ConsumerGroupInfo(data.groupName);
      this.groups.set(data.groupName, group);
    }
    group.consumeType = data.consumeType;
    group.messageModel = data.messageModel;
    group.consumeFromWhere = data.consumeFromWhere;
    const newMember = group.updateChannel(info);
    group.updateSubscriptions(data.subscriptionDataSet);
    if (newMember) this.onMembersChanged(group.groupName, [...group.channels.values()]);
  }

  /** UNREGISTER_CLIENT for one group. */
  unregister(groupName: string, channel: RemotingChannel): void {
    const group = this.groups.get(groupName);
    if (group === undefined || !group.channels.delete(channel.id)) return;
    this.afterRemoval(group);
  }

  /** The channel closed or expired: it leaves every group. */
  removeChannel(channel: RemotingChannel): void {
    for (const group of [...this.groups.values()]) {
      if (group.channels.delete(channel.id)) this.afterRemoval(group);
    }
  }

  /** Channels not heard from since `olderThanMs`. */
  expiredChannels(olderThanMs: number): RemotingChannel[] {
    const expired = new Map<string, RemotingChannel>();
    for (const group of this.groups.values()) {
      for (const info of group.channels.values()) {
        if (info.lastUpdateMs < olderThanMs) expired.set(info.channel.id, info.channel);
      }
    }
    return [...expired.values()];
  }

  private afterRemoval(group: ConsumerGroupInfo): void {
    if (group.channels.size === 0) {
      this.groups.delete(group.groupName);
      return;
    }
    this.onMembersChanged(group.groupName, [...group.channels.values()]);
  }
}
