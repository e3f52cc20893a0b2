/* global WebSocket, setTimeout, clearTimeout, setInterval, clearInterval, TextEncoder, TextDecoder, atob, btoa */
/**
 * rocketbridge browser client: a dependency-free ES module for the WebSocket API at /ws
 * (docs/websocket.md). Reconnects with backoff and resubscribes after a reconnect; keeps each
 * subscription's credit topped up as messages are settled (autoCredit), so the server never sends
 * more than `credit` unsettled messages.
 *
 *   import { RocketBridgeClient } from '/client/rocketbridge-client.js';
 *   const client = new RocketBridgeClient('ws://localhost:8080/ws');
 *   await client.connect();
 *   await client.subscribe({ topic: 'Orders', tag: 'created' }, (message) => { ...; message.ack(); });
 *   await client.produce({ topic: 'Orders', tag: 'created', body: 'hello' });
 */

/**
 * @typedef {object} ClientOptions
 * @property {string} [token] Sent in `hello`.
 * @property {string} [username] Sent in `hello` with `password`.
 * @property {string} [password]
 * @property {boolean} [reconnect] Reconnect after a lost connection (default true).
 * @property {number} [minReconnectDelayMs] First reconnect delay (default 250), doubled up to maxReconnectDelayMs.
 * @property {number} [maxReconnectDelayMs] Default 10000.
 * @property {number} [requestTimeoutMs] How long a request waits for its answer (default 10000).
 * @property {number} [heartbeatMs] Ping interval; a connection without a pong for two intervals is reopened (default 20000).
 */

/**
 * @typedef {object} SubscribeOptions
 * @property {string} topic
 * @property {string} [tag] Tag expression (default `*`).
 * @property {string} [group] Shared consumer group; a private group when omitted.
 * @property {'last'|'first'|'timestamp'|'offset'} [from]
 * @property {number} [timestamp]
 * @property {number} [offset]
 * @property {number} [credit] Window of unsettled messages (default 100).
 * @property {boolean} [autoCredit] Grant credit back as messages are settled (default true).
 * @property {boolean} [autoAck] Ack each message after the handler returns (default false).
 * @property {number} [ackTimeoutMs]
 * @property {'auto'|'base64'|'binary'} [bodyEncoding]
 */

/**
 * @typedef {object} ProduceOptions
 * @property {string} topic
 * @property {string} [tag]
 * @property {string[]} [keys]
 * @property {Record<string, string>} [properties]
 * @property {string|Uint8Array|ArrayBuffer} body Text is sent as JSON `body`; bytes as a binary frame.
 * @property {number} [delayMs]
 * @property {number} [deliverAt]
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An error frame from the server, or a local failure (code RB_WS_CLIENT_*). */
export class RocketBridgeError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = 'RocketBridgeError';
    this.code = code;
  }
}

/** Splits a binary frame: uint32 big-endian header length, JSON header, body bytes. */
function decodeBinary(/** @type {ArrayBuffer} */ buffer) {
  const view = new DataView(buffer);
  const headerBytes = view.getUint32(0);
  const header = JSON.parse(decoder.decode(new Uint8Array(buffer, 4, headerBytes)));
  return { header, body: new Uint8Array(buffer, 4 + headerBytes) };
}

function encodeBinary(/** @type {object} */ header, /** @type {Uint8Array} */ body) {
  const json = encoder.encode(JSON.stringify(header));
  const frame = new Uint8Array(4 + json.length + body.length);
  new DataView(frame.buffer).setUint32(0, json.length);
  frame.set(json, 4);
  frame.set(body, 4 + json.length);
  return frame;
}

