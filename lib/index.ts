/**
 * tidemark: a durable, replicated write-ahead log for Node.js.
 *
 * @packageDocumentation
 */
export { TidemarkError, ErrorCodes, isTidemarkError } from './errors';
export type { TidemarkErrorCode, TidemarkErrorDetails } from './errors';
export { crc32c, crc32cImplementation } from './crc32c';
export { Wal } from './log/wal';
export type { WalDamage, WalEntry, WalEvents, WalHistogram, WalRange, WalStats, WalTailRepair } from './log/wal';
export type { IoMode, ResolvedWalOptions, SyncMode, WalOptions } from './log/options';
export { SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX, SEGMENT_BYTES_DEFAULT, RECORD_BYTES_DEFAULT, BUSY_POLL_MICROS_DEFAULT, BUSY_POLL_MICROS_MAX } from './log/options';
export * from './core/index';
export { MemoryLog } from './log/memory';
export { Client, parseAddress } from './net/client';
export type { ClientOptions, ClientResult, ClientTls, ReadOptions } from './net/client';
export type { ClientRequest, ClientResponse, Endpoint, Logger, Transport, TransportHandlers } from './net/api';
export * from './cluster/index';
