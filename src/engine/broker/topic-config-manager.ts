/**
 * The broker's topic table (RocketMQ TopicConfigManager): which topics exist here, with how many read
 * and write queues and which permissions. It owns `<storePath>/config/topics.json` (RocketMQ's file
 * name and shape: {"dataVersion":{...},"topicConfigTable":{name: TopicConfig}}), creates the system
 * topics, and auto-creates topics on send from the TBW102 template. It tells the broker about changes
 * through the listener it is handed, so that routes reach the NameServers.
 *
 * Durability: a change is durable in topics.json before anyone hears of it (the caller's response,
 * the NameServers). Callers that can wait use the async forms (`update`, `ensureInternal`): the
 * table changes at once, the fsyncs run on the thread pool and the promise resolves once they are
 * done. The sync forms (`createOrUpdate`, `createInternal`, `createOnSend`) are for callers that
 * cannot wait (the send path) and still write synchronously; SerialAtomicFile keeps both kinds of
 * write from interleaving or going back to older content.
 */
import { join } from 'node:path';
import { createLogger } from '../common/logger.js';
import { AUTO_CREATE_TOPIC_KEY_TOPIC, topicNameProblem } from '../common/topic.js';
import { SerialAtomicFile } from '../common/atomic-file.js';
import { readLenientJsonFile } from './lenient-json.js';

/** PermName.java bits. */
export const Perm = { Priority: 8, Read: 4, Write: 2, Inherit: 1 } as const;
export const PERM_READ_WRITE = Perm.Read | Perm.Write;

export function isReadable(perm: number): boolean {
  return (perm & Perm.Read) !== 0;
}
export function isWriteable(perm: number): boolean {
  return (perm & Perm.Write) !== 0;
}
export function isInherited(perm: number): boolean {
  return (perm & Perm.Inherit) !== 0;
}

/** RocketMQ's test topic, created on every broker. */
export const SELF_TEST_TOPIC = 'SELF_TEST_TOPIC';

/** TopicConfig.java, as serialized in topics.json and in registration bodies. */
export interface TopicConfig {
  topicName: string;
  readQueueNums: number;
  writeQueueNums: number;
  perm: number;
  topicFilterType: 'SINGLE_TAG' | 'MULTI_TAG';
  topicSysFlag: number;
  order: boolean;
}

/** DataVersion.java: bumped on every change so that the NameServer sees new routes. */
export interface DataVersion {
  timestamp: number;
  counter: number;
}

/** TopicConfigSerializeWrapper.java. */
export interface TopicConfigSerializeWrapper {
  topicConfigTable: Record<string, TopicConfig>;
  dataVersion: DataVersion;
}

export function topicConfigOf(topicName: string, queueNums: number, perm: number, topicSysFlag = 0): TopicConfig {
  return {
    topicName,
    readQueueNums: queueNums,
    writeQueueNums: queueNums,
    perm,
    topicFilterType: 'SINGLE_TAG',
    topicSysFlag,
    order: false,
  };
}

export interface TopicConfigManagerOptions {
  configDir: string;
  brokerName: string;
  clusterName: string;
  autoCreateTopicEnable: boolean;
  defaultTopicQueueNums: number;
  /** Called after a topic is created or changed (the broker re-registers with the NameServers). */
  onChange: (topic: TopicConfig) => void;
}

const log = createLogger('topic-config');

export class TopicConfigManager {
  private readonly table = new Map<string, TopicConfig>();
  private dataVersion: DataVersion = { timestamp: Date.now(), counter: 0 };
  private readonly file: SerialAtomicFile;

  constructor(private readonly options: TopicConfigManagerOptions) {
    this.file = new SerialAtomicFile(join(options.configDir, 'topics.json'));
  }

  /** Loads topics.json (if any) and makes sure the system topics exist. */
  load(): void {
    const stored = readStoredTable(this.file.path);
    if (stored !== undefined) {
      for (const [name, config] of Object.entries(stored.topicConfigTable ?? {})) {
        const normalized = normalizeTopicConfig(name, config);
        if (normalized !== undefined) this.table.set(name, normalized);
        else log.warn({ topic: name }, 'ignoring malformed topic config in topics.json');
      }
      if (stored.dataVersion !== undefined) this.dataVersion = { ...stored.dataVersion };
    }
    const { brokerName, clusterName, autoCreateTopicEnable, defaultTopicQueueNums } = this.options;
    const system: TopicConfig[] = [topicConfigOf(SELF_TEST_TOPIC, 1, PERM_READ_WRITE)];
    // A producer sending to an unknown topic asks the broker to create it from TBW102, which must
    // carry the inherit bit; with auto-create off the template is absent, as in RocketMQ.
    if (autoCreateTopicEnable) {
      system.push(topicConfigOf(AUTO_CREATE_TOPIC_KEY_TOPIC, defaultTopicQueueNums, Perm.Inherit | PERM_READ_WRITE));
    } else {
      this.table.delete(AUTO_CREATE_TOPIC_KEY_TOPIC);
    }
    if (topicNameProblem(clusterName) === undefined) {
      system.push(topicConfigOf(clusterName, 1, Perm.Inherit | PERM_READ_WRITE));
    }
    if (topicNameProblem(brokerName) === undefined) {
      system.push(topicConfigOf(brokerName, 1, Perm.Inherit | PERM_READ_WRITE));
    }
    for (const config of system) this.table.set(config.topicName, config);
    this.persist();
  }

