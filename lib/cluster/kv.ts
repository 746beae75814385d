/**
 * The replicated key-value store shipped as the example {@link StateMachine}:
 * put, get, delete, compare-and-set and range over string keys and byte values,
 * with a compact binary encoding shared by the node and the client
 * ({@link encodeKvCommand}, {@link encodeKvQuery}, {@link decodeKvResult}), and
 * {@link KvClient}, a typed wrapper over a cluster client.
 *
 * Encoding (little endian; `str` = u32 length + UTF-8, `bytes` = u32 length + bytes,
 * `opt` = u8 0 (absent) | u8 1 + bytes):
 *
 * | op | command / query | result |
 * | --- | --- | --- |
 * | 0x01 put | key str, value bytes | 0x01, previous opt |
 * | 0x02 delete | key str | 0x02, u8 existed |
 * | 0x03 cas | key str, expected opt, value opt (absent: delete) | 0x03, u8 swapped, current opt (after) |
 * | 0x11 get | key str | 0x11, value opt |
 * | 0x12 range | start str, end str ('' = no end), u32 limit (0 = none) | 0x12, u32 n, n × (key str, value bytes), u8 more |
 * | | | 0x7f error: message str (a malformed command; deterministic on every replica) |
 *
 * Range is over keys in `[start, end)` in UTF-16 code-unit order (JavaScript's string order).
 *
 * @packageDocumentation
 */
import { ErrorCodes, TidemarkError } from '../errors';
import { ByteReader, ByteWriter } from './bytes';
import type { StateMachine } from './state-machine';

/** A command that changes the store. */
export type KvCommand =
  | { readonly op: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly op: 'delete'; readonly key: string }
  /** Sets `value` (or deletes when null) only if the current value equals `expected` (null: absent). */
  | { readonly op: 'cas'; readonly key: string; readonly expected: Uint8Array | null; readonly value: Uint8Array | null };

/** A read-only query. */
export type KvQuery =
  | { readonly op: 'get'; readonly key: string }
  | { readonly op: 'range'; readonly start: string; readonly end?: string; readonly limit?: number };

/** The answer to a {@link KvCommand} or {@link KvQuery}. */
export type KvResult =
  | { readonly op: 'put'; readonly previous: Uint8Array | null }
  | { readonly op: 'delete'; readonly existed: boolean }
  | { readonly op: 'cas'; readonly swapped: boolean; readonly current: Uint8Array | null }
  | { readonly op: 'get'; readonly value: Uint8Array | null }
  | { readonly op: 'range'; readonly entries: ReadonlyArray<readonly [string, Uint8Array]>; readonly more: boolean }
  | { readonly op: 'error'; readonly message: string };

const OP = { put: 0x01, delete: 0x02, cas: 0x03, get: 0x11, range: 0x12, error: 0x7f } as const;

function checkKey(key: unknown): string {
  if (typeof key !== 'string') throw TidemarkError.invalidArgument(`key must be a string, got ${typeof key}`);
  // A lone surrogate has no UTF-8 form: two different keys would be stored as one.
  if (!(key as string & { isWellFormed(): boolean }).isWellFormed()) throw TidemarkError.invalidArgument('key must be well-formed UTF-16 (no lone surrogates)');
  return key;
}
function checkBytes(name: string, v: unknown): Uint8Array {
  if (!(v instanceof Uint8Array)) throw TidemarkError.invalidArgument(`${name} must be a Uint8Array`);
  return v;
}

/** Encodes a command for `propose`. @throws TidemarkError TM_INVALID_ARGUMENT */
export function encodeKvCommand(c: KvCommand): Uint8Array {
  const w = new ByteWriter();
  switch (c.op) {
    case 'put':
      return w.u8(OP.put).string(checkKey(c.key)).bytes(checkBytes('value', c.value)).finish();
    case 'delete':
      return w.u8(OP.delete).string(checkKey(c.key)).finish();
    case 'cas':
      return w
        .u8(OP.cas)
        .string(checkKey(c.key))
        .optionalBytes(c.expected === null ? null : checkBytes('expected', c.expected))
        .optionalBytes(c.value === null ? null : checkBytes('value', c.value))
        .finish();
    default:
      throw TidemarkError.invalidArgument(`unknown KV command op ${String((c as { op: unknown }).op)}`);
  }
}

