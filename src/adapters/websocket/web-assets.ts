/**
 * What the HTTP listener serves for browsers: the ES module client (src/adapters/websocket/
 * browser-client/rocketbridge-client.js, at /client/rocketbridge-client.js) and the demo page (at
 * /demo, and at / when the process serves it there; the dashboard is at /dashboard). The HTTP listener mounts these; this module only provides them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** URL path of the browser client. */
export const BROWSER_CLIENT_URL_PATH = '/client/rocketbridge-client.js';
/** URL path of the demo page. */
export const DEMO_URL_PATH = '/demo';

/**
 * The file path of the browser client. tsc does not copy .js sources into dist/, so when running
 * compiled the file is read from the source tree next to dist/.
 */
export function browserClientFilePath(): string {
  const beside = fileURLToPath(new URL('./browser-client/rocketbridge-client.js', import.meta.url));
  if (existsSync(beside)) return beside;
  return beside.replace(/([/\\])dist\1src\1/, '$1src$1');
}

let cachedClient: string | undefined;

/** The browser client's source text (read once). */
export function browserClientSource(): string {
  cachedClient ??= readFileSync(browserClientFilePath(), 'utf8');
  return cachedClient;
}

/** A static asset: content type and body, by URL path. */
export interface WebAsset {
  contentType: string;
  body: string;
}

/** Every asset of the WebSocket front end by URL path, for the HTTP listener's router. */
export function webSocketAssets(): ReadonlyMap<string, WebAsset> {
  return new Map([
    [BROWSER_CLIENT_URL_PATH, { contentType: 'text/javascript; charset=utf-8', body: browserClientSource() }],
    [DEMO_URL_PATH, { contentType: 'text/html; charset=utf-8', body: DEMO_HTML }],
  ]);
}

/** The demo page: connect, subscribe to a topic/tag, see live messages, publish. */
export const DEMO_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>rocketbridge WebSocket demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; max-width: 60rem; color: #222; }
  fieldset { border: 1px solid #ccc; border-radius: 6px; margin: 0 0 1rem; }
  label { margin-right: .8rem; }
  input { font: inherit; padding: .15rem .3rem; }
  #status { font-weight: 600; }
  #status.up { color: #176b2c; } #status.down { color: #a3262a; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; border-bottom: 1px solid #eee; padding: .2rem .4rem; font-family: ui-monospace, monospace; }
  #log { color: #a3262a; }
</style>
</head>
<body>
<h1>rocketbridge WebSocket demo</h1>
<p>Status: <span id="status" class="down">connecting…</span> · <a href="/dashboard">dashboard</a> · protocol: docs/websocket.md</p>
<fieldset>
  <legend>Subscribe</legend>
  <label>Topic <input id="sub-topic" value="DemoTopic"></label>
  <label>Tag expression <input id="sub-tag" value="*"></label>
  <label>Group <input id="sub-group" placeholder="(private)"></label>
  <button id="subscribe">Subscribe</button>
  <span id="sub-state"></span>
</fieldset>
<fieldset>
  <legend>Publish</legend>
  <label>Topic <input id="pub-topic" value="DemoTopic"></label>
  <label>Tag <input id="pub-tag" value="hello"></label>
  <label>Body <input id="pub-body" value="Hello from the browser"></label>
  <button id="publish">Publish</button>
  <span id="pub-state"></span>
</fieldset>
<p id="log"></p>
<table>
  <thead><tr><th>time</th><th>topic</th><th>tag</th><th>body</th><th>properties</th></tr></thead>
  <tbody id="messages"></tbody>
</table>
<script type="module">
import { RocketBridgeClient } from '${BROWSER_CLIENT_URL_PATH}';
const $ = (id) => document.getElementById(id);
const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
const params = new URLSearchParams(location.search);
const options = {};
if (params.has('token')) options.token = params.get('token');
const client = new RocketBridgeClient(url, options);
window.rocketbridge = client;
let subscription;
client.on('open', () => { $('status').textContent = 'connected'; $('status').className = 'up'; });
client.on('close', () => { $('status').textContent = 'disconnected (reconnecting)'; $('status').className = 'down'; });
client.on('error', (err) => { $('log').textContent = err.code + ': ' + err.message; });
function show(message) {
  const row = document.createElement('tr');
  row.className = 'message';
  for (const text of [new Date(message.storeTimestamp).toLocaleTimeString(), message.topic, message.tag ?? '',
    message.text(), JSON.stringify(message.properties)]) {
    const cell = document.createElement('td');
    cell.textContent = text;
    row.appendChild(cell);
  }
  $('messages').prepend(row);
  while ($('messages').children.length > 200) $('messages').lastChild.remove();
}
$('subscribe').onclick = async () => {
  try {
    if (subscription) await subscription.unsubscribe();
    const request = { topic: $('sub-topic').value, tag: $('sub-tag').value || '*', credit: 50, autoAck: true };
    if ($('sub-group').value) request.group = $('sub-group').value;
    subscription = await client.subscribe(request, show);
    $('sub-state').textContent = 'subscribed to ' + request.topic + ' / ' + request.tag;
    $('sub-state').dataset.ready = 'true';
  } catch (err) { $('log').textContent = err.code + ': ' + err.message; }
};
$('publish').onclick = async () => {
  try {
    const answer = await client.produce({ topic: $('pub-topic').value, tag: $('pub-tag').value || undefined,
      properties: { source: 'demo' }, body: $('pub-body').value });
    $('pub-state').textContent = 'stored: ' + answer.msgId;
  } catch (err) { $('log').textContent = err.code + ': ' + err.message; }
};
client.connect().catch((err) => { $('log').textContent = err.message; });
</script>
</body>
</html>
`;
