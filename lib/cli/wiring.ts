/**
 * The one place the CLI meets lib/net and lib/cluster: start a node over TCP,
 * open a key-value client, read a node's status. Everything else in lib/cli
 * uses these facades, so the commands, the demo and the tests do not depend on
 * the details of the node's or the client's options.
 *
 * @packageDocumentation
 */
import { KvClient, TidemarkNode, type NodeHistogram, type NodeMetrics } from '../cluster/index';
import { ErrorCodes, isTidemarkError } from '../errors';
import type { WalHistogram } from '../log/wal';
import type { Endpoint, Logger } from '../net/api';
import { Client } from '../net/client';
import * as fs from 'node:fs';
import { TcpTransport, type TransportStats, type TransportTls } from '../net/transport';
import { DEFAULT_CLUSTER_ID, formatEndpoint, type ClientTlsPem, type NodeConfig, type NodeTlsFiles } from './cluster-args';
import type { HistogramSample, MetricFamily } from './prometheus';
import { toNodeView, type NodeView } from './status-table';

/** A started node. */
export interface RunningNode {
  /** Where it listens (peers and clients). */
  address(): Endpoint;
  /** Its metrics, as Prometheus families. */
  metricFamilies(): MetricFamily[];
  /** Whether it runs mutual TLS (else plain TCP). */
  readonly tls: boolean;
  /**
   * Reads the TLS files again and hands them to the transport (connections from now on use
   * them; open ones keep theirs). Throws when the node runs plain TCP or a file does not load.
   */
  reloadTls(): void;
  /** Stops it (a leader hands its leadership over first): closes the transport, the log and the state machine. */
  close(): Promise<void>;
}

/** Results carry the log index they were applied or served at, when the node says. */
export interface KvFacade {
  put(key: string, value: string): Promise<{ index?: number }>;
  get(key: string, options?: { follower?: boolean }): Promise<{ value: string | null; index?: number }>;
  del(key: string): Promise<{ existed?: boolean; index?: number }>;
  /** `expected` null: swap only if absent. */
  cas(key: string, expected: string | null, value: string): Promise<{ swapped: boolean; current?: string | null; index?: number }>;
  /** Keys in [start, end) (end null: to the last key), at most `limit`. */
  range(start: string, end: string | null, limit?: number, options?: { follower?: boolean }): Promise<{ entries: Array<[string, string]>; more: boolean; index?: number }>;
  close(): Promise<void>;
}

/** How a failed client call ended. */
export interface CallFailure {
  /** 'not-applied': it certainly did not happen; 'unknown': it may have. */
  readonly outcome: 'not-applied' | 'unknown';
  readonly code: string;
}

const ROLES = ['follower', 'pre-candidate', 'candidate', 'leader'] as const;

/** A power-of-two histogram of the node (bucket i: below 2^i units) as a Prometheus histogram in seconds. */
function histogramSample(h: NodeHistogram, unitSeconds: number): HistogramSample {
  let acc = 0;
  const buckets = h.counts.map((c, i) => ({ le: 2 ** i * unitSeconds, count: (acc += c) }));
  return { buckets, count: h.count, sum: h.sum * unitSeconds };
}

/**
 * The WAL's sync histogram (bucket i: [lowerBounds[i], lowerBounds[i+1]) µs) as a Prometheus
 * histogram in seconds. The WAL keeps no sum of latencies, so `_sum` is NaN rather than made up.
 */
function walHistogramSample(h: WalHistogram): HistogramSample {
  let acc = 0;
  const buckets = h.counts.map((c, i) => ({ le: i + 1 < h.lowerBounds.length ? (h.lowerBounds[i + 1] as number) * 1e-6 : Infinity, count: (acc += c) }));
  return { buckets, count: acc, sum: NaN };
}

