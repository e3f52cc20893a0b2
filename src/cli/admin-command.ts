/**
 * `rocketbridge admin cluster`: every broker a NameServer knows (GET_BROKER_CLUSTER_INFO) with its
 * role and CommitLog offsets from its own runtime info (GET_BROKER_RUNTIME_INFO), and where
 * replication stands: a slave's bytes behind its master, a master's connected slaves and the bytes
 * its best slave has not confirmed. A table for people, `--json` for scripts. A broker that does not
 * answer is a row marked unreachable; a NameServer that does not answer or an unreadable --namesrv
 * is one line on stderr and exit code 1.
 */
import type { Argv, CommandModule } from 'yargs';
import { AdminClient, type BrokerSummary } from '../engine/client/admin-client.js';
import { RemoteTransport } from '../engine/client/transport-remote.js';
import { parseHostAddress } from '../engine/common/host-address.js';
import { setLogLevel } from '../engine/common/logger.js';
import { parseNamesrvList } from './broker-command.js';

/** One broker process and what it said about itself; null where it did not say or it does not apply. */
export interface BrokerRow {
  clusterName: string;
  brokerName: string;
  /** 0 for a master, > 0 for a slave. */
  brokerId: number;
  address: string;
  reachable: boolean;
  /** Why the runtime info request failed; null when it answered. */
  error: string | null;
  /** ASYNC_MASTER, SYNC_MASTER or SLAVE. */
  role: string | null;
  commitLogMinOffset: number | null;
  commitLogMaxOffset: number | null;
  /** Slave: its master's max offset minus its own, in bytes. */
  lagBytes: number | null;
  /** Master: slaves replicating from it. */
  slaveCount: number | null;
  /** Master: bytes past the furthest offset a slave confirmed; null without a slave. */
  unconfirmedBytes: number | null;
  /**
   * Master: where slaveCount and unconfirmedBytes come from: 'master' is its own HA connections
   * (haSlaveCount, haSlaveAckedOffset); 'slaves' is worked out from the reachable slaves' max
   * offsets, for a broker whose runtime info does not carry the HA figures.
   */
  replicationFrom: 'master' | 'slaves' | null;
}

export interface ClusterView {
  nameServers: string[];
  brokers: BrokerRow[];
}

/** What one broker answered (or the reason it did not). */
export type RuntimeAnswer = { info: Readonly<Record<string, string>> } | { error: string };

const ROLES = new Set(['ASYNC_MASTER', 'SYNC_MASTER', 'SLAVE']);

/** Usage problems: reported as one line with exit code 1, never a stack trace. */
class UsageError extends Error {}

/** The --namesrv values as a checked list of host:port; a UsageError names the first bad one. */
export function parseNamesrvArg(values: readonly string[]): string[] {
  const addresses = parseNamesrvList(values);
  if (addresses.length === 0) throw new UsageError('--namesrv needs at least one host:port');
  for (const address of addresses) {
    let port: number;
    let host: string;
    try {
      ({ host, port } = parseHostAddress(address));
    } catch {
      throw new UsageError(`--namesrv "${address}" is not host:port`);
    }
    // Port 0 parses but nothing can be reached there; an empty port ("host:") reads as 0 too.
    if (host.length === 0 || port === 0 || address.endsWith(':')) {
      throw new UsageError(`--namesrv "${address}" is not host:port with a port from 1 to 65535`);
    }
  }
  return addresses;
}

function integerOf(text: string | undefined): number | null {
  if (text === undefined || text.trim() === '') return null;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : null;
}

function groupKey(row: { clusterName: string; brokerName: string }): string {
  return `${row.clusterName}\u0000${row.brokerName}`;
}

/**
 * The rows for `brokers` given each one's runtime answer (same order). Pure, so that the lag rules
 * can be checked without a cluster: a slave's lag needs its master's answer, a master without HA
 * figures gets them from its slaves' answers.
 */