  get(topic: string): TopicConfig | undefined {
    return this.table.get(topic);
  }

  all(): TopicConfig[] {
    return [...this.table.values()];
  }

  /** Names reserved for the broker's own topics: clients may not redefine them. */
  isSystemTopic(topic: string): boolean {
    return (
      topic === this.options.clusterName ||
      topic === this.options.brokerName ||
      topic === AUTO_CREATE_TOPIC_KEY_TOPIC ||
      topic === SELF_TEST_TOPIC
    );
  }

  /** UPDATE_AND_CREATE_TOPIC: stores the config as given (after the caller validated it). */
  createOrUpdate(config: TopicConfig): void {
    this.table.set(config.topicName, { ...config });
    this.changed(config);
  }

  /** createOrUpdate with the fsyncs on the thread pool: resolves once the change is durable. */
  async update(config: TopicConfig): Promise<void> {
    this.table.set(config.topicName, { ...config });
    this.dataVersion = { timestamp: Date.now(), counter: this.dataVersion.counter + 1 };
    await this.file.write(() => this.render());
    this.options.onChange(config);
  }

  /**
   * Creates `topic` on its first send from the template named in the send header (RocketMQ
   * createTopicInSendMessageMethod): only with auto-create on and a template that carries the
   * inherit bit. The queue count is the producer's wish capped by the template's write queues.
   */
  createOnSend(
    topic: string,
    templateTopic: string,
    requestedQueueNums: number,
    topicSysFlag: number,
  ): TopicConfig | undefined {
    const existing = this.table.get(topic);
    if (existing !== undefined) return existing;
    if (!this.options.autoCreateTopicEnable) return undefined;
    const template = this.table.get(templateTopic);
    if (template === undefined || !isInherited(template.perm)) return undefined;
    const queueNums = Math.max(1, Math.min(requestedQueueNums, template.writeQueueNums));
    const config = topicConfigOf(topic, queueNums, template.perm & ~Perm.Inherit, topicSysFlag);
    log.info({ topic, queueNums, from: templateTopic }, 'auto-created topic on send');
    this.createOrUpdate(config);
    return config;
  }

  /** Creates an internal topic (retry, DLQ) if absent (RocketMQ createTopicInSendMessageBackMethod). */
  createInternal(topic: string, queueNums: number, perm: number): TopicConfig {
    const existing = this.table.get(topic);
    if (existing !== undefined) return existing;
    const config = topicConfigOf(topic, queueNums, perm);
    this.createOrUpdate(config);
    return config;
  }

  /**
   * createInternal with the fsyncs on the thread pool: the topic exists in the table at once (so
   * the caller's synchronous work sees it); the promise resolves once it is durable.
   */
  async ensureInternal(topic: string, queueNums: number, perm: number): Promise<TopicConfig> {
    const existing = this.table.get(topic);
    if (existing !== undefined) {
      // Created by a concurrent ensureInternal whose write may still be running: wait for it too.
      await this.file.flushed();
      return existing;
    }
    const config = topicConfigOf(topic, queueNums, perm);
    await this.update(config);
    return config;
  }

  serializeWrapper(): TopicConfigSerializeWrapper {
    return { topicConfigTable: Object.fromEntries(this.table), dataVersion: { ...this.dataVersion } };
  }

  private changed(config: TopicConfig): void {
    this.dataVersion = { timestamp: Date.now(), counter: this.dataVersion.counter + 1 };
    this.persist();
    this.options.onChange(config);
  }

  persist(): void {
    this.file.writeSync(this.render());
  }

  /** Writes the table on the thread pool (after any write in flight); shutdown awaits it. */
  persistAsync(): Promise<void> {
    return this.file.write(() => this.render());
  }

  private render(): string {
    return JSON.stringify(this.serializeWrapper(), null, 2);
  }
}

function readStoredTable(path: string): Partial<TopicConfigSerializeWrapper> | undefined {
  const stored = readLenientJsonFile(path);
  return typeof stored === 'object' && stored !== null ? (stored as Partial<TopicConfigSerializeWrapper>) : undefined;
}

function normalizeTopicConfig(name: string, raw: Partial<TopicConfig> | undefined): TopicConfig | undefined {
  if (raw === undefined || topicNameProblem(name) !== undefined) return undefined;
  const read = raw.readQueueNums;
  const write = raw.writeQueueNums;
  if (typeof read !== 'number' || typeof write !== 'number' || read < 0 || write < 0) return undefined;
  return {
    topicName: name,
    readQueueNums: read,
    writeQueueNums: write,
    perm: typeof raw.perm === 'number' ? raw.perm : PERM_READ_WRITE,
    topicFilterType: raw.topicFilterType === 'MULTI_TAG' ? 'MULTI_TAG' : 'SINGLE_TAG',
    topicSysFlag: typeof raw.topicSysFlag === 'number' ? raw.topicSysFlag : 0,
    order: raw.order === true,
  };
}
