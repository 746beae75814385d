/**
 * The one place the CLI meets lib/net and lib/cluster: start a node over TCP,
 * open a key-value client, read a node's status. Everything else in lib/cli
 * uses these facades, so the commands, the demo and the tests do not depend on
 * the details of the node's or the client's options.
 *
 * @packageDocumentation
 */
import type { Endpoint, Logger } from '../net/api';
import type { NodeConfig } from './cluster-args';
import type { MetricFamily } from './prometheus';
import type { NodeView } from './status-table';

/** A started node. */
export interface RunningNode {
  /** Where it listens (peers and clients). */
  address(): Endpoint;
  /** Its metrics, as Prometheus families. */
  metricFamilies(): MetricFamily[];
  /** Stops it: closes the transport, the log and the state machine. */
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
  range(start: string, end: string | null, limit?: number, options?: { follower?: boolean }): Promise<{ entries: Array<[string, string]>; index?: number }>;
  close(): Promise<void>;
}

/** How a failed client call ended. */
export interface CallFailure {
  /** 'not-applied': it certainly did not happen; 'unknown': it may have. */
  readonly outcome: 'not-applied' | 'unknown';
  readonly code: string;
}

export declare function startNode(config: NodeConfig, logger: Logger, onFatal: (err: unknown) => void): Promise<RunningNode>;
export declare function openKv(endpoints: readonly Endpoint[], options: { timeoutMs: number; clusterId?: string; logger?: Logger }): KvFacade;
export declare function probeStatus(endpoint: Endpoint, timeoutMs: number, clusterId?: string): Promise<NodeView>;
export declare function classifyFailure(err: unknown): CallFailure;
