/**
 * How github.com/apache/rocketmq-client-go/v2 builds its requests and reads our answers, redone in
 * TypeScript so the wire test can replay the first and assert the second. Each function names the Go
 * code it mirrors; none of it is our own protocol code, so a bug in our codecs cannot hide behind it.
 * See docs/go-client-compat.md for the audit these come from.
 */
import { createRequest, type RemotingCommand } from '../../../src/engine/remoting/command.js';

/** remote/codec.go: `_Version = 317`, `LanguageCode(9)` marshalled as "GO". */
export const GO_VERSION = 317;

/** remote.NewRemotingCommand: language GO, version 317, every extFields value a string. */
export function goRequest(code: number, extFields: Record<string, string>, body?: Buffer): RemotingCommand {
  const request = createRequest(code, extFields, body);
  request.language = 'GO';
  request.version = GO_VERSION;
  return request;
}

/**
 * The JSON header bytes jsoniter writes for remote.RemotingCommand (field order code, language,
 * version, opaque, flag, remark, extFields; remark "" when unset).
 */
export function goJsonFrame(code: number, opaque: number, extFields: Record<string, string>, body?: Buffer): Buffer {
  const header = Buffer.from(
    JSON.stringify({ code, language: 'GO', version: GO_VERSION, opaque, flag: 0, remark: '', extFields }),
    'utf8',
  );
  const bodyBytes = body?.length ?? 0;
  const frame = Buffer.alloc(8 + header.length + bodyBytes);
  frame.writeInt32BE(4 + header.length + bodyBytes, 0);
  frame.writeInt32BE(header.length, 4); // high byte 0: JsonCodecs
  header.copy(frame, 8);
  body?.copy(frame, 8 + header.length);
  return frame;
}

const INT16_MIN = -32768;
const INT16_MAX = 32767;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * remote/codec.go jsonCodec.decodeHeader: jsoniter.Unmarshal into {Code int16, Language, Version
 * int16, Opaque int32, Flag int32, Remark string, ExtFields map[string]string}. Any value of the
 * wrong type fails the whole response in Go, so this throws where Go would.
 */
export function goDecodeJsonHeader(header: Buffer): {
  code: number;
  opaque: number;
  flag: number;
  extFields: Record<string, string>;
} {
  const raw = JSON.parse(header.toString('utf8')) as Record<string, unknown>;
  const int = (name: string, min: number, max: number): number => {
    const value = raw[name] ?? 0;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new Error(`Go cannot read header field ${name}=${JSON.stringify(value)}`);
    }
    return value;
  };
  const remark = raw['remark'];
  if (remark !== undefined && remark !== null && typeof remark !== 'string') throw new Error('remark is not a string');
  const extFields = raw['extFields'] ?? {};
  if (typeof extFields !== 'object' || extFields === null || Array.isArray(extFields)) {
    throw new Error('extFields is not an object');
  }
  for (const [name, value] of Object.entries(extFields)) {
    if (typeof value !== 'string')
      throw new Error(`extFields.${name} is not a string: Go's map[string]string rejects it`);
  }
  int('version', INT16_MIN, INT16_MAX);
  return {
    code: int('code', INT16_MIN, INT16_MAX),
    opaque: int('opaque', INT32_MIN, INT32_MAX),
    flag: int('flag', INT32_MIN, INT32_MAX),
    extFields: extFields as Record<string, string>,
  };
}

/** strconv.ParseInt(s, 10, 64) with the error ignored, as the Go client does: 0 on failure. */
export function goParseInt(text: string | undefined): number {
  return text !== undefined && /^[+-]?\d+$/.test(text) ? Number(text) : 0;
}

export interface GoQueueData {
  brokerName: string;
  readQueueNums: number;
  writeQueueNums: number;
  perm: number;
  topicSynFlag: number;
}

export interface GoBrokerData {
  brokerName: string;
  cluster: string;
  /** BrokerAddresses map[int64]string */
  brokerAddresses: Map<number, string>;
}

export interface GoRouteData {
  queueDatas: GoQueueData[];
  brokerDatas: GoBrokerData[];
}

/** The raw text gjson returns for a key's value (an object or array is returned verbatim). */
function rawValue(text: string, key: string, from = 0): { raw: string; end: number } | undefined {
  const at = text.indexOf(`"${key}":`, from);
  if (at < 0) return undefined;
  const start = at + key.length + 3;
  const open = text[start];
  if (open !== '{' && open !== '[') {
    const match = /^("(?:[^"\\]|\\.)*"|[^,}\]]*)/.exec(text.slice(start));
    const raw = match?.[0] ?? '';
    return { raw, end: start + raw.length };
  }
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') {
      depth--;
      if (depth === 0) return { raw: text.slice(start, i + 1), end: i + 1 };
    }
  }
  return undefined;
}

