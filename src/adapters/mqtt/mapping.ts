/**
 * MQTT topic names and filters <-> the engine's canonical message (design.md section 3). Pure
 * functions only; the server, the delivery paths and the stores use them.
 *
 * Names: MQTT `a/b/c` is engine topic `a` with tag `b.c`. The MQTT name is also kept verbatim in
 * the `mqtt.topic` property, so an MQTT-originated message comes back under exactly the name it was
 * published with. A message produced by another protocol (no `mqtt.topic`) reaches MQTT as
 * `topic/tag-words-joined-with-slashes`, or just `topic` when it has no tag.
 *
 * Escaping (documented in docs/mqtt.md as well):
 * - First level -> engine topic. RocketMQ allows letters, digits, `%`, `-`, `_`, `|`; every other
 *   character, and `%` and `|` themselves, becomes `%HH` per UTF-8 byte (upper-case hex). An empty
 *   first level (`/a`) becomes the topic `%`. A result over 127 characters cannot map and is refused.
 * - Other levels -> tag words. `.` separates words, so `.`, `%`, `|`, `*`, `#`, whitespace and
 *   control characters inside a level become `%HH`; everything else stays as it is.
 * - Going back, only upper-case `%HH` runs that decode to valid UTF-8 are decoded; anything else,
 *   or a decoded text that would not be a valid MQTT topic level, is shown as stored (with `+`,
 *   `#` and NUL escaped so the result is a legal MQTT topic name).
 *
 * Reserved properties: the `mqtt.` namespace (`mqtt.topic`, `mqtt.qos`, `mqtt.empty`, `mqtt.key`). Other protocols may read
 * them; a `mqtt.topic` that does not map to the message's own engine topic is ignored.
 */
import { ErrorCode, RbError } from '../../engine/common/errors.js';
import { TOPIC_MAX_LENGTH } from '../../engine/common/limits.js';

/** Properties the MQTT front end writes (the reserved `mqtt.` namespace). */
export const MqttProperty = {
  /** The MQTT topic name exactly as published. */
  Topic: 'mqtt.topic',
  /** The QoS the publisher used (0, 1 or 2). */
  Qos: 'mqtt.qos',
  /** `1` when the MQTT payload was empty: the engine refuses empty bodies, so one placeholder byte is stored. */
  Empty: 'mqtt.empty',
} as const;

/** The body stored for an empty MQTT payload (with `mqtt.empty` = `1`). */
const EMPTY_PLACEHOLDER = Buffer.from([0]);

/** The engine body and extra properties of an MQTT payload. */
export function engineBodyOf(payload: Buffer): { body: Buffer; properties: Record<string, string> } {
  if (payload.length > 0) return { body: payload, properties: {} };
  return { body: EMPTY_PLACEHOLDER, properties: { [MqttProperty.Empty]: '1' } };
}

/**
 * Empty-body markers of every front end (AMQP `amqp.empty-body`, WebSocket `ws.empty`, ours): each
 * stores one placeholder byte for an empty body, so an empty body from any of them arrives empty.
 */
const EMPTY_MARKERS = [MqttProperty.Empty, 'amqp.empty-body', 'ws.empty'] as const;

/** The MQTT payload of a stored body. */
export function mqttPayloadOf(body: Buffer, properties: Record<string, string>): Buffer {
  return EMPTY_MARKERS.some((name) => properties[name] === '1') ? Buffer.alloc(0) : body;
}

/** Reserved property namespace of the MQTT front end. */
export const MQTT_PROPERTY_PREFIX = 'mqtt.';

/** QoS given to messages produced by other protocols (they are stored, so at least once). */
export const FOREIGN_MESSAGE_QOS = 1;

/** The longest MQTT topic name or filter accepted, in UTF-8 bytes (two copies go into the properties). */
export const MAX_MQTT_TOPIC_BYTES = 8192;

/** The shared-subscription prefix (MQTT 5 `$share/<group>/<filter>`, accepted on 3.1.1 too). */
export const SHARE_PREFIX = '$share/';

export type Qos = 0 | 1 | 2;

/** Where an MQTT topic name lives in the engine. */
export interface EngineAddress {
  topic: string;
  /** Undefined for a one-level MQTT name. */
  tag: string | undefined;
}

/** A filter as the engine sees it: one topic (or every topic) and a tag expression. */
export interface EngineFilter {
  /** Undefined when the first level is a wildcard: the filter spans topics. */
  topic: string | undefined;
  /**
   * A tag expression the broker can evaluate; it may match more than the MQTT filter (never less),
   * so deliveries are checked against the MQTT filter as well.
   */
  tagExpression: string;
}

export interface SharedFilter {
  group: string;
  filter: string;
}

