/**
 * The dashboard at `/dashboard`: one self-contained page that polls /api/overview and shows the listeners,
 * brokers with their runtime figures, and topics.
 */
import type { AdminClient, BrokerSummary } from '../../engine/client/index.js';

export interface Listener {
  protocol: string;
  address: string;
}

export interface Overview {
  listeners: Listener[];
  brokers: (BrokerSummary & { runtime?: Record<string, string>; error?: string })[];
  topics: string[];
}

/** System topics are hidden from the dashboard's topic list. */
const SYSTEM_TOPIC =
  /^(%RETRY%|%DLQ%|RMQ_SYS_|RB_SYS_|RB_MQTT_|SCHEDULE_TOPIC_XXXX$|TBW102$|SELF_TEST_TOPIC$|rmq_sys_)/;

export async function readOverview(admin: AdminClient, listeners: Listener[]): Promise<Overview> {
  const [brokers, topics] = await Promise.all([admin.brokers(), admin.fetchAllTopicList()]);
  const clusterNames = new Set(brokers.flatMap((broker) => [broker.clusterName, broker.brokerName]));
  return {
    listeners,
    brokers: await Promise.all(
      brokers.map(async (broker) => {
        try {
          return { ...broker, runtime: await admin.brokerRuntimeInfo(broker.address) };
        } catch (err) {
          return { ...broker, error: err instanceof Error ? err.message : String(err) };
        }
      }),
    ),
    topics: topics.filter((topic) => !SYSTEM_TOPIC.test(topic) && !clusterNames.has(topic)).sort(),
  };
}

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rocketbridge</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #1d2330; background: #f7f8fa; }
  h1 { font-size: 1.4rem; margin: 0 0 1rem; }
  h2 { font-size: 1.05rem; margin: 1.5rem 0 .5rem; }
  table { border-collapse: collapse; background: #fff; min-width: 40rem; }
  th, td { text-align: left; padding: .35rem .8rem; border-bottom: 1px solid #e3e6eb; }
  th { background: #eef1f5; font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .muted { color: #6b7385; }
  .bad { color: #b3261e; font-weight: 600; }
</style>
</head>
<body>
<h1>rocketbridge</h1>
<p><a href="/">WebSocket demo</a> · <a href="/metrics">Prometheus metrics</a></p>
<div class="muted" id="updated">loading…</div>
<h2>Listeners</h2>
<table><thead><tr><th>Protocol</th><th>Address</th></tr></thead><tbody id="listeners"></tbody></table>
<h2>Brokers</h2>
<table><thead><tr><th>Cluster</th><th>Broker</th><th>Id</th><th>Address</th><th>Messages stored</th>
<th>Messages read</th><th>CommitLog bytes</th><th>Flushed</th><th>Store</th></tr></thead><tbody id="brokers"></tbody></table>
<h2>Topics</h2>
<div id="topics" class="muted"></div>
<script>
const cell = (text, cls) => { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td; };
const row = (cells) => { const tr = document.createElement('tr'); cells.forEach((c) => tr.appendChild(c)); return tr; };
const num = (value) => value === undefined ? '' : Number(value).toLocaleString();
async function refresh() {
  try {
    const response = await fetch('/api/overview');
    const overview = await response.json();
    document.getElementById('listeners').replaceChildren(...overview.listeners.map((l) => row([cell(l.protocol), cell(l.address)])));
    document.getElementById('brokers').replaceChildren(...overview.brokers.map((b) => {
      const r = b.runtime || {};
      const store = b.error ? cell('unreachable', 'bad') : r.storeReadOnly === 'true' ? cell('read-only', 'bad') : cell('ok');
      return row([cell(b.clusterName), cell(b.brokerName), cell(String(b.brokerId)), cell(b.address),
        cell(num(r.putMessageTimesTotal), 'num'), cell(num(r.msgGetTotalTodayNow), 'num'),
        cell(num(r.commitLogMaxOffset), 'num'), cell(num(r.commitLogFlushedOffset), 'num'), store]);
    }));
    document.getElementById('topics').textContent = overview.topics.length ? overview.topics.join(', ') : 'none yet';
    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (err) {
    document.getElementById('updated').textContent = 'cannot reach the server: ' + err;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
