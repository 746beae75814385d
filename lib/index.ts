/**
 * tidemark: a durable, replicated write-ahead log for Node.js.
 *
 * @packageDocumentation
 */
export { TidemarkError, ErrorCodes, isTidemarkError } from './errors';
export type { TidemarkErrorCode, TidemarkErrorDetails } from './errors';
export { crc32c, crc32cImplementation } from './crc32c';