/** Encodes a query for `read`. @throws TidemarkError TM_INVALID_ARGUMENT */
export function encodeKvQuery(q: KvQuery): Uint8Array {
  const w = new ByteWriter();
  switch (q.op) {
    case 'get':
      return w.u8(OP.get).string(checkKey(q.key)).finish();
    case 'range': {
      const limit = q.limit ?? 0;
      if (!Number.isSafeInteger(limit) || limit < 0 || limit > 0xffffffff) throw TidemarkError.invalidArgument('range limit must be an integer in [0, 2^32)');
      return w
        .u8(OP.range)
        .string(checkKey(q.start))
        .string(checkKey(q.end ?? ''))
        .u32(limit)
        .finish();
    }
    default:
      throw TidemarkError.invalidArgument(`unknown KV query op ${String((q as { op: unknown }).op)}`);
  }
}

/** Decodes a command (what the store does with a log entry). @throws TidemarkError TM_INVALID_ARGUMENT */
export function decodeKvCommand(data: Uint8Array): KvCommand {
  const r = new ByteReader(data, ErrorCodes.INVALID_ARGUMENT, 'KV command');
  const op = r.u8();
  let c: KvCommand;
  if (op === OP.put) c = { op: 'put', key: r.string(), value: r.bytes() };
  else if (op === OP.delete) c = { op: 'delete', key: r.string() };
  else if (op === OP.cas) c = { op: 'cas', key: r.string(), expected: r.optionalBytes(), value: r.optionalBytes() };
  else return r.fail(`unknown command op 0x${op.toString(16)}`);
  r.end();
  return c;
}

/** Decodes a query. @throws TidemarkError TM_INVALID_ARGUMENT */
export function decodeKvQuery(data: Uint8Array): KvQuery {
  const r = new ByteReader(data, ErrorCodes.INVALID_ARGUMENT, 'KV query');
  const op = r.u8();
  let q: KvQuery;
  if (op === OP.get) q = { op: 'get', key: r.string() };
  else if (op === OP.range) {
    const start = r.string();
    const end = r.string();
    const limit = r.u32();
    q = { op: 'range', start, ...(end === '' ? {} : { end }), ...(limit === 0 ? {} : { limit }) };
  } else return r.fail(`unknown query op 0x${op.toString(16)}`);
  r.end();
  return q;
}

export function encodeKvResult(res: KvResult): Uint8Array {
  const w = new ByteWriter();
  switch (res.op) {
    case 'put':
      return w.u8(OP.put).optionalBytes(res.previous).finish();
    case 'delete':
      return w.u8(OP.delete).u8(res.existed ? 1 : 0).finish();
    case 'cas':
      return w.u8(OP.cas).u8(res.swapped ? 1 : 0).optionalBytes(res.current).finish();
    case 'get':
      return w.u8(OP.get).optionalBytes(res.value).finish();
    case 'range': {
      w.u8(OP.range).u32(res.entries.length);
      for (const [k, v] of res.entries) w.string(k).bytes(v);
      return w.u8(res.more ? 1 : 0).finish();
    }
    case 'error':
      return w.u8(OP.error).string(res.message).finish();
    default:
      throw TidemarkError.invalidArgument('unknown KV result');
  }
}

/** Decodes a result returned by the cluster. @throws TidemarkError TM_INVALID_ARGUMENT */
export function decodeKvResult(data: Uint8Array): KvResult {
  const r = new ByteReader(data, ErrorCodes.INVALID_ARGUMENT, 'KV result');
  const op = r.u8();
  let res: KvResult;
  if (op === OP.put) res = { op: 'put', previous: r.optionalBytes() };
  else if (op === OP.delete) res = { op: 'delete', existed: r.u8() === 1 };
  else if (op === OP.cas) res = { op: 'cas', swapped: r.u8() === 1, current: r.optionalBytes() };
  else if (op === OP.get) res = { op: 'get', value: r.optionalBytes() };
  else if (op === OP.range) {
    const n = r.u32();
    const entries: Array<readonly [string, Uint8Array]> = [];
    for (let i = 0; i < n; i++) entries.push([r.string(), r.bytes()]);
    res = { op: 'range', entries, more: r.u8() === 1 };
  } else if (op === OP.error) res = { op: 'error', message: r.string() };
  else return r.fail(`unknown result op 0x${op.toString(16)}`);
  r.end();
  return res;
}

