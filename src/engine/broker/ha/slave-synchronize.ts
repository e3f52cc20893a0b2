/**
 * Metadata from master to slave (RocketMQ SlaveSynchronize): every slaveSyncIntervalMs the slave asks its
 * master for its topic configs (GET_ALL_TOPIC_CONFIG, 21) and its whole consumer offset table
 * (GET_ALL_CONSUMER_OFFSET, 43) and applies them locally, so that pulls on the slave find their topics
 * and a consumer reading from the slave (or a promoted slave) resumes where its group left off. The
 * master answers 43 from its ConsumerOffsetManager (`answerAllOffsets`). Delay offsets and
 * subscription groups are not synced yet.
 */
import { createLogger } from '../../common/logger.js';
import { RequestCode, ResponseCode } from '../../remoting/codes.js';
import { createRequest, createResponse, type RemotingCommand } from '../../remoting/command.js';
import type { RemotingClient } from '../../remoting/tcp-client.js';
import type { ConsumerOffsetManager } from '../consumer-offset-manager.js';
import type { TopicConfig, TopicConfigManager } from '../topic-config-manager.js';
import { parseLenientJson } from '../lenient-json.js';

/** RocketMQ RequestCode.GET_ALL_CONSUMER_OFFSET. */
export const GET_ALL_CONSUMER_OFFSET = 43;

const log = createLogger('slave-synchronize');

/** Master side: the ConsumerOffsetSerializeWrapper JSON body. */
export function answerAllOffsets(request: RemotingCommand, offsets: ConsumerOffsetManager): RemotingCommand {
  const body = Buffer.from(JSON.stringify({ offsetTable: offsets.offsetTable() }));
  return createResponse(request, ResponseCode.Success, undefined, {}, body);
}

/** Slave side: commits every well-formed entry of a ConsumerOffsetSerializeWrapper body; returns how many. */
export function applyAllOffsets(body: Buffer, offsets: ConsumerOffsetManager): number {
  const parsed = parseLenientJson(body.toString('utf8')) as { offsetTable?: unknown } | undefined;
  const table = parsed?.offsetTable;
  if (typeof table !== 'object' || table === null) throw new Error('body has no offsetTable object');
  let applied = 0;
  for (const [key, queues] of Object.entries(table as Record<string, unknown>)) {
    const at = key.indexOf('@');
    if (at <= 0 || at === key.length - 1 || typeof queues !== 'object' || queues === null) continue;
    const topic = key.slice(0, at);
    const group = key.slice(at + 1);
    for (const [queueIdText, queueOffset] of Object.entries(queues as Record<string, unknown>)) {
      const queueId = Number(queueIdText);
      if (!Number.isInteger(queueId) || queueId < 0) continue;
      if (typeof queueOffset !== 'number' || !Number.isSafeInteger(queueOffset) || queueOffset < 0) continue;
      if (offsets.query(group, topic, queueId) === queueOffset) continue;
      offsets.commit(group, topic, queueId, queueOffset);
      applied++;
    }
  }
  return applied;
}

/** Slave side: creates or updates every topic of a TopicConfigSerializeWrapper body that differs; returns how many. */
export function applyAllTopicConfigs(body: Buffer, topics: TopicConfigManager): number {
  const parsed = parseLenientJson(body.toString('utf8')) as { topicConfigTable?: unknown } | undefined;
  const table = parsed?.topicConfigTable;
  if (typeof table !== 'object' || table === null) throw new Error('body has no topicConfigTable object');
  let applied = 0;
  for (const value of Object.values(table as Record<string, unknown>)) {
    const config = topicConfigFrom(value);
    if (config === undefined) continue;
    const current = topics.get(config.topicName);
    if (current !== undefined && JSON.stringify(current) === JSON.stringify(config)) continue;
    topics.createOrUpdate(config);
    applied++;
  }
  return applied;
}

function topicConfigFrom(value: unknown): TopicConfig | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const integer = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;
  const topicName = v['topicName'];
  const readQueueNums = v['readQueueNums'];
  const writeQueueNums = v['writeQueueNums'];
  const perm = v['perm'];
  if (typeof topicName !== 'string' || topicName.length === 0) return undefined;
  if (!integer(readQueueNums) || !integer(writeQueueNums) || !integer(perm)) return undefined;
  const topicSysFlag = v['topicSysFlag'];
  return {
    topicName,
    readQueueNums,
    writeQueueNums,
    perm,
    topicFilterType: v['topicFilterType'] === 'MULTI_TAG' ? 'MULTI_TAG' : 'SINGLE_TAG',
    topicSysFlag: integer(topicSysFlag) ? topicSysFlag : 0,
    order: v['order'] === true,
  };
}

export interface SlaveSynchronizeOptions {
  client: RemotingClient;
  offsets: ConsumerOffsetManager;
  topics: TopicConfigManager;
  /** The master's remoting address, or undefined while unknown. */
  masterBrokerAddress: () => string | undefined;
  intervalMs: number;
  timeoutMs: number;
}

export class SlaveSynchronize {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** Completed syncs (tests wait on it). */
  syncCount = 0;

  constructor(private readonly options: SlaveSynchronizeOptions) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.syncOnce().finally(() => {
        this.running = undefined;
      });
    }, this.options.intervalMs);
    this.timer.unref();
  }

  /** One round; failures are logged (a master that is down is routine). */
  async syncOnce(): Promise<void> {
    const address = this.options.masterBrokerAddress();
    if (address === undefined) return;
    try {
      const topicsResponse = await this.options.client.invoke(
        address,
        createRequest(RequestCode.GetAllTopicConfig),
        this.options.timeoutMs,
      );
      if (topicsResponse.code === ResponseCode.Success && topicsResponse.body !== undefined) {
        applyAllTopicConfigs(topicsResponse.body, this.options.topics);
      } else {
        log.warn({ master: address, code: topicsResponse.code }, 'master refused the topic config sync');
      }
      const response = await this.options.client.invoke(
        address,
        createRequest(GET_ALL_CONSUMER_OFFSET),
        this.options.timeoutMs,
      );
      if (response.code !== ResponseCode.Success || response.body === undefined) {
        log.warn({ master: address, code: response.code, remark: response.remark }, 'master refused the offset sync');
        return;
      }
      applyAllOffsets(response.body, this.options.offsets);
      this.syncCount++;
    } catch (err) {
      log.warn({ master: address, reason: err instanceof Error ? err.message : String(err) }, 'offset sync failed');
    }
  }

  async shutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
