/**
 * The user's replicated state machine, and what the node keeps around it: the
 * Idempotent Receiver session table (a retried command is applied once), the
 * envelope every replicated command travels in, and the node snapshot format
 * (session table + the state machine's own snapshot).
 *
 * @packageDocumentation
 */
import { ErrorCodes } from '../errors';
import { ByteReader, ByteWriter } from './bytes';

/**
 * A deterministic state machine replicated by a {@link TidemarkNode}. Every replica
 * applies the same commands in the same order, so every method must be a pure function
 * of the machine's state and its arguments: no clock, no randomness, no I/O whose result
 * can differ between replicas. Errors a command can cause belong in its result, not in a
 * throw: a throwing `apply` stops the node (it cannot be skipped on one replica only).
 *
 * @example
 * ```ts
 * class Counter implements StateMachine {
 *   private n = 0;
 *   apply(command: Uint8Array): Uint8Array { this.n += command[0] ?? 0; return Uint8Array.of(this.n); }
 *   query(): Uint8Array { return Uint8Array.of(this.n); }
 *   snapshot(): Uint8Array { return Uint8Array.of(this.n); }
 *   restore(data: Uint8Array): void { this.n = data[0] ?? 0; }
 * }
 * ```
 */
export interface StateMachine {
  /**
   * Applies one committed command (log entry `index`, increasing by one per call
   * except across a {@link restore}) and returns its result, which is sent to the
   * client that proposed it and cached for its retries. `command` is a view of the stored
   * log entry: read it, copy what you keep, never write to it.
   */
  apply(command: Uint8Array, index: number): Uint8Array;
  /** Answers a read-only query against the current state (must not change it). */
  query(query: Uint8Array): Uint8Array;
  /** The whole state as bytes (taken at the last applied index). */
  snapshot(): Uint8Array;
  /** Replaces the whole state by one {@link snapshot} returned (possibly on another replica). */
  restore(data: Uint8Array): void;
}

// ---------------------------------------------------------------------------
// Command envelope: what a replicated log entry of a client command holds.
// u8 version (1) | str clientId | u64 seq | u64 firstUnackedSeq (0: not sent) | command bytes
// An empty clientId (seq 0) is a command without a session: never deduplicated.
// ---------------------------------------------------------------------------

const ENVELOPE_VERSION = 1;

/** A client command with its session tag. */
export interface CommandEnvelope {
  readonly clientId: string;
  readonly seq: number;
  /** Every seq of the session below this was answered to the client (0: not said). */
  readonly firstUnackedSeq: number;
  readonly command: Uint8Array;
}

/** Bytes an envelope adds to a command, for a client id of `clientIdBytes`. */
export function envelopeOverhead(clientIdBytes: number): number {
  return 1 + 4 + clientIdBytes + 8 + 8;
}

const utf8 = new TextEncoder();

export function encodeEnvelope(e: CommandEnvelope): Uint8Array {
  const id = utf8.encode(e.clientId);
  // Sized exactly: finish() hands the buffer over without a copy (one allocation per command).
  return new ByteWriter(envelopeOverhead(id.length) + e.command.length).u8(ENVELOPE_VERSION).bytes(id).u64(e.seq).u64(e.firstUnackedSeq).raw(e.command).finish();
}

/** The command is a view into `data` (no copy). @throws TidemarkError TM_CORRUPTION (it comes from the log) */
export function decodeEnvelope(data: Uint8Array): CommandEnvelope {
  const r = new ByteReader(data, ErrorCodes.CORRUPTION, 'command envelope');
  const version = r.u8();
  if (version !== ENVELOPE_VERSION) r.fail(`unknown envelope version ${version}`);
  const clientId = r.string();
  const seq = r.u64();
  const firstUnackedSeq = r.u64();
  return { clientId, seq, firstUnackedSeq, command: r.restView() };
}

// ---------------------------------------------------------------------------
// Sessions (Idempotent Receiver)
// ---------------------------------------------------------------------------

/** Limits of the session table. Every replica must use the same values (they decide results). */
export interface SessionOptions {
  /** Sessions kept at most; the least recently used is dropped beyond. Default 10,000. */
  readonly maxSessions?: number;
  /** Cached results per session at most (pipelined clients); the lowest seq is dropped beyond. Default 256. */
  readonly maxResultsPerSession?: number;
  /** A session unused for this many log entries is dropped. Default 1,000,000. */
  readonly expiryEntries?: number;
}

interface Session {
  /** Every seq below this was answered (the client said so, or its result was dropped): a copy of one is refused. */
  floor: number;
  /** Log index of the last command applied in this session (expiry, LRU order). */
  index: number;
  /** Results of seqs ≥ floor, by seq. */
  readonly results: Map<number, { index: number; result: Uint8Array }>;
}

/** What applying an envelope through the session table gave. */
export type SessionOutcome =
  | { readonly kind: 'applied'; readonly result: Uint8Array }
  | { readonly kind: 'duplicate'; readonly result: Uint8Array; readonly index: number }
  /** Not applied now: the session is unknown though the client had answers (expired), or the seq is below the session's floor. */
  | { readonly kind: 'rejected'; readonly code: string; readonly message: string };

/** Error code: a command of a session the cluster no longer remembers, or an old copy (its outcome is unknown). */
export const SESSION_EXPIRED = ErrorCodes.SESSION_EXPIRED;

