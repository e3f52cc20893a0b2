/**
 * Prometheus metrics for /metrics: the process's own (prom-client defaults) and, read at scrape
 * time, each broker's runtime figures through the engine client (GET_BROKER_RUNTIME_INFO), so the
 * same endpoint works embedded and in a gateway in front of a cluster.
 */
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { AdminClient } from '../../engine/client/index.js';
import { createLogger } from '../../engine/common/logger.js';

const log = createLogger('metrics');

/** Broker runtime fields exported as gauges: KVTable name -> metric name and help. */
const BROKER_GAUGES = [
  ['putMessageTimesTotal', 'rocketbridge_broker_put_messages_total', 'Messages stored since the broker started'],
  ['putMessageSizeTotal', 'rocketbridge_broker_put_bytes_total', 'Message bytes stored since the broker started'],
  ['msgGetTotalTodayNow', 'rocketbridge_broker_get_messages_total', 'Messages handed to consumers since start'],
  ['sendFailedTotal', 'rocketbridge_broker_send_failures_total', 'Sends answered with an error since start'],
  ['commitLogMinOffset', 'rocketbridge_commitlog_min_offset_bytes', 'First CommitLog byte still stored'],
  ['commitLogMaxOffset', 'rocketbridge_commitlog_max_offset_bytes', 'CommitLog bytes written'],
  ['commitLogFlushedOffset', 'rocketbridge_commitlog_flushed_offset_bytes', 'CommitLog bytes known to be on disk'],
  ['topicCount', 'rocketbridge_broker_topics', 'Topics configured on the broker'],
  ['consumerGroupCount', 'rocketbridge_broker_consumer_groups', 'Consumer groups with online members'],
  ['producerGroupCount', 'rocketbridge_broker_producer_groups', 'Producer groups with online members'],
] as const;

interface BrokerReading {
  labels: { cluster: string; broker: string; broker_id: string };
  /** The broker's runtime KVTable, or undefined when it did not answer. */
  info: Record<string, string> | undefined;
}

/** How long one reading of every broker serves the gauges of a scrape (they collect concurrently). */
const READING_REUSE_MS = 1000;

export function createMetricsRegistry(admin: AdminClient): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'rocketbridge_' });
  let reading: { atMs: number; brokers: Promise<BrokerReading[]> } | undefined;

  async function readBrokers(): Promise<BrokerReading[]> {
    let brokers: Awaited<ReturnType<AdminClient['brokers']>>;
    try {
      brokers = await admin.brokers();
    } catch (err) {
      log.warn({ err }, 'metrics: cannot list brokers');
      return [];
    }
    return Promise.all(
      brokers.map(async (broker) => {
        const labels = { cluster: broker.clusterName, broker: broker.brokerName, broker_id: String(broker.brokerId) };
        try {
          return { labels, info: await admin.brokerRuntimeInfo(broker.address) };
        } catch {
          return { labels, info: undefined };
        }
      }),
    );
  }

  function currentReading(): Promise<BrokerReading[]> {
    const now = Date.now();
    if (reading === undefined || now - reading.atMs > READING_REUSE_MS) {
      reading = { atMs: now, brokers: readBrokers() };
    }
    return reading.brokers;
  }

  /** A gauge per broker whose value is read from each broker's runtime info at scrape time. */
  function brokerGauge(name: string, help: string, valueOf: (reading: BrokerReading) => number | undefined): void {
    new Gauge({
      name,
      help,
      labelNames: ['cluster', 'broker', 'broker_id'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const broker of await currentReading()) {
          const value = valueOf(broker);
          if (value !== undefined && Number.isFinite(value)) this.set(broker.labels, value);
        }
      },
    });
  }

  brokerGauge('rocketbridge_broker_up', '1 when the broker answered the last scrape', (broker) =>
    broker.info === undefined ? 0 : 1,
  );
  brokerGauge(
    'rocketbridge_store_read_only',
    '1 when the broker store turned read-only after a write error',
    (broker) => (broker.info === undefined ? undefined : broker.info['storeReadOnly'] === 'true' ? 1 : 0),
  );
  for (const [field, name, help] of BROKER_GAUGES) {
    brokerGauge(name, help, (broker) => (broker.info === undefined ? undefined : Number(broker.info[field])));
  }
  return registry;
}
