/**
 * JSON bodies of the NameServer conversation, shared by the NameServer (which builds routes), the
 * broker (which registers) and clients (which read routes): TopicRouteData, ClusterInfo, TopicList,
 * RegisterBrokerBody. Owns their shapes, validation of what arrives, and the exact text we emit.
 *
 * RocketMQ serializes with fastjson, which writes a `HashMap<Long, String>` (brokerAddrs) with bare
 * numeric keys: `{0:"10.0.0.1:10911",1:"10.0.0.2:10911"}`. That is not JSON. The Go client reads
 * brokerAddrs by splitting that raw text on "," and ":" (route.go), so a quoted key `"1"` parses as
 * id 0 there and a slave would shadow its master. We therefore emit bare keys to clients that
 * expect fastjson's text (every language but JAVA, whose fastjson reads both forms) and standard
 * JSON with quoted keys otherwise; our decoders accept both.
 */
import { ErrorCode, RbError } from '../common/errors.js';

/** brokerId 0 is the master (MixAll.MASTER_ID). */
export const MASTER_ID = 0;

/** Topic permission bits (PermName). */
export const Perm = { Inherit: 1, Write: 2, Read: 4 } as const;

export interface QueueData {
  brokerName: string;
  readQueueNums: number;
  writeQueueNums: number;
  perm: number;
  topicSysFlag: number;
}

export interface BrokerData {
  cluster: string;
  brokerName: string;
  /** brokerId (decimal text) -> "ip:port"; "0" is the master. */
  brokerAddrs: Record<string, string>;
}

export interface TopicRouteData {
  orderTopicConf?: string;
  queueDatas: QueueData[];
  brokerDatas: BrokerData[];
  filterServerTable: Record<string, string[]>;
}

export interface ClusterInfo {
  brokerAddrTable: Record<string, BrokerData>;
  clusterAddrTable: Record<string, string[]>;
}

export interface TopicConfig {
  topicName: string;
  readQueueNums: number;
  writeQueueNums: number;
  perm: number;
  topicFilterType: string;
  topicSysFlag: number;
  order: boolean;
}

export interface DataVersion {
  timestamp: number;
  counter: number;
}

export interface RegisterBrokerBody {
  topicConfigSerializeWrapper: {
    topicConfigTable: Record<string, TopicConfig>;
    dataVersion: DataVersion;
  };
  filterServerList: string[];
}

export interface JsonStyle {
  /** Write brokerAddrs keys bare, as fastjson does (see the module comment). */
  bareBrokerIdKeys?: boolean;
}

/** Languages whose clients read a route with standard JSON (and also accept fastjson's text). */
const STRICT_JSON_LANGUAGES = new Set(['JAVA']);

/** The JSON style to answer a request from a client written in `language`. */
export function jsonStyleFor(language: string): JsonStyle {
  return { bareBrokerIdKeys: !STRICT_JSON_LANGUAGES.has(language) };
}

function stringifyBrokerAddrs(addrs: Record<string, string>, style: JsonStyle): string {
  const ids = Object.keys(addrs).sort((a, b) => Number(a) - Number(b));
  const entries = ids.map(
    (id) => `${style.bareBrokerIdKeys === true ? id : JSON.stringify(id)}:${JSON.stringify(addrs[id])}`,
  );
  return `{${entries.join(',')}}`;
}

function stringifyBrokerData(data: BrokerData, style: JsonStyle): string {
  return (
    `{"brokerAddrs":${stringifyBrokerAddrs(data.brokerAddrs, style)},` +
    `"brokerName":${JSON.stringify(data.brokerName)},"cluster":${JSON.stringify(data.cluster)}}`
  );
}

function stringifyQueueData(data: QueueData): string {
  // topicSynFlag is the 4.x field name (read by the Go client); topicSysFlag the 5.x one.
  return JSON.stringify({
    brokerName: data.brokerName,
    perm: data.perm,
    readQueueNums: data.readQueueNums,
    topicSynFlag: data.topicSysFlag,
    topicSysFlag: data.topicSysFlag,
    writeQueueNums: data.writeQueueNums,
  });
}

/** TopicRouteData as compact text with fastjson's field order. */
export function encodeTopicRouteData(route: TopicRouteData, style: JsonStyle = {}): Buffer {
  const parts = [
    `"brokerDatas":[${route.brokerDatas.map((data) => stringifyBrokerData(data, style)).join(',')}]`,
    `"filterServerTable":${JSON.stringify(route.filterServerTable)}`,
  ];
  if (route.orderTopicConf !== undefined) parts.push(`"orderTopicConf":${JSON.stringify(route.orderTopicConf)}`);
  parts.push(`"queueDatas":[${route.queueDatas.map(stringifyQueueData).join(',')}]`);
  return Buffer.from(`{${parts.join(',')}}`, 'utf8');
}

