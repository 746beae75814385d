/**
 * The simulated clients' key-value state machine: commands in entries, the state each
 * node applies them to, snapshots of it, and the client history checked for
 * linearizability (test/lin/checker.ts).
 */
import type { KvOpKind, KvOperation } from '../lin/checker';

/** One KV command, as carried in an entry's payload. */
export interface KvCommand {
  /** Unique per client operation. */
  readonly id: string;
  readonly op: Exclude<KvOpKind, 'get'>;
  readonly key: string;
  readonly value: string;
  /** cas: expected value (null: absent). */
  readonly expected: string | null;
}

const ABSENT = '~';

/** `id|op|key|value|expected|padding` in ASCII. */
export function encodeCommand(c: KvCommand, padding: number): Uint8Array {
  const s = `${c.id}|${c.op}|${c.key}|${c.value}|${c.expected ?? ABSENT}|${'.'.repeat(padding)}`;
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function decodeCommand(data: Uint8Array): KvCommand {
  const parts = String.fromCharCode(...data).split('|');
  const [id, op, key, value, expected] = parts as [string, KvCommand['op'], string, string, string];
  return { id, op, key, value, expected: expected === ABSENT ? null : expected };
}

/** A node's state machine: the map, plus a rolling hash of every applied entry. */
export class KvState {
  readonly map = new Map<string, string>();

  /** Applies `c`; for cas, true if it swapped. */
  apply(c: KvCommand): boolean {
    switch (c.op) {
      case 'put':
        this.map.set(c.key, c.value);
        return true;
      case 'del':
        this.map.delete(c.key);
        return true;
      case 'cas': {
        const holds = (this.map.get(c.key) ?? null) === c.expected;
        if (holds) this.map.set(c.key, c.value);
        return holds;
      }
    }
  }

  get(key: string): string | null {
    return this.map.get(key) ?? null;
  }
}

/** Snapshot bytes: JSON of (index, hash, map), then padding so transfers take several chunks. */
export function encodeSnapshot(index: number, hash: number, state: KvState, padding: number): Uint8Array {
  const s = JSON.stringify({ index, hash, map: [...state.map] }) + ' '.repeat(padding);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function decodeSnapshot(data: Uint8Array): { index: number; hash: number; state: KvState } {
  let s = '';
  for (let i = 0; i < data.length; i += 4096) s += String.fromCharCode(...data.subarray(i, i + 4096));
  const j = JSON.parse(s) as { index: number; hash: number; map: Array<[string, string]> };
  const state = new KvState();
  for (const [k, v] of j.map) state.map.set(k, v);
  return { index: j.index, hash: j.hash, state };
}

/** A client operation being recorded (mutable until it returns). */
export type HistoryOp = { -readonly [K in keyof KvOperation]: KvOperation[K] };

/**
 * The clients' history on one clock: every call and return takes the next tick of
 * `seq`, so real-time order is exact (no ties).
 */
export class History {
  private readonly all: HistoryOp[] = [];
  private readonly failed = new Set<HistoryOp>();
  /** Operations whose client gave up: their outcome stays unknown whatever happens later. */
  private readonly abandoned = new Set<HistoryOp>();
  private seq = 0;
  /** Called once when an operation returns, fails or is abandoned. */
  onSettled: ((h: HistoryOp) => void) | undefined;

  /** The history to check: every operation except those that certainly did not take effect. */
  get ops(): HistoryOp[] {
    return this.all.filter((h) => !this.failed.has(h));
  }

  now(): number {
    return ++this.seq;
  }

  call(op: Omit<HistoryOp, 'call' | 'ret'>): HistoryOp {
    const h: HistoryOp = { ...op, call: this.now(), ret: null };
    this.all.push(h);
    return h;
  }

  /** The operation certainly did not take effect: drop it. */
  fail(h: HistoryOp): void {
    if (this.abandoned.has(h) || this.failed.has(h) || h.ret !== null) return;
    this.failed.add(h);
    this.onSettled?.(h);
  }

  complete(h: HistoryOp, fields: Partial<HistoryOp>): void {
    if (this.abandoned.has(h) || this.failed.has(h) || h.ret !== null) return;
    Object.assign(h, fields);
    h.ret = this.now();
    this.onSettled?.(h);
  }

  /** The client stopped waiting (timeout): the outcome stays unknown. */
  abandon(h: HistoryOp): void {
    if (this.abandoned.has(h) || this.failed.has(h) || h.ret !== null) return;
    this.abandoned.add(h);
    this.onSettled?.(h);
  }
}