/**
 * The session table (Raft thesis §6.3): per client id, the results of its recent commands
 * by seq. A command whose seq has a result returns it without applying again; a new seq is
 * applied. Clients may pipeline (several seqs in flight, applied in any order); each command
 * carries the client's `firstUnackedSeq`, below which results are dropped. A client that does
 * not send it is taken to have one command in flight (floor = seq).
 *
 * A session the table does not know is created when the client has had no answer yet
 * (floor ≤ 1); otherwise it expired here and the command is refused with
 * {@link SESSION_EXPIRED} (outcome unknown: start a new session). Part of the replicated
 * state (in every snapshot); expiry is driven by the log (LRU count and index age), so every
 * replica drops the same sessions at the same entry.
 */
export class SessionTable {
  private readonly sessions = new Map<string, Session>();
  readonly maxSessions: number;
  readonly maxResultsPerSession: number;
  readonly expiryEntries: number;

  constructor(options: SessionOptions = {}) {
    this.maxSessions = options.maxSessions ?? 10_000;
    this.maxResultsPerSession = options.maxResultsPerSession ?? 256;
    this.expiryEntries = options.expiryEntries ?? 1_000_000;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** The cached answer for (clientId, seq) if that command was already applied; 'older' if below the floor. */
  lookup(clientId: string, seq: number): { result: Uint8Array; index: number } | 'older' | undefined {
    const s = this.sessions.get(clientId);
    if (s === undefined) return undefined;
    const r = s.results.get(seq);
    if (r !== undefined) return r;
    return seq < s.floor ? 'older' : undefined;
  }

  /** Applies `env` (log entry `index`) through the table; `apply` runs only for a new command. */
  apply(env: CommandEnvelope, index: number, apply: (command: Uint8Array) => Uint8Array): SessionOutcome {
    this.expire(index);
    if (env.clientId === '') return { kind: 'applied', result: apply(env.command) };
    const floor = env.firstUnackedSeq > 0 ? Math.min(env.firstUnackedSeq, env.seq) : env.seq;
    let s = this.sessions.get(env.clientId);
    if (s === undefined) {
      if (floor > 1) {
        return { kind: 'rejected', code: SESSION_EXPIRED, message: `session ${env.clientId} is unknown or expired (seq ${env.seq}); start a new session` };
      }
      s = { floor: 1, index, results: new Map() };
    } else {
      const r = s.results.get(env.seq);
      if (r !== undefined) return { kind: 'duplicate', result: r.result, index: r.index };
      if (env.seq < s.floor) {
        return { kind: 'rejected', code: SESSION_EXPIRED, message: `seq ${env.seq} is below the session's oldest remembered seq ${s.floor}` };
      }
    }
    if (floor > s.floor) {
      s.floor = floor;
      for (const seq of s.results.keys()) if (seq < floor) s.results.delete(seq);
    }
    const result = apply(env.command);
    s.results.set(env.seq, { index, result });
    if (s.results.size > this.maxResultsPerSession) {
      let lowest = Number.POSITIVE_INFINITY;
      for (const seq of s.results.keys()) if (seq < lowest) lowest = seq;
      s.results.delete(lowest);
      s.floor = Math.max(s.floor, lowest + 1);
    }
    s.index = index;
    this.sessions.delete(env.clientId);
    this.sessions.set(env.clientId, s);
    while (this.sessions.size > this.maxSessions) {
      const oldest = this.sessions.keys().next().value as string;
      this.sessions.delete(oldest);
    }
    return { kind: 'applied', result };
  }

  private expire(index: number): void {
    for (const [id, s] of this.sessions) {
      if (s.index + this.expiryEntries >= index) break; // ordered by last use: the rest are newer
      this.sessions.delete(id);
    }
  }

  encode(w: ByteWriter): void {
    w.u32(this.sessions.size);
    for (const [id, s] of this.sessions) {
      w.string(id).u64(s.floor).u64(s.index).u32(s.results.size);
      for (const [seq, r] of s.results) w.u64(seq).u64(r.index).bytes(r.result);
    }
  }

  /** Replaces the table by the one encoded in `r`. */
  decode(r: ByteReader): void {
    this.sessions.clear();
    const n = r.u32();
    for (let i = 0; i < n; i++) {
      const id = r.string();
      const floor = r.u64();
      const index = r.u64();
      const count = r.u32();
      const results = new Map<number, { index: number; result: Uint8Array }>();
      for (let k = 0; k < count; k++) {
        const seq = r.u64();
        const at = r.u64();
        results.set(seq, { index: at, result: r.bytes() });
      }
      this.sessions.set(id, { floor, index, results });
    }
  }
}

// ---------------------------------------------------------------------------
// Node snapshot: u32 magic "TMNS" | u8 version | session table | state-machine bytes (rest)
// ---------------------------------------------------------------------------

const NODE_SNAPSHOT_MAGIC = 0x534e4d54;
const NODE_SNAPSHOT_VERSION = 1;

export function encodeNodeSnapshot(sessions: SessionTable, machine: Uint8Array): Uint8Array {
  const w = new ByteWriter(64 + machine.length).u32(NODE_SNAPSHOT_MAGIC).u8(NODE_SNAPSHOT_VERSION);
  sessions.encode(w);
  return w.raw(machine).finish();
}

/** Restores `sessions` and returns the state machine's bytes. @throws TM_CORRUPTION */
export function decodeNodeSnapshot(data: Uint8Array, sessions: SessionTable): Uint8Array {
  const r = new ByteReader(data, ErrorCodes.CORRUPTION, 'node snapshot');
  if (r.u32() !== NODE_SNAPSHOT_MAGIC) r.fail('bad magic');
  const version = r.u8();
  if (version !== NODE_SNAPSHOT_VERSION) r.fail(`unknown version ${version}`);
  sessions.decode(r);
  return r.rest();
}