function bytesEqual(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

/** The key-value store: a {@link StateMachine} over an in-memory map. */
export class KvStore implements StateMachine {
  private readonly map = new Map<string, Uint8Array>();
  private sorted: string[] | null = null;

  /** Keys stored. */
  get size(): number {
    return this.map.size;
  }

  /** Direct local read (no replication): tests and tools. */
  getLocal(key: string): Uint8Array | undefined {
    return this.map.get(key);
  }

  private set(key: string, value: Uint8Array | null): void {
    if (value === null) {
      if (this.map.delete(key)) this.sorted = null;
    } else {
      if (!this.map.has(key)) this.sorted = null;
      this.map.set(key, value);
    }
  }

  apply(command: Uint8Array): Uint8Array {
    let c: KvCommand;
    try {
      c = decodeKvCommand(command);
    } catch (err) {
      return encodeKvResult({ op: 'error', message: (err as Error).message });
    }
    switch (c.op) {
      case 'put': {
        const previous = this.map.get(c.key) ?? null;
        this.set(c.key, c.value);
        return encodeKvResult({ op: 'put', previous });
      }
      case 'delete': {
        const existed = this.map.has(c.key);
        this.set(c.key, null);
        return encodeKvResult({ op: 'delete', existed });
      }
      case 'cas': {
        const current = this.map.get(c.key) ?? null;
        if (!bytesEqual(current, c.expected)) return encodeKvResult({ op: 'cas', swapped: false, current });
        this.set(c.key, c.value);
        return encodeKvResult({ op: 'cas', swapped: true, current: c.value });
      }
      default:
        return encodeKvResult({ op: 'error', message: 'unknown command' });
    }
  }

  query(query: Uint8Array): Uint8Array {
    let q: KvQuery;
    try {
      q = decodeKvQuery(query);
    } catch (err) {
      return encodeKvResult({ op: 'error', message: (err as Error).message });
    }
    if (q.op === 'get') return encodeKvResult({ op: 'get', value: this.map.get(q.key) ?? null });
    if (this.sorted === null) this.sorted = [...this.map.keys()].sort();
    const keys = this.sorted;
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((keys[mid] as string) < q.start) lo = mid + 1;
      else hi = mid;
    }
    const entries: Array<readonly [string, Uint8Array]> = [];
    const limit = q.limit ?? Number.POSITIVE_INFINITY;
    let more = false;
    for (let i = lo; i < keys.length; i++) {
      const k = keys[i] as string;
      if (q.end !== undefined && k >= q.end) break;
      if (entries.length >= limit) {
        more = true;
        break;
      }
      entries.push([k, this.map.get(k) as Uint8Array]);
    }
    return encodeKvResult({ op: 'range', entries, more });
  }

  /**
   * u32 count, then (key str, value bytes) in the map's insertion order: the same on every
   * replica (it follows the applied commands, and a restore keeps it), and O(n) without a sort.
   */
  snapshot(): Uint8Array {
    let bytes = 4;
    for (const [k, v] of this.map) bytes += 8 + k.length * 3 + v.length;
    const w = new ByteWriter(bytes);
    w.u32(this.map.size);
    for (const [k, v] of this.map) w.string(k).bytes(v);
    return w.finish();
  }

  restore(data: Uint8Array): void {
    const r = new ByteReader(data, ErrorCodes.CORRUPTION, 'KV snapshot');
    const n = r.u32();
    const next = new Map<string, Uint8Array>();
    for (let i = 0; i < n; i++) next.set(r.string(), r.bytes());
    r.end();
    this.map.clear();
    for (const [k, v] of next) this.map.set(k, v);
    this.sorted = null;
  }
}