export function encodeClusterInfo(info: ClusterInfo, style: JsonStyle = {}): Buffer {
  const brokers = Object.entries(info.brokerAddrTable).map(
    ([name, data]) => `${JSON.stringify(name)}:${stringifyBrokerData(data, style)}`,
  );
  return Buffer.from(
    `{"brokerAddrTable":{${brokers.join(',')}},"clusterAddrTable":${JSON.stringify(info.clusterAddrTable)}}`,
    'utf8',
  );
}

export function encodeTopicList(topics: string[]): Buffer {
  return Buffer.from(JSON.stringify({ topicList: topics }), 'utf8');
}

export function encodeRegisterBrokerBody(body: RegisterBrokerBody): Buffer {
  return Buffer.from(JSON.stringify(body), 'utf8');
}

/**
 * Parses JSON that may carry fastjson's bare numeric object keys (`{0:"a"}`) by quoting them
 * outside string literals first.
 */
export function parseFastJson(text: string): unknown {
  let out = '';
  let inString = false;
  let escaped = false;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (inString) {
      out += ch;
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') {
      inString = true;
      expectKey = false;
      out += ch;
    } else if (ch === '{' || ch === ',') {
      expectKey = true;
      out += ch;
    } else if (expectKey && (ch === '-' || (ch >= '0' && ch <= '9'))) {
      let end = i + 1;
      while (end < text.length && (text[end] as string) >= '0' && (text[end] as string) <= '9') end++;
      let after = end;
      while (after < text.length && /\s/.test(text[after] as string)) after++;
      if (text[after] === ':') {
        out += `"${text.slice(i, end)}"`;
        i = end - 1;
      } else {
        out += ch;
      }
      expectKey = false;
    } else {
      if (!/\s/.test(ch)) expectKey = false;
      out += ch;
    }
  }
  return JSON.parse(out);
}