export function buildClusterView(
  nameServers: readonly string[],
  brokers: readonly BrokerSummary[],
  answers: readonly RuntimeAnswer[],
): ClusterView {
  const rows: BrokerRow[] = brokers.map((broker, index) => {
    const answer = answers[index] ?? { error: 'no answer' };
    const identity = {
      clusterName: broker.clusterName,
      brokerName: broker.brokerName,
      brokerId: broker.brokerId,
      address: broker.address,
    };
    // Filled in below, once every broker's offsets are known.
    const replication = { lagBytes: null, slaveCount: null, unconfirmedBytes: null, replicationFrom: null };
    if ('error' in answer) {
      return {
        ...identity,
        reachable: false,
        error: answer.error,
        role: null,
        commitLogMinOffset: null,
        commitLogMaxOffset: null,
        ...replication,
      };
    }
    const reported = answer.info['brokerRole'];
    // Brokers that do not report a role: the broker id alone tells master from slave.
    const role = reported !== undefined && ROLES.has(reported) ? reported : broker.brokerId > 0 ? 'SLAVE' : 'MASTER';
    return {
      ...identity,
      reachable: true,
      error: null,
      role,
      commitLogMinOffset: integerOf(answer.info['commitLogMinOffset']),
      commitLogMaxOffset: integerOf(answer.info['commitLogMaxOffset']),
      ...replication,
    };
  });

  const groups = new Map<string, BrokerRow[]>();
  for (const row of rows) {
    const key = groupKey(row);
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  rows.forEach((row, index) => {
    const answer = answers[index];
    if (answer === undefined || 'error' in answer) return;
    const group = groups.get(groupKey(row)) ?? [];
    if (row.role === 'SLAVE') {
      const master = group.find((other) => other.brokerId === 0);
      if (master !== undefined && master.commitLogMaxOffset !== null && row.commitLogMaxOffset !== null) {
        // The two answers are a moment apart; a slave never really runs ahead of its master.
        row.lagBytes = Math.max(0, master.commitLogMaxOffset - row.commitLogMaxOffset);
      }
      return;
    }
    const slaveCount = integerOf(answer.info['haSlaveCount']);
    const ackedOffset = integerOf(answer.info['haSlaveAckedOffset']);
    if (slaveCount !== null) {
      row.replicationFrom = 'master';
      row.slaveCount = slaveCount;
      if (ackedOffset !== null && ackedOffset >= 0 && row.commitLogMaxOffset !== null) {
        row.unconfirmedBytes = Math.max(0, row.commitLogMaxOffset - ackedOffset);
      }
      return;
    }
    const slaves = group.filter((other) => other.brokerId > 0 && other.reachable);
    row.replicationFrom = 'slaves';
    row.slaveCount = slaves.length;
    const best = Math.max(-1, ...slaves.map((slave) => slave.commitLogMaxOffset ?? -1));
    if (best >= 0 && row.commitLogMaxOffset !== null) row.unconfirmedBytes = Math.max(0, row.commitLogMaxOffset - best);
  });

  rows.sort(
    (a, b) =>
      a.clusterName.localeCompare(b.clusterName) || a.brokerName.localeCompare(b.brokerName) || a.brokerId - b.brokerId,
  );
  return { nameServers: [...nameServers], brokers: rows };
}

function replicationText(row: BrokerRow): string {
  if (!row.reachable) return `unreachable: ${row.error ?? ''}`;
  if (row.role === 'SLAVE') return row.lagBytes === null ? 'master unknown' : `${row.lagBytes} B behind master`;
  if (row.slaveCount === null) return '-';
  const slaves = `${row.slaveCount} slave${row.slaveCount === 1 ? '' : 's'}`;
  const marker = row.replicationFrom === 'slaves' ? '*' : '';
  return row.unconfirmedBytes === null
    ? `${slaves}${marker}`
    : `${slaves}, ${row.unconfirmedBytes} B unconfirmed${marker}`;
}

/** The table people read: one line per broker, columns padded to fit. */
export function renderClusterTable(view: ClusterView): string {
  if (view.brokers.length === 0) return `No brokers registered with ${view.nameServers.join(';')}.\n`;
  const header = ['CLUSTER', 'BROKER', 'ID', 'ADDRESS', 'ROLE', 'MIN OFFSET', 'MAX OFFSET', 'REPLICATION'];
  const lines = view.brokers.map((row) => [
    row.clusterName,
    row.brokerName,
    String(row.brokerId),
    row.address,
    row.role ?? 'UNREACHABLE',
    row.commitLogMinOffset === null ? '-' : String(row.commitLogMinOffset),
    row.commitLogMaxOffset === null ? '-' : String(row.commitLogMaxOffset),
    replicationText(row),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...lines.map((line) => (line[column] ?? '').length)),
  );
  // Offsets and ids align right, like numbers do; the last column is not padded.
  const numeric = new Set([2, 5, 6]);
  const format = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => {
        if (column === cells.length - 1) return cell;
        const width = widths[column] ?? 0;
        return numeric.has(column) ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ');
  let text = [header, ...lines].map(format).join('\n') + '\n';
  if (view.brokers.some((row) => row.replicationFrom === 'slaves')) {
    text += "* worked out from the slaves' own offsets: this master does not report its HA connections\n";
  }
  return text;
}

function messageOf(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // "no NameServer answered (...)" says little without the reason underneath.
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}

/** Asks the NameServers for the brokers and every broker for its runtime info, in parallel. */
export async function fetchClusterView(nameServers: readonly string[], timeoutMs: number): Promise<ClusterView> {
  const transport = new RemoteTransport({ connectTimeoutMs: timeoutMs });
  const admin = new AdminClient({ nameServers, transport, requestTimeoutMs: timeoutMs });
  await admin.start();
  try {
    const brokers = await admin.brokers();
    const answers = await Promise.all(
      brokers.map((broker) =>
        admin.brokerRuntimeInfo(broker.address).then(
          (info): RuntimeAnswer => ({ info }),
          (err: unknown): RuntimeAnswer => ({ error: messageOf(err) }),
        ),
      ),
    );
    return buildClusterView(nameServers, brokers, answers);
  } finally {
    await admin.shutdown();
    await transport.close();
  }
}

interface ClusterArgs {
  namesrv: string[];
  json: boolean;
  'timeout-ms': number;
  'log-level'?: string | undefined;
}

const clusterCommand: CommandModule<object, ClusterArgs> = {
  command: 'cluster',
  describe: 'Show every broker of the cluster: role, CommitLog offsets and replication lag',
  builder: (yargs) =>
    yargs
      .option('namesrv', {
        type: 'string',
        array: true,
        default: ['127.0.0.1:9876'],
        describe: 'NameServer address host:port; repeat the flag or separate with ;',
      })
      .option('json', { type: 'boolean', default: false, describe: 'Print the rows as JSON' })
      .option('timeout-ms', {
        type: 'number',
        default: 3000,
        describe: 'How long to wait for each NameServer and broker',
      }),
  handler: async (args) => {
    // Logs go to stdout, where the table or the JSON goes; only an explicit --log-level gets them.
    if (args['log-level'] === undefined) setLogLevel('silent');
    try {
      const nameServers = parseNamesrvArg(args.namesrv);
      const timeoutMs = args['timeout-ms'];
      if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
        throw new UsageError(`--timeout-ms must be a positive integer, got ${timeoutMs}`);
      }
      const view = await fetchClusterView(nameServers, timeoutMs);
      process.stdout.write(args.json ? `${JSON.stringify(view, null, 2)}\n` : renderClusterTable(view));
    } catch (err) {
      console.error(`rocketbridge: ${messageOf(err).replace(/\s*\n\s*/g, ' ')}`);
      process.exitCode = 1;
    }
  },
};

export const adminCommand: CommandModule<object, object> = {
  command: 'admin',
  describe: 'Inspect a running cluster (see rocketbridge admin --help)',
  builder: (yargs: Argv) => yargs.command(clusterCommand).demandCommand(1, 'Name an admin command: cluster.'),
  handler: () => {},
};