/**
 * The part of a cluster client {@link KvClient} needs (lib/net's Client provides it):
 * `propose` runs a command through the log with a session (retries keep the same
 * client id and seq), `read` a query (linearizable by default). Both resolve with the
 * state machine's result bytes (or an object carrying them as `result`).
 */
export interface ClusterCaller {
  propose(payload: Uint8Array): Promise<Uint8Array | { readonly result: Uint8Array }>;
  read(payload: Uint8Array, options?: { readonly mode?: 'linearizable' | 'follower' }): Promise<Uint8Array | { readonly result: Uint8Array }>;
}

/** Read options of {@link KvClient}. */
export interface KvReadOptions {
  /** 'linearizable' (default: read index on the leader) or 'follower' (a node's high-water mark). */
  readonly mode?: 'linearizable' | 'follower';
}

const utf8 = new TextEncoder();
function toBytes(v: Uint8Array | string): Uint8Array {
  return typeof v === 'string' ? utf8.encode(v) : v;
}
function resultBytes(r: Uint8Array | { readonly result: Uint8Array }): Uint8Array {
  return r instanceof Uint8Array ? r : r.result;
}

/** A typed key-value API over a cluster client. Errors of the cluster (TM_UNKNOWN_OUTCOME, ...) pass through. */
export class KvClient {
  constructor(private readonly client: ClusterCaller) {}

  private async run(c: KvCommand): Promise<KvResult> {
    return check(decodeKvResult(resultBytes(await this.client.propose(encodeKvCommand(c)))));
  }
  private async ask(q: KvQuery, options: KvReadOptions): Promise<KvResult> {
    return check(decodeKvResult(resultBytes(await this.client.read(encodeKvQuery(q), { mode: options.mode ?? 'linearizable' }))));
  }

  /** Sets `key`; resolves with the previous value (null if none). */
  async put(key: string, value: Uint8Array | string): Promise<Uint8Array | null> {
    return (expect(await this.run({ op: 'put', key, value: toBytes(value) }), 'put')).previous;
  }
  /** The value of `key`, or null. */
  async get(key: string, options: KvReadOptions = {}): Promise<Uint8Array | null> {
    return expect(await this.ask({ op: 'get', key }, options), 'get').value;
  }
  /** Deletes `key`; true if it existed. */
  async delete(key: string): Promise<boolean> {
    return expect(await this.run({ op: 'delete', key }), 'delete').existed;
  }
  /** Compare-and-set: sets `value` (null deletes) if the current value equals `expected` (null: absent). */
  async compareAndSet(key: string, expected: Uint8Array | string | null, value: Uint8Array | string | null): Promise<{ swapped: boolean; current: Uint8Array | null }> {
    const r = expect(
      await this.run({ op: 'cas', key, expected: expected === null ? null : toBytes(expected), value: value === null ? null : toBytes(value) }),
      'cas',
    );
    return { swapped: r.swapped, current: r.current };
  }
  /** Keys in `[start, end)` (end omitted: to the last key), at most `limit`. */
  async range(start: string, end?: string, limit?: number, options: KvReadOptions = {}): Promise<{ entries: ReadonlyArray<readonly [string, Uint8Array]>; more: boolean }> {
    const r = expect(
      await this.ask({ op: 'range', start, ...(end === undefined ? {} : { end }), ...(limit === undefined ? {} : { limit }) }, options),
      'range',
    );
    return { entries: r.entries, more: r.more };
  }
}

function check(r: KvResult): KvResult {
  if (r.op === 'error') throw TidemarkError.invalidArgument(`the store refused the request: ${r.message}`);
  return r;
}
function expect<K extends KvResult['op']>(r: KvResult, op: K): Extract<KvResult, { op: K }> {
  if (r.op !== op) throw new TidemarkError(ErrorCodes.BAD_FRAME, `expected a ${op} result, got ${r.op}`);
  return r as Extract<KvResult, { op: K }>;
}