/** Sets an own property even for the key "__proto__", so a name from the network cannot swap prototypes. */
export function setOwn<T>(target: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function invalid(what: string, detail: string): never {
  throw new RbError(ErrorCode.MessageIllegal, `invalid ${what}: ${detail}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function intField(source: Record<string, unknown>, name: string, what: string, fallback?: number): number {
  const value = source[name];
  if (value === undefined || value === null) {
    if (fallback !== undefined) return fallback;
    invalid(what, `"${name}" is missing`);
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) invalid(what, `"${name}" is not an integer`);
  return value;
}

function stringField(source: Record<string, unknown>, name: string, what: string, fallback?: string): string {
  const value = source[name];
  if (value === undefined || value === null) {
    if (fallback !== undefined) return fallback;
    invalid(what, `"${name}" is missing`);
  }
  if (typeof value !== 'string') invalid(what, `"${name}" is not a string`);
  return value;
}

function parseBody(body: Buffer | undefined, what: string): Record<string, unknown> {
  if (body === undefined || body.length === 0) invalid(what, 'the body is empty');
  let parsed: unknown;
  try {
    parsed = parseFastJson(body.toString('utf8'));
  } catch (err) {
    invalid(what, err instanceof Error ? err.message : String(err));
  }
  if (!isObject(parsed)) invalid(what, 'the body is not a JSON object');
  return parsed;
}

function decodeBrokerData(value: unknown, what: string): BrokerData {
  if (!isObject(value)) invalid(what, 'a brokerData is not an object');
  const addrs = value['brokerAddrs'];
  const brokerAddrs: Record<string, string> = {};
  if (isObject(addrs)) {
    for (const [id, addr] of Object.entries(addrs)) {
      if (!/^-?\d+$/.test(id) || typeof addr !== 'string')
        invalid(what, `brokerAddrs entry ${id} is not id -> "ip:port"`);
      setOwn(brokerAddrs, String(Number(id)), addr);
    }
  } else if (addrs !== undefined && addrs !== null) {
    invalid(what, 'brokerAddrs is not an object');
  }
  return {
    cluster: stringField(value, 'cluster', what, ''),
    brokerName: stringField(value, 'brokerName', what),
    brokerAddrs,
  };
}

/** Parses a GET_ROUTEINFO_BY_TOPIC body (standard JSON or fastjson text). Throws RbError. */
export function decodeTopicRouteData(body: Buffer | undefined): TopicRouteData {
  const what = 'TopicRouteData';
  const raw = parseBody(body, what);
  const queueDatas = Array.isArray(raw['queueDatas']) ? (raw['queueDatas'] as unknown[]) : [];
  const brokerDatas = Array.isArray(raw['brokerDatas']) ? (raw['brokerDatas'] as unknown[]) : [];
  const route: TopicRouteData = {
    queueDatas: queueDatas.map((entry) => {
      if (!isObject(entry)) invalid(what, 'a queueData is not an object');
      const sysFlag = entry['topicSysFlag'] ?? entry['topicSynFlag'];
      return {
        brokerName: stringField(entry, 'brokerName', what),
        readQueueNums: intField(entry, 'readQueueNums', what),
        writeQueueNums: intField(entry, 'writeQueueNums', what),
        perm: intField(entry, 'perm', what),
        topicSysFlag: typeof sysFlag === 'number' ? sysFlag : 0,
      };
    }),
    brokerDatas: brokerDatas.map((entry) => decodeBrokerData(entry, what)),
    filterServerTable: {},
  };
  const filters = raw['filterServerTable'];
  if (isObject(filters)) {
    for (const [addr, list] of Object.entries(filters)) {
      if (Array.isArray(list))
        setOwn(
          route.filterServerTable,
          addr,
          list.filter((x): x is string => typeof x === 'string'),
        );
    }
  }
  if (typeof raw['orderTopicConf'] === 'string') route.orderTopicConf = raw['orderTopicConf'];
  return route;
}

/** Parses a GET_BROKER_CLUSTER_INFO body. Throws RbError. */
export function decodeClusterInfo(body: Buffer | undefined): ClusterInfo {
  const what = 'ClusterInfo';
  const raw = parseBody(body, what);
  const info: ClusterInfo = { brokerAddrTable: {}, clusterAddrTable: {} };
  const brokers = raw['brokerAddrTable'];
  if (isObject(brokers)) {
    for (const [name, data] of Object.entries(brokers))
      setOwn(info.brokerAddrTable, name, decodeBrokerData(data, what));
  }
  const clusters = raw['clusterAddrTable'];
  if (isObject(clusters)) {
    for (const [cluster, names] of Object.entries(clusters)) {
      if (Array.isArray(names))
        setOwn(
          info.clusterAddrTable,
          cluster,
          names.filter((x): x is string => typeof x === 'string'),
        );
    }
  }
  return info;
}

/** Parses a TopicList body ({topicList:[...]}). Throws RbError. */
export function decodeTopicList(body: Buffer | undefined): string[] {
  const raw = parseBody(body, 'TopicList');
  const list = raw['topicList'];
  if (!Array.isArray(list)) invalid('TopicList', '"topicList" is not an array');
  return list.filter((x): x is string => typeof x === 'string');
}

function decodeTopicConfig(key: string, value: unknown): TopicConfig {
  const what = `topic config "${key}"`;
  if (!isObject(value)) invalid(what, 'not an object');
  const perm = intField(value, 'perm', what, Perm.Read | Perm.Write);
  if (perm < 0 || perm > 7) invalid(what, `perm ${perm} is not 0-7`);
  const readQueueNums = intField(value, 'readQueueNums', what);
  const writeQueueNums = intField(value, 'writeQueueNums', what);
  if (readQueueNums < 0 || writeQueueNums < 0) invalid(what, 'queue counts must not be negative');
  const order = value['order'];
  return {
    topicName: stringField(value, 'topicName', what, key),
    readQueueNums,
    writeQueueNums,
    perm,
    topicFilterType: stringField(value, 'topicFilterType', what, 'SINGLE_TAG'),
    topicSysFlag: intField(value, 'topicSysFlag', what, 0),
    order: order === true,
  };
}

/**
 * Parses an uncompressed REGISTER_BROKER body. Unknown fields are ignored; a missing wrapper means
 * "no topics", as RocketMQ treats an empty body. Throws RbError with the offending field.
 */
export function decodeRegisterBrokerBody(body: Buffer | undefined): RegisterBrokerBody {
  const result: RegisterBrokerBody = {
    topicConfigSerializeWrapper: { topicConfigTable: {}, dataVersion: { timestamp: 0, counter: 0 } },
    filterServerList: [],
  };
  if (body === undefined || body.length === 0) return result;
  const what = 'RegisterBrokerBody';
  const raw = parseBody(body, what);
  const wrapper = raw['topicConfigSerializeWrapper'];
  if (isObject(wrapper)) {
    const table = wrapper['topicConfigTable'];
    if (isObject(table)) {
      for (const [key, value] of Object.entries(table)) {
        const config = decodeTopicConfig(key, value);
        setOwn(result.topicConfigSerializeWrapper.topicConfigTable, config.topicName, config);
      }
    } else if (table !== undefined && table !== null) {
      invalid(what, 'topicConfigTable is not an object');
    }
    const version = wrapper['dataVersion'];
    if (isObject(version)) {
      result.topicConfigSerializeWrapper.dataVersion = {
        timestamp: intField(version, 'timestamp', what, 0),
        counter: intField(version, 'counter', what, 0),
      };
    }
  } else if (wrapper !== undefined && wrapper !== null) {
    invalid(what, 'topicConfigSerializeWrapper is not an object');
  }
  const filters = raw['filterServerList'];
  if (Array.isArray(filters)) result.filterServerList = filters.filter((x): x is string => typeof x === 'string');
  return result;
}
