/**
 * Typed errors. Every operating error tidemark reports is a {@link TidemarkError}
 * with a stable {@link TidemarkErrorCode}; programmer errors (broken invariants)
 * are assertions and crash instead.
 *
 * @packageDocumentation
 */

/** Stable error codes. Match on `err.code`, never on the message text. */
export const ErrorCodes = {
  /** A record failed its checksum with valid data after it, or in a sealed segment. Carries `path` and `offset`. */
  CORRUPTION: 'TM_CORRUPTION',
  /** An I/O call failed. Carries `errno` (and `syscall`/`path` where known). */
  IO: 'TM_IO',
  /** The device is full: the batch was rejected, nothing of it acknowledged; the log stays usable. */
  NOSPC: 'TM_NOSPC',
  /** Another writer holds the log directory's lock (another process, or another open in this one). */
  LOCKED: 'TM_LOCKED',
  /** The log (or node, or connection) was closed. */
  CLOSED: 'TM_CLOSED',
  /** A sync or write failed earlier: the instance refuses all further appends with the original errno. */
  POISONED: 'TM_POISONED',
  /** `sync: 'direct'` was asked for on a filesystem that refuses O_DIRECT. */
  DIRECT_UNSUPPORTED: 'TM_DIRECT_UNSUPPORTED',
  /** `io: 'uring'` was asked for where the kernel refuses io_uring (disabled, seccomp, too old). */
  URING_UNSUPPORTED: 'TM_URING_UNSUPPORTED',
  /** An option or argument was out of range or of the wrong type. */
  INVALID_ARGUMENT: 'TM_INVALID_ARGUMENT',
  /** The requested index is outside the log (below the low-water mark or above the last index). */
  OUT_OF_RANGE: 'TM_OUT_OF_RANGE',
  /** The native addon could not be loaded. */
  NO_BINARY: 'TM_NO_BINARY',
  /** A peer spoke a malformed or oversized frame. */
  BAD_FRAME: 'TM_BAD_FRAME',
  /** A message or peer of an older generation, or of another cluster. */
  FENCED: 'TM_FENCED',
  /** This node is not the leader; `leaderId` says who is, when known. */
  NOT_LEADER: 'TM_NOT_LEADER',
  /** Too much is in flight; retry later. */
  BUSY: 'TM_BUSY',
  /**
   * A client call may or may not have taken effect (its request was sent, but no answer
   * said which). Retrying the same command with the same client id and sequence number
   * applies it at most once; a new call is a new command.
   */
  UNKNOWN_OUTCOME: 'TM_UNKNOWN_OUTCOME',
  /** No node could be reached (or none answered) in time; the call definitely did not take effect. */
  UNAVAILABLE: 'TM_UNAVAILABLE',
  /**
   * The client session's earlier results are gone (unknown or expired session, or a sequence
   * number below what the session remembers): whether that command took effect is unknown;
   * start a new session (a new client) for new commands.
   */
  SESSION_EXPIRED: 'TM_SESSION_EXPIRED',
} as const;

/** One of the values of {@link ErrorCodes}. */
export type TidemarkErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** Extra facts attached to an error where they apply. */
export interface TidemarkErrorDetails {
  /** The OS error name (`'EIO'`, `'ENOSPC'`, ...). */
  errno?: string;
  /** The numeric errno, positive. */
  errnoNumber?: number;
  /** The system call that failed. */
  syscall?: string;
  /** The file the error is about. */
  path?: string;
  /** The byte offset in `path` the error is about. */
  offset?: number;
  /** The current leader, for `TM_NOT_LEADER`. */
  leaderId?: string;
  /** The error that caused this one. */
  cause?: unknown;
}

/**
 * The one error class tidemark throws or rejects with for operating errors.
 * The message starts with the code: `TM_CORRUPTION: bad checksum in 000...1.wal at offset 4096`.
 */
export class TidemarkError extends Error {
  /** Stable code; see {@link ErrorCodes}. */
  readonly code: TidemarkErrorCode;
  readonly errno?: string;
  readonly errnoNumber?: number;
  readonly syscall?: string;
  readonly path?: string;
  readonly offset?: number;
  readonly leaderId?: string;

  constructor(code: TidemarkErrorCode, message: string, details: TidemarkErrorDetails = {}) {
    super(`${code}: ${message}`, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'TidemarkError';
    this.code = code;
    if (details.errno !== undefined) this.errno = details.errno;
    if (details.errnoNumber !== undefined) this.errnoNumber = details.errnoNumber;
    if (details.syscall !== undefined) this.syscall = details.syscall;
    if (details.path !== undefined) this.path = details.path;
    if (details.offset !== undefined) this.offset = details.offset;
    if (details.leaderId !== undefined) this.leaderId = details.leaderId;
  }

  static invalidArgument(message: string): TidemarkError {
    return new TidemarkError(ErrorCodes.INVALID_ARGUMENT, message);
  }
  static closed(what = 'log'): TidemarkError {
    return new TidemarkError(ErrorCodes.CLOSED, `the ${what} is closed`);
  }
  static outOfRange(message: string): TidemarkError {
    return new TidemarkError(ErrorCodes.OUT_OF_RANGE, message);
  }
  static badFrame(message: string): TidemarkError {
    return new TidemarkError(ErrorCodes.BAD_FRAME, message);
  }
  static fenced(message: string): TidemarkError {
    return new TidemarkError(ErrorCodes.FENCED, message);
  }
  static notLeader(leaderId?: string): TidemarkError {
    return new TidemarkError(
      ErrorCodes.NOT_LEADER,
      leaderId === undefined ? 'this node is not the leader and knows no leader' : `this node is not the leader; try ${leaderId}`,
      leaderId === undefined ? {} : { leaderId },
    );
  }
  static busy(message: string): TidemarkError {
    return new TidemarkError(ErrorCodes.BUSY, message);
  }
}

/** True when `err` is a {@link TidemarkError}, optionally with the given code. */
export function isTidemarkError(err: unknown, code?: TidemarkErrorCode): err is TidemarkError {
  return err instanceof TidemarkError && (code === undefined || err.code === code);
}