/** A node's {@link NodeMetrics} as Prometheus families (names `tidemark_*`, counters `_total`). */
export function nodeMetricFamilies(m: NodeMetrics): MetricFamily[] {
  const counter = (name: string, help: string, value: number): MetricFamily => ({ name: `tidemark_${name}_total`, help, type: 'counter', samples: [{ value }] });
  const gauge = (name: string, help: string, value: number): MetricFamily => ({ name: `tidemark_${name}`, help, type: 'gauge', samples: [{ value }] });
  const perPeer = (name: string, help: string, pick: (p: NodeMetrics['peers'][number]) => number): MetricFamily => ({
    name: `tidemark_${name}`,
    help,
    type: 'gauge',
    samples: m.peers.map((p) => ({ labels: { peer: p.id }, value: pick(p) })),
  });
  return [
    counter('commits', 'Entries applied to the state machine since the process started (no-ops included).', m.commits),
    counter('commands_applied', 'Client commands applied since the process started.', m.commandsApplied),
    counter('proposals', 'Client proposals received.', m.proposals),
    counter('proposals_refused', 'Client proposals refused by the core (not leader, ...).', m.proposalsRefused),
    counter('proposals_busy', 'Client proposals refused TM_BUSY by admission control (maxPendingProposals / maxPendingBytes).', m.proposalsBusy),
    counter('reads_served', 'Client reads served.', m.readsServed),
    counter('elections_won', 'Times this node became leader.', m.electionsWon),
    counter('campaigns', 'Elections this node started (timeout or early).', m.campaigns),
    counter('early_campaigns', 'Elections started early because the leader connection closed.', m.earlyCampaigns),
    counter('leader_changes', 'Leader changes seen.', m.leaderChanges),
    counter('snapshots_taken', 'Snapshots of the state machine taken.', m.snapshotsTaken),
    counter('snapshots_installed', 'Snapshots installed from the leader.', m.snapshotsInstalled),
    counter('wal_syncs', 'WAL syncs.', m.walSyncs),
    counter('wal_written_bytes', 'Bytes written to the WAL.', m.walBytesWritten),
    gauge('high_water_mark', 'Highest index known committed (the high-water mark).', m.commitIndex),
    gauge('applied_index', 'Highest index applied to the state machine.', m.appliedIndex),
    gauge('generation', 'Current generation (term).', m.generation),
    { name: 'tidemark_role', help: 'Current role (1 for the role the node is in).', type: 'gauge', samples: ROLES.map((r) => ({ labels: { role: r }, value: m.role === r ? 1 : 0 })) },
    gauge('log_first_index', 'First index in the log (after the snapshot).', m.firstIndex),
    gauge('log_last_index', 'Last index in the log.', m.lastIndex),
    gauge('snapshot_index', 'Index of the latest snapshot (the low-water mark).', m.snapshotIndex),
    gauge('sessions', 'Client sessions kept (Idempotent Receiver).', m.sessions),
    gauge('memory_entry_bytes', 'Bytes of log entries kept in memory.', m.memoryEntryBytes),
    perPeer('peer_lag_entries', 'Leader only: last index minus the peer\'s match index.', (p) => p.lag),
    perPeer('peer_match_index', 'Leader only: highest index known replicated on the peer.', (p) => p.match),
    perPeer('peer_inflight_bytes', 'Leader only: entry bytes sent to the peer and not acknowledged.', (p) => p.inflightBytes),
    perPeer('peer_inflight_appends', 'Leader only: append messages in flight to the peer.', (p) => p.inflightAppends),
    gauge('wal_segments', 'WAL segment files.', m.walSegments),
    { name: 'tidemark_wal_sync_seconds', help: 'WAL sync latency (fdatasync, or the O_DSYNC write); no sum is kept.', type: 'histogram', samples: [walHistogramSample(m.walSyncLatencyUs)] },
    { name: 'tidemark_persist_seconds', help: 'Time to make one Ready durable (WAL append through fsync).', type: 'histogram', samples: [histogramSample(m.persistLatencyUs, 1e-6)] },
  ];
}

/** The transport's counters as Prometheus families: refusals by reason, connections, frames. */
export function transportMetricFamilies(t: TransportStats): MetricFamily[] {
  return [
    {
      name: 'tidemark_connections_refused_total',
      help: 'Connections this node closed or refused, by reason (bad-frame, handshake-timeout, wrong-cluster, tls-identity, ...).',
      type: 'counter',
      samples: Object.entries(t.rejected).map(([reason, value]) => ({ labels: { reason }, value })),
    },
    { name: 'tidemark_connections_accepted_total', help: 'TCP connections accepted.', type: 'counter', samples: [{ value: t.connectionsAccepted }] },
    { name: 'tidemark_connections_open', help: 'Accepted connections open now (handshaking, peers and clients).', type: 'gauge', samples: [{ value: t.connectionsOpen }] },
    { name: 'tidemark_incomplete_frame_bytes', help: 'Bytes of incomplete frames held over all connections.', type: 'gauge', samples: [{ value: t.bufferedBytes }] },
    { name: 'tidemark_frames_received_total', help: 'Frames received.', type: 'counter', samples: [{ value: t.framesReceived }] },
    { name: 'tidemark_messages_dropped_total', help: 'Peer messages not sent (queue bound, unknown peer, oversized).', type: 'counter', samples: [{ value: t.messagesDropped }] },
  ];
}

/** Reads a node's PEM files. */
export function loadNodeTls(files: NodeTlsFiles): TransportTls {
  return {
    cert: fs.readFileSync(files.certFile, 'utf8'),
    key: fs.readFileSync(files.keyFile, 'utf8'),
    ca: fs.readFileSync(files.caFile, 'utf8'),
    requireClientCert: files.requireClientCert,
  };
}

