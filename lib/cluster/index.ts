/**
 * The cluster layer: storage under the replication core, the node (driver), the
 * state-machine interface, the replicated key-value store and an in-memory transport.
 *
 * @packageDocumentation
 */
export { TidemarkNode, UNKNOWN_OUTCOME, MAX_CLIENT_ID_BYTES } from './node';
export type { TidemarkNodeOptions, NodeMetrics, NodeHistogram, CoreLimits } from './node';
export { RaftStorage, ENTRY_RECORD_HEADER_BYTES, encodeEntryRecord, decodeEntryRecord } from './storage';
export type { RaftStorageOptions, RaftStorageStats } from './storage';
export { SessionTable, SESSION_EXPIRED, encodeEnvelope, decodeEnvelope, encodeNodeSnapshot, decodeNodeSnapshot } from './state-machine';
export type { StateMachine, SessionOptions, SessionOutcome, CommandEnvelope } from './state-machine';
export { KvStore, KvClient, encodeKvCommand, decodeKvCommand, encodeKvQuery, decodeKvQuery, encodeKvResult, decodeKvResult } from './kv';
export type { KvCommand, KvQuery, KvResult, KvReadOptions, ClusterCaller } from './kv';
export { MemoryNetwork } from './memory-transport';