/** The objects directly inside a JSON array's raw text (what gjson's Array() yields). */
function topLevelObjects(array: string): string[] {
  const objects: string[] = [];
  let depth = 0;
  let inString = false;
  let start = -1;
  for (let i = 0; i < array.length; i++) {
    const ch = array[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{' || ch === '[') {
      if (depth === 1 && ch === '{') start = i;
      depth++;
    } else if (ch === '}' || ch === ']') {
      depth--;
      if (depth === 1 && ch === '}') objects.push(array.slice(start, i + 1));
    }
  }
  return objects;
}

/**
 * internal/route.go TopicRouteData.decode: queueDatas through encoding/json into int fields;
 * brokerDatas through gjson, with brokerAddrs read by cutting the braces, splitting on "," and then
 * at the first ":", ParseInt on the id (a quoted id fails and becomes 0) and stripping quotes.
 */
export function goDecodeRoute(body: Buffer): GoRouteData {
  const text = body.toString('utf8');
  const queueRaw = rawValue(text, 'queueDatas');
  if (queueRaw === undefined) throw new Error('no queueDatas');
  const queues = JSON.parse(queueRaw.raw) as Record<string, unknown>[];
  const queueDatas = queues.map((q): GoQueueData => {
    const int = (name: string): number => {
      const value = q[name] ?? 0;
      if (typeof value !== 'number' || !Number.isInteger(value)) throw new Error(`queueData.${name} is not an int`);
      return value;
    };
    const brokerName = q['brokerName'];
    if (typeof brokerName !== 'string') throw new Error('queueData.brokerName is not a string');
    return {
      brokerName,
      readQueueNums: int('readQueueNums'),
      writeQueueNums: int('writeQueueNums'),
      perm: int('perm'),
      topicSynFlag: int('topicSynFlag'),
    };
  });
  const brokerRaw = rawValue(text, 'brokerDatas');
  if (brokerRaw === undefined) throw new Error('no brokerDatas');
  const brokerDatas: GoBrokerData[] = [];
  for (const object of topLevelObjects(brokerRaw.raw)) {
    const addrs = rawValue(object, 'brokerAddrs')?.raw ?? '';
    const brokerAddresses = new Map<number, string>();
    for (const part of addrs.slice(1, -1).split(',')) {
      const i = part.indexOf(':');
      if (i < 0) continue;
      brokerAddresses.set(goParseInt(part.slice(0, i)), part.slice(i + 1).replaceAll('"', ''));
    }
    const stringOf = (key: string): string => JSON.parse(rawValue(object, key)?.raw ?? '""') as string;
    brokerDatas.push({ brokerName: stringOf('brokerName'), cluster: stringOf('cluster'), brokerAddresses });
  }
  return { queueDatas, brokerDatas };
}

/** internal/perm.go */
export const goQueueIsWriteable = (perm: number): boolean => (perm & 2) === 2;
export const goQueueIsReadable = (perm: number): boolean => (perm & 4) === 4;

export interface GoMessageQueue {
  topic: string;
  brokerName: string;
  queueId: number;
}

/**
 * namesrvs.routeData2PublishInfo (after UpdateTopicRouteInfoWithDefault capped the queue counts to
 * defaultQueueNums when the route came from TBW102): writeable queues of brokers with a master.
 */
export function goPublishQueues(topic: string, route: GoRouteData, defaultQueueNums?: number): GoMessageQueue[] {
  const queues: GoMessageQueue[] = [];
  for (const qd of route.queueDatas) {
    let writeQueueNums = qd.writeQueueNums;
    if (defaultQueueNums !== undefined && qd.readQueueNums > defaultQueueNums) writeQueueNums = defaultQueueNums;
    if (!goQueueIsWriteable(qd.perm)) continue;
    const broker = route.brokerDatas.find((bd) => bd.brokerName === qd.brokerName);
    if ((broker?.brokerAddresses.get(0) ?? '') === '') continue;
    for (let i = 0; i < writeQueueNums; i++) queues.push({ topic, brokerName: qd.brokerName, queueId: i });
  }
  return queues;
}

/** client.go routeData2SubscribeInfo: readable queues. */
export function goSubscribeQueues(topic: string, route: GoRouteData): GoMessageQueue[] {
  const queues: GoMessageQueue[] = [];
  for (const qd of route.queueDatas) {
    if (!goQueueIsReadable(qd.perm)) continue;
    for (let i = 0; i < qd.readQueueNums; i++) queues.push({ topic, brokerName: qd.brokerName, queueId: i });
  }
  return queues;
}

/** primitive.Message.MarshallProperties: name \u0001 value \u0002 for each property. */
export function goMarshalProperties(properties: Record<string, string>): string {
  return Object.entries(properties)
    .map(([name, value]) => `${name}\u0001${value}\u0002`)
    .join('');
}

/** primitive.CreateUniqID: ip 4 + pid 2 + classLoadId 4 as upper hex, then time 4 + counter 2 in lower hex. */
export function goCreateUniqId(counter: number): string {
  const prefix = Buffer.alloc(10);
  prefix.set([127, 0, 0, 1], 0);
  prefix.writeInt16BE(4242, 4);
  const tail = Buffer.alloc(6);
  tail.writeInt32BE(Date.now() % 1_000_000, 0);
  tail.writeInt16BE(counter, 4);
  return prefix.toString('hex').toUpperCase() + tail.toString('hex');
}

/** primitive.UnmarshalMsgID: ip 4 + port 4 + CommitLog offset 8, hex; errors under 32 characters. */
export function goUnmarshalMsgId(id: string): { addr: string; port: number; offset: bigint } {
  if (id.length < 32) throw new Error(`${id} len < 32`);
  const bytes = Buffer.from(id.slice(0, 32), 'hex');
  return {
    addr: [...bytes.subarray(0, 4)].join('.'),
    port: bytes.readUInt32BE(4),
    offset: bytes.readBigUInt64BE(8),
  };
}

export interface GoMessageExt {
  storeSize: number;
  bodyCrc: number;
  queueId: number;
  flag: number;
  queueOffset: bigint;
  commitLogOffset: bigint;
  sysFlag: number;
  bornTimestamp: bigint;
  bornHost: string;
  storeTimestamp: bigint;
  storeHost: string;
  reconsumeTimes: number;
  body: Buffer;
  topic: string;
  properties: Map<string, string>;
  offsetMsgId: string;
  msgId: string;
}

const FLAG_BORN_HOST_V6 = 0x1 << 4;
const FLAG_STORE_HOST_V6 = 0x1 << 5;

/**
 * primitive.DecodeMessage: reads records back to back, skipping the magic (v1 layout only: one byte
 * of topic length), never checking the body CRC, reading properties with an int16 length and
 * splitting them on \u0002 and \u0001. MsgId is UNIQ_KEY when present, else the offset message id.
 */
export function goDecodeMessages(data: Buffer): GoMessageExt[] {
  const messages: GoMessageExt[] = [];
  let p = 0;
  for (let guard = 0; p < data.length && guard < 10_000; guard++) {
    const storeSize = data.readInt32BE(p);
    const bodyCrc = data.readInt32BE(p + 8);
    const queueId = data.readInt32BE(p + 12);
    const flag = data.readInt32BE(p + 16);
    const queueOffset = data.readBigInt64BE(p + 20);
    const commitLogOffset = data.readBigInt64BE(p + 28);
    const sysFlag = data.readInt32BE(p + 36);
    const bornTimestamp = data.readBigInt64BE(p + 40);
    p += 48;
    const host = (v6: boolean): { text: string; bytes: Buffer; port: number } => {
      const bytes = data.subarray(p, p + (v6 ? 16 : 4));
      p += bytes.length;
      const port = data.readInt32BE(p);
      p += 4;
      return { text: `${[...bytes].join('.')}:${port}`, bytes, port };
    };
    const born = host((sysFlag & FLAG_BORN_HOST_V6) !== 0);
    const storeTimestamp = data.readBigInt64BE(p);
    p += 8;
    const store = host((sysFlag & FLAG_STORE_HOST_V6) !== 0);
    const reconsumeTimes = data.readInt32BE(p);
    p += 4 + 8; // + preparedTransactionOffset
    const bodyLength = data.readInt32BE(p);
    p += 4;
    const body = data.subarray(p, p + bodyLength);
    p += bodyLength;
    const topicLength = data.readUInt8(p);
    const topic = data.toString('utf8', p + 1, p + 1 + topicLength);
    p += 1 + topicLength;
    const propertiesLength = data.readInt16BE(p);
    p += 2;
    const properties = new Map<string, string>();
    if (propertiesLength > 0) {
      for (const pair of data.toString('utf8', p, p + propertiesLength).split('\u0002')) {
        const kv = pair.split('\u0001');
        if (kv.length === 2) properties.set(kv[0] as string, kv[1] as string);
      }
      p += propertiesLength;
    }
    const id = Buffer.alloc(store.bytes.length + 12);
    store.bytes.copy(id, 0);
    id.writeInt32BE(store.port, store.bytes.length);
    id.writeBigInt64BE(commitLogOffset, store.bytes.length + 4);
    const offsetMsgId = id.toString('hex').toUpperCase();
    messages.push({
      storeSize,
      bodyCrc,
      queueId,
      flag,
      queueOffset,
      commitLogOffset,
      sysFlag,
      bornTimestamp,
      bornHost: born.text,
      storeTimestamp,
      storeHost: store.text,
      reconsumeTimes,
      body,
      topic,
      properties,
      offsetMsgId,
      msgId: properties.get('UNIQ_KEY') ?? offsetMsgId,
    });
  }
  return messages;
}

/**
 * internal/model.go heartbeatData as jsoniter writes it: clientID, producerDataSet and
 * consumerDataSet (utils.Set -> JSON arrays, "[]" when empty), subscription subVersion as a bare
 * int64 of nanoseconds (beyond 2^53), consumeType CONSUME_PASSIVELY, messageModel upper-cased.
 */
export function goHeartbeatBody(options: {
  clientId: string;
  producerGroups: string[];
  consumer?: { group: string; topics: string[]; subVersionNs: bigint; consumeFromWhere: string };
}): Buffer {
  const producers = options.producerGroups.map((group) => `{"groupName":${JSON.stringify(group)}}`).join(',');
  let consumers = '';
  if (options.consumer !== undefined) {
    const { group, topics, subVersionNs, consumeFromWhere } = options.consumer;
    const subscriptions = topics
      .map(
        (topic) =>
          `{"classFilterMode":false,"topic":${JSON.stringify(topic)},"subString":"*","tagsSet":[],"codeSet":[],` +
          `"subVersion":${subVersionNs.toString()},"expressionType":"TAG"}`,
      )
      .join(',');
    consumers =
      `{"groupName":${JSON.stringify(group)},"consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING",` +
      `"consumeFromWhere":${JSON.stringify(consumeFromWhere)},"subscriptionDataSet":[${subscriptions}],"unitMode":false}`;
  }
  return Buffer.from(
    `{"clientID":${JSON.stringify(options.clientId)},"producerDataSet":[${producers}],"consumerDataSet":[${consumers}]}`,
    'utf8',
  );
}

/** consumer.buildSysFlag(commitOffset, suspend, subscription, classFilter) */
export function goBuildSysFlag(
  commitOffset: boolean,
  suspend: boolean,
  subscription: boolean,
  classFilter: boolean,
): number {
  return (commitOffset ? 1 : 0) | (suspend ? 2 : 0) | (subscription ? 4 : 0) | (classFilter ? 8 : 0);
}

/**
 * internal/request.go PullMessageRequestHeader.Encode as the push consumer fills it (v2.1.x):
 * subscription "" unless PostSubscriptionWhenPull, subVersion 0, expressionType TAG and
 * suspendTimeoutMillis = (20 s / time.Millisecond). v2.0.x left suspendTimeoutMillis at 0.
 */
export function goPullHeader(options: {
  group: string;
  queue: GoMessageQueue;
  queueOffset: number;
  sysFlag: number;
  commitOffset: number;
  suspendTimeoutMillis: string;
}): Record<string, string> {
  return {
    consumerGroup: options.group,
    topic: options.queue.topic,
    queueId: String(options.queue.queueId),
    queueOffset: String(options.queueOffset),
    maxMsgNums: '32',
    sysFlag: String(options.sysFlag),
    commitOffset: String(options.commitOffset),
    suspendTimeoutMillis: options.suspendTimeoutMillis,
    subscription: '',
    subVersion: '0',
    expressionType: 'TAG',
  };
}

/** client.go processPullResponse + decodeCommandCustomHeader. */
export function goPullResult(response: RemotingCommand): {
  status: 'FOUND' | 'NO_NEW_MSG' | 'NO_MATCHED_MSG' | 'OFFSET_ILLEGAL';
  nextBeginOffset: number;
  minOffset: number;
  maxOffset: number;
  suggestWhichBrokerId: number;
  body: Buffer | undefined;
} {
  const statuses: Record<number, 'FOUND' | 'NO_NEW_MSG' | 'NO_MATCHED_MSG' | 'OFFSET_ILLEGAL'> = {
    0: 'FOUND',
    19: 'NO_NEW_MSG',
    20: 'NO_MATCHED_MSG',
    21: 'OFFSET_ILLEGAL',
  };
  const status = statuses[response.code];
  if (status === undefined)
    throw new Error(`unknown Response Code: ${response.code}, remark: ${response.remark ?? ''}`);
  return {
    status,
    nextBeginOffset: goParseInt(response.extFields['nextBeginOffset']),
    minOffset: goParseInt(response.extFields['minOffset']),
    maxOffset: goParseInt(response.extFields['maxOffset']),
    suggestWhichBrokerId: goParseInt(response.extFields['suggestWhichBrokerId']),
    body: response.body,
  };
}