/** Starts a node over TCP from a resolved config. `onFatal` hears about an error that stopped the node. */
export async function startNode(config: NodeConfig, logger: Logger, onFatal: (err: unknown) => void): Promise<RunningNode> {
  const peers = Object.fromEntries(config.peers.map((p) => [p.id, p.endpoint]));
  const tlsFiles = config.tls;
  const transport = new TcpTransport({
    nodeId: config.id,
    clusterId: config.clusterId,
    listen: config.listen,
    peers,
    logger,
    ...(tlsFiles === undefined ? {} : { tls: loadNodeTls(tlsFiles) }),
  });
  const addresses = Object.fromEntries([[config.id, formatEndpoint(config.listen)], ...config.peers.map((p) => [p.id, formatEndpoint(p.endpoint)])]);
  const node = await TidemarkNode.open({
    id: config.id,
    dir: config.dir,
    clusterId: config.clusterId,
    voters: [config.id, ...config.peers.map((p) => p.id)],
    addresses,
    transport,
    logger,
    ...(config.tickMs === undefined ? {} : { tickMs: config.tickMs }),
    ...(config.electionTimeoutTicks === undefined ? {} : { electionTimeoutTicks: config.electionTimeoutTicks }),
    ...(config.heartbeatTicks === undefined ? {} : { heartbeatTicks: config.heartbeatTicks }),
    ...(config.snapshotEntries === undefined ? {} : { snapshotEntries: config.snapshotEntries }),
    ...(config.maxPendingProposals === undefined ? {} : { maxPendingProposals: config.maxPendingProposals }),
    ...(config.maxPendingBytes === undefined ? {} : { maxPendingBytes: config.maxPendingBytes }),
  });
  // A fatal error (the WAL poisoned, ...) is emitted as 'error' before the node closes itself.
  node.on('error', onFatal);
  return {
    address: () => transport.address(),
    metricFamilies: () => [...nodeMetricFamilies(node.metrics()), ...transportMetricFamilies(transport.stats())],
    tls: tlsFiles !== undefined,
    reloadTls: () => {
      if (tlsFiles === undefined) throw new Error('this node runs plain TCP: there is no TLS material to reload');
      transport.reloadTls(loadNodeTls(tlsFiles));
    },
    close: () => node.close({ handOff: true }),
  };
}

/** The client's address form of an endpoint. */
const address = (e: Endpoint) => formatEndpoint(e);
const text = new TextDecoder();
const str = (b: Uint8Array | null): string | null => (b === null ? null : text.decode(b));

/** A key-value client over lib/net's Client and lib/cluster's KvClient, strings in and out. */
export function openKv(endpoints: readonly Endpoint[], options: { timeoutMs: number; clusterId?: string; logger?: Logger; tls?: ClientTlsPem }): KvFacade {
  const attemptMs = Math.min(options.timeoutMs, 1000);
  const client = new Client({
    nodes: endpoints.map(address),
    clusterId: options.clusterId ?? DEFAULT_CLUSTER_ID,
    timeoutMs: attemptMs,
    totalTimeoutMs: options.timeoutMs,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.tls === undefined ? {} : { tls: options.tls }),
  });
  const kv = new KvClient(client);
  const mode = (o?: { follower?: boolean }) => ({ mode: o?.follower === true ? ('follower' as const) : ('linearizable' as const) });
  return {
    put: async (key, value) => (await kv.put(key, value), {}),
    get: async (key, o) => ({ value: str(await kv.get(key, mode(o))) }),
    del: async (key) => ({ existed: await kv.delete(key) }),
    cas: async (key, expected, value) => {
      const r = await kv.compareAndSet(key, expected, value);
      return { swapped: r.swapped, current: str(r.current) };
    },
    range: async (start, end, limit, o) => {
      const r = await kv.range(start, end ?? undefined, limit, mode(o));
      return { entries: r.entries.map(([k, v]) => [k, text.decode(v)] as [string, string]), more: r.more };
    },
    close: () => client.close(),
  };
}

/** One node's status (not redirected: that node's own view). */
export async function probeStatus(endpoint: Endpoint, timeoutMs: number, clusterId: string = DEFAULT_CLUSTER_ID, tls?: ClientTlsPem): Promise<NodeView> {
  const client = new Client({ nodes: [address(endpoint)], clusterId, timeoutMs, totalTimeoutMs: timeoutMs, maxAttempts: 1, ...(tls === undefined ? {} : { tls }) });
  try {
    return toNodeView(await client.status(address(endpoint)));
  } finally {
    await client.close();
  }
}

/** Whether a failed call may have taken effect: only TM_UNKNOWN_OUTCOME (or an error that is not ours) says maybe. */
export function classifyFailure(err: unknown): CallFailure {
  if (isTidemarkError(err)) return { outcome: err.code === ErrorCodes.UNKNOWN_OUTCOME ? 'unknown' : 'not-applied', code: err.code };
  return { outcome: 'unknown', code: err instanceof Error ? err.name : 'unknown' };
}