function base64ToBytes(/** @type {string} */ text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function bytesToBase64(/** @type {Uint8Array} */ bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
  return btoa(binary);
}

/** One subscription; survives reconnects (it is subscribed again under the same id). */
export class Subscription {
  constructor(client, id, options, handler) {
    this.client = client;
    this.id = id;
    this.options = options;
    this.handler = handler;
    this.active = true;
    this.settledSinceGrant = 0;
  }

  /** Stops the subscription; unsettled messages go back to the group. */
  async unsubscribe() {
    this.active = false;
    this.client.subscriptions.delete(this.id);
    if (this.client.isOpen) await this.client.request({ type: 'unsubscribe', subscriptionId: this.id });
  }

  /** Grants `credit` more messages (only needed with autoCredit false). */
  grant(credit) {
    this.client.sendJson({ type: 'credit', subscriptionId: this.id, credit });
  }

  settled() {
    if (this.options.autoCredit === false || !this.active) return;
    this.settledSinceGrant++;
    const window = this.options.credit ?? 100;
    if (this.settledSinceGrant >= Math.max(1, Math.floor(window / 2))) {
      this.grant(this.settledSinceGrant);
      this.settledSinceGrant = 0;
    }
  }
}

export class RocketBridgeClient {
  /**
   * @param {string} url e.g. `ws://host:8080/ws`
   * @param {ClientOptions} [options]
   */
  constructor(url, options = {}) {
    this.url = url;
    this.options = options;
    /** @type {Map<string, Subscription>} */
    this.subscriptions = new Map();
    this.pending = new Map();
    this.listeners = new Map();
    this.nextRequestId = 1;
    this.nextSubscription = 1;
    this.socket = undefined;
    this.isOpen = false;
    this.closedByUser = false;
    this.reconnectDelayMs = options.minReconnectDelayMs ?? 250;
    this.reconnectTimer = undefined;
    this.heartbeatTimer = undefined;
    this.lastPongMs = 0;
    this.welcome = undefined;
  }

  /**
   * Listens for `open` (welcome frame), `close` ({code, reason}), `reconnecting` ({delayMs}),
   * `error` (RocketBridgeError frames not tied to a request).
   */
  on(event, listener) {
    const list = this.listeners.get(event) ?? [];
    list.push(listener);
    this.listeners.set(event, list);
    return this;
  }

  emit(event, value) {
    for (const listener of this.listeners.get(event) ?? []) listener(value);
  }

  /** Opens the connection and says hello; resolves with the welcome frame. */
  connect() {
    this.closedByUser = false;
    return this.open();
  }

  open() {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url);
      socket.binaryType = 'arraybuffer';
      this.socket = socket;
      let welcomed = false;
      socket.onopen = () => {
        const hello = { type: 'hello' };
        if (this.options.token !== undefined) hello.token = this.options.token;
        if (this.options.username !== undefined) {
          hello.username = this.options.username;
          hello.password = this.options.password ?? '';
        }
        this.isOpen = true;
        this.request(hello).then(
          (welcome) => {
            welcomed = true;
            this.welcome = welcome;
            this.reconnectDelayMs = this.options.minReconnectDelayMs ?? 250;
            this.startHeartbeat();
            this.resubscribe();
            this.emit('open', welcome);
            resolve(welcome);
          },
          (err) => reject(err),
        );
      };
      socket.onmessage = (event) => this.onFrame(event.data);
      socket.onclose = (event) => {
        this.isOpen = false;
        this.stopHeartbeat();
        for (const { reject: fail, timer } of this.pending.values()) {
          clearTimeout(timer);
          fail(new RocketBridgeError('RB_WS_CLIENT_CLOSED', `connection closed (${event.code})`));
        }
        this.pending.clear();
        this.emit('close', { code: event.code, reason: event.reason });
        if (!welcomed) reject(new RocketBridgeError('RB_WS_CLIENT_CLOSED', `connection closed (${event.code})`));
        if (!this.closedByUser && this.options.reconnect !== false) this.scheduleReconnect();
      };
    });
  }

  scheduleReconnect() {
    const delayMs = this.reconnectDelayMs;
    this.reconnectDelayMs = Math.min(delayMs * 2, this.options.maxReconnectDelayMs ?? 10000);
    this.emit('reconnecting', { delayMs });
    this.reconnectTimer = setTimeout(() => {
      this.open().catch(() => undefined);
    }, delayMs);
  }

  startHeartbeat() {
    const everyMs = this.options.heartbeatMs ?? 20000;
    this.lastPongMs = Date.now();
    this.heartbeatTimer = setInterval(() => {
      if (Date.now() - this.lastPongMs > 2 * everyMs) {
        this.socket?.close(4000, 'heartbeat timeout');
        return;
      }
      this.request({ type: 'ping' }).then(
        () => (this.lastPongMs = Date.now()),
        () => undefined,
      );
    }, everyMs);
  }

  stopHeartbeat() {
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  resubscribe() {
    for (const subscription of this.subscriptions.values()) {
      subscription.settledSinceGrant = 0;
      this.request(this.subscribeFrame(subscription)).catch((err) => this.emit('error', err));
    }
  }

  subscribeFrame(subscription) {
    const { options } = subscription;
    const frame = {
      type: 'subscribe',
      subscriptionId: subscription.id,
      topic: options.topic,
      credit: options.credit ?? 100,
    };
    for (const name of ['tag', 'group', 'from', 'timestamp', 'offset', 'ackTimeoutMs', 'bodyEncoding']) {
      if (options[name] !== undefined) frame[name] = options[name];
    }
    return frame;
  }

  /** Closes for good (no reconnect). */
  close() {
    this.closedByUser = true;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.socket?.close(1000, 'bye');
  }

  sendJson(frame) {
    if (!this.isOpen) throw new RocketBridgeError('RB_WS_CLIENT_CLOSED', 'not connected');
    this.socket.send(JSON.stringify(frame));
  }

  /** Sends a frame with a requestId; resolves with the answer, rejects with RocketBridgeError. */
  request(frame, binaryBody) {
    return new Promise((resolve, reject) => {
      if (!this.isOpen) {
        reject(new RocketBridgeError('RB_WS_CLIENT_CLOSED', 'not connected'));
        return;
      }
      const requestId = `c${this.nextRequestId++}`;
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new RocketBridgeError('RB_WS_CLIENT_TIMEOUT', `${frame.type} got no answer`));
      }, this.options.requestTimeoutMs ?? 10000);
      this.pending.set(requestId, { resolve, reject, timer });
      const withId = { ...frame, requestId };
      if (binaryBody !== undefined) this.socket.send(encodeBinary(withId, binaryBody));
      else this.socket.send(JSON.stringify(withId));
    });
  }

  /**
   * Produces a message; resolves once the broker stored it: {msgId, queueId, queueOffset, status}.
   * @param {ProduceOptions} message
   */
  produce(message) {
    const { body, ...rest } = message;
    const frame = { type: 'produce', ...rest };
    if (typeof body === 'string') return this.request({ ...frame, body });
    const bytes = body instanceof Uint8Array ? body : new Uint8Array(body);
    return this.request(frame, bytes);
  }

  /**
   * Subscribes; `handler(message)` gets each message with `ack()`, `nack(delayMs)`, `text()` and
   * `bytes()`. Resolves with the Subscription once the server confirmed it.
   * @param {SubscribeOptions} options
   * @param {(message: any) => unknown} handler
   */
  async subscribe(options, handler) {
    const id = `b${this.nextSubscription++}`;
    const subscription = new Subscription(this, id, options, handler);
    this.subscriptions.set(id, subscription);
    try {
      await this.request(this.subscribeFrame(subscription));
    } catch (err) {
      this.subscriptions.delete(id);
      throw err;
    }
    return subscription;
  }

  onFrame(data) {
    if (typeof data !== 'string') {
      const { header, body } = decodeBinary(data);
      this.onMessage(header, body);
      return;
    }
    const frame = JSON.parse(data);
    if (frame.type === 'message') {
      const body = frame.bodyBase64 !== undefined ? base64ToBytes(frame.bodyBase64) : encoder.encode(frame.body ?? '');
      this.onMessage(frame, body);
      return;
    }
    const waiting = frame.requestId !== undefined ? this.pending.get(frame.requestId) : undefined;
    if (waiting !== undefined) {
      this.pending.delete(frame.requestId);
      clearTimeout(waiting.timer);
      if (frame.type === 'error') waiting.reject(new RocketBridgeError(frame.code, frame.message));
      else waiting.resolve(frame);
      return;
    }
    if (frame.type === 'error') this.emit('error', new RocketBridgeError(frame.code, frame.message));
  }

  onMessage(header, body) {
    const subscription = this.subscriptions.get(header.subscriptionId);
    if (subscription === undefined) return;
    let settled = false;
    const settle = (frame) => {
      if (settled) return;
      settled = true;
      if (this.isOpen) this.sendJson(frame);
      subscription.settled();
    };
    const message = {
      ...header,
      bytes: () => body,
      text: () => (header.body !== undefined ? header.body : decoder.decode(body)),
      ack: () => settle({ type: 'ack', messageId: header.messageId }),
      nack: (delayMs = 0) => settle({ type: 'nack', messageId: header.messageId, delayMs }),
    };
    Promise.resolve()
      .then(() => subscription.handler(message))
      .then(
        () => {
          if (subscription.options.autoAck === true) message.ack();
        },
        (err) => {
          this.emit('error', err);
          message.nack();
        },
      );
  }
}