const TOPIC_SAFE = /^[A-Za-z0-9_-]$/;
/** A whole first level that needs no escaping: the common case, tested once instead of per character. */
const TOPIC_ALL_SAFE = /^[A-Za-z0-9_-]+$/;
const ESCAPE_RUN = /(?:%[0-9A-F]{2})+/g;
// Control characters are what these patterns are for: MQTT discourages them and the engine's
// property encoding uses U+0001/U+0002 as separators.
/* eslint-disable no-control-regex */
const TAG_UNSAFE = /[.%|*#\s\u0000-\u001f\u007f]/u;
const CONTROL = /[\u0000-\u001f]/u;
/** What may not appear in an MQTT level we build: a separator, wildcards, NUL. */
const NOT_IN_LEVEL = /[/+#\u0000]/u;
const WILDCARD_OR_NUL = /[+#\u0000]/gu;
/* eslint-enable no-control-regex */

function percentBytes(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  return out;
}

/** Decodes upper-case `%HH` runs; undefined when a run is not valid UTF-8. */
function percentDecode(text: string): string | undefined {
  let ok = true;
  const decoded = text.replace(ESCAPE_RUN, (run) => {
    const bytes = Buffer.from(run.replaceAll('%', ''), 'hex');
    const value = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
    if (value.includes('\uFFFD') || !Buffer.from(value, 'utf8').equals(bytes)) ok = false;
    return value;
  });
  return ok ? decoded : undefined;
}

/** The engine topic for an MQTT first level. Throws RB_ERR_TOPIC_INVALID when it cannot map. */
export function escapeTopicLevel(level: string): string {
  if (level.length === 0) return '%';
  if (level.length <= TOPIC_MAX_LENGTH && TOPIC_ALL_SAFE.test(level)) return level;
  let out = '';
  for (const ch of level) out += TOPIC_SAFE.test(ch) ? ch : percentBytes(ch);
  if (out.length > TOPIC_MAX_LENGTH) {
    throw new RbError(
      ErrorCode.TopicInvalid,
      `first topic level "${level.slice(0, 40)}" maps to more than ${TOPIC_MAX_LENGTH} characters`,
    );
  }
  return out;
}

/** The MQTT first level for an engine topic (the inverse of escapeTopicLevel, lenient on foreign names). */
export function unescapeTopicLevel(topic: string): string {
  if (topic === '%') return '';
  const decoded = percentDecode(topic);
  if (decoded === undefined || NOT_IN_LEVEL.test(decoded)) return safeLevels(topic);
  return decoded;
}

/** One MQTT level as a tag word. */
export function escapeTagWord(level: string): string {
  if (!TAG_UNSAFE.test(level)) return level;
  let out = '';
  for (const ch of level) out += TAG_UNSAFE.test(ch) ? percentBytes(ch) : ch;
  return out;
}

/** A tag word as MQTT levels: decoded when clean, else as stored (a `/` in a foreign tag adds a level). */
export function unescapeTagWord(word: string): string {
  const decoded = percentDecode(word);
  if (decoded === undefined || NOT_IN_LEVEL.test(decoded)) return safeLevels(word);
  return decoded;
}

/** Escapes what may not appear in an MQTT topic name (wildcards, NUL). */
function safeLevels(text: string): string {
  return text.replace(WILDCARD_OR_NUL, (ch) => percentBytes(ch));
}

/** Why an MQTT topic name may not be published to, or undefined when it is fine. */
export function publishTopicProblem(name: string): string | undefined {
  if (name.length === 0) return 'topic name is empty [MQTT-4.7.3-1]';
  if (name.includes('+') || name.includes('#')) return 'wildcards are not allowed in a topic name [MQTT-3.3.2-2]';
  if (CONTROL.test(name)) return 'topic name contains a control character [MQTT-1.5.3-2]';
  if (Buffer.byteLength(name, 'utf8') > MAX_MQTT_TOPIC_BYTES) {
    return `topic name is longer than ${MAX_MQTT_TOPIC_BYTES} bytes`;
  }
  if (name.startsWith('$')) return 'topics starting with $ are reserved to the server [MQTT-4.7.2-1]';
  const slash = name.indexOf('/');
  const first = slash < 0 ? name : name.slice(0, slash);
  try {
    escapeTopicLevel(first);
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

/** Why a topic filter is invalid, or undefined when it is fine ([MQTT-4.7.1-2], [MQTT-4.7.1-3]). */
export function filterProblem(filter: string): string | undefined {
  if (filter.length === 0) return 'topic filter is empty [MQTT-4.7.3-1]';
  if (CONTROL.test(filter)) return 'topic filter contains a control character [MQTT-1.5.3-2]';
  if (Buffer.byteLength(filter, 'utf8') > MAX_MQTT_TOPIC_BYTES) {
    return `topic filter is longer than ${MAX_MQTT_TOPIC_BYTES} bytes`;
  }
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      return '# must be a whole level and the last one [MQTT-4.7.1-2]';
    }
    if (level.includes('+') && level !== '+') return '+ must be a whole level [MQTT-4.7.1-3]';
  }
  const first = levels[0] as string;
  if (first !== '+' && first !== '#') {
    try {
      escapeTopicLevel(first);
    } catch (err) {
      return (err as Error).message;
    }
  }
  return undefined;
}

/** Splits `$share/<group>/<filter>`; undefined for an ordinary filter. Throws on a malformed share. */
export function parseSharedFilter(filter: string): SharedFilter | undefined {
  if (!filter.startsWith(SHARE_PREFIX)) return undefined;
  const rest = filter.slice(SHARE_PREFIX.length);
  const slash = rest.indexOf('/');
  const group = slash < 0 ? rest : rest.slice(0, slash);
  const inner = slash < 0 ? '' : rest.slice(slash + 1);
  if (group.length === 0 || /[+#]/u.test(group)) {
    throw new RbError(ErrorCode.SubscriptionInvalid, `shared subscription "${filter}" has an invalid group name`);
  }
  const problem = filterProblem(inner);
  if (problem !== undefined) {
    throw new RbError(ErrorCode.SubscriptionInvalid, `shared subscription "${filter}": ${problem}`);
  }
  return { group, filter: inner };
}

/** The engine topic and tag of an MQTT topic name (validated with publishTopicProblem first). */
export function toEngineAddress(name: string): EngineAddress {
  const levels = name.split('/');
  const topic = escapeTopicLevel(levels[0] as string);
  if (levels.length === 1) return { topic, tag: undefined };
  return { topic, tag: levels.slice(1).map(escapeTagWord).join('.') };
}

/** The MQTT topic name of a message produced by another protocol. */
export function mqttNameOf(topic: string, tag: string | undefined): string {
  const first = unescapeTopicLevel(topic);
  if (tag === undefined || tag.length === 0) return first;
  return first + '/' + tag.split('.').map(unescapeTagWord).join('/');
}

/**
 * The MQTT topic name of a stored message: its `mqtt.topic` when that maps to the message's engine
 * topic (and is a valid name), else the name built from topic and tag.
 */
export function mqttNameOfMessage(topic: string, tag: string | undefined, properties: Record<string, string>): string {
  const kept = properties[MqttProperty.Topic];
  if (kept !== undefined && publishTopicProblem(kept) === undefined && toEngineAddress(kept).topic === topic) {
    return kept;
  }
  return mqttNameOf(topic, tag);
}

/** The QoS a stored message was published with (foreign messages count as QoS 1). */
export function qosOfMessage(properties: Record<string, string>): Qos {
  const text = properties[MqttProperty.Qos];
  return text === '0' ? 0 : text === '2' ? 2 : text === '1' ? 1 : FOREIGN_MESSAGE_QOS;
}

/** The engine's view of a (valid, non-shared) MQTT filter. */
export function toEngineFilter(filter: string): EngineFilter {
  const levels = filter.split('/');
  const first = levels[0] as string;
  const topic = first === '+' || first === '#' ? undefined : escapeTopicLevel(first);
  if (first === '#') return { topic, tagExpression: '*' };
  const rest = levels.slice(1);
  // `a` alone matches only untagged messages, which no tag expression names: take all, filter here.
  if (rest.length === 0 || (rest.length === 1 && rest[0] === '#')) return { topic, tagExpression: '*' };
  const words = rest.map((level) => (level === '+' ? '*' : level === '#' ? '#' : escapeTagWord(level)));
  // Empty words cannot be written in a tag expression; the broad one plus MQTT matching is exact.
  if (words.some((word) => word.length === 0)) return { topic, tagExpression: '*' };
  return { topic, tagExpression: words.join('.') };
}

/** Whether an engine topic may match a filter's first level. */
export function filterCoversTopic(filter: string, engineTopic: string): boolean {
  const slash = filter.indexOf('/');
  const first = slash < 0 ? filter : filter.slice(0, slash);
  if (first === '+' || first === '#') return true;
  return escapeTopicLevel(first) === engineTopic;
}

/**
 * MQTT topic matching ([MQTT-4.7.1]): `+` is one level, `#` the rest (including the parent), and
 * a filter starting with a wildcard does not match names starting with `$` ([MQTT-4.7.2-1]).
 */
export function matchesFilter(filter: string, name: string): boolean {
  if (name.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false;
  const f = filter.split('/');
  const n = name.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= n.length) return false;
    if (level !== '+' && level !== n[i]) return false;
  }
  return f.length === n.length;
}
