/**
 * Client histories of the real-process tests, in the per-key register shape the
 * linearizability checker reads: every operation with its call time, its return
 * time (monotonic ms), its result, and whether its outcome is known. An operation
 * that failed with `not-applied` certainly did not happen; one whose outcome is
 * unknown (TM_UNKNOWN_OUTCOME, a timeout, a dropped connection) may have taken
 * effect at any time after its call, so it never returns.
 */
import { performance } from 'node:perf_hooks';
import type { KvOperation } from '../lin/checker';

/** A register operation on one key. `null` value = absent. */
export type KvOp =
  | { readonly kind: 'put'; readonly key: string; readonly value: string }
  | { readonly kind: 'get'; readonly key: string }
  | { readonly kind: 'cas'; readonly key: string; readonly expected: string | null; readonly value: string }
  | { readonly kind: 'del'; readonly key: string };

/** One completed (or abandoned) operation. */
export interface HistoryEvent {
  /** Which logical client issued it (one operation at a time per client). */
  readonly client: number;
  readonly op: KvOp;
  /** performance.now() when the call was made. */
  readonly call: number;
  /** performance.now() when it returned; null when its outcome is unknown. */
  readonly ret: number | null;
  /** 'ok': it happened with `result`; 'fail': it certainly did not happen; 'unknown': maybe. */
  readonly outcome: 'ok' | 'fail' | 'unknown';
  /** get: the value read (null = absent); cas: whether it swapped; put/del: undefined. */
  readonly result?: string | null | boolean;
  /** Error code, for fail/unknown. */
  readonly code?: string;
}

/** Classifies a thrown error: definitely not applied, or unknown. */
export type Classifier = (err: unknown) => { outcome: 'fail' | 'unknown'; code: string };

/** Records operations as they run. */
export class HistoryRecorder {
  readonly events: HistoryEvent[] = [];

  constructor(private readonly classify: Classifier) {}

  /** Runs `fn` as `op` of `client`, records it, and returns its result (or undefined if it threw). */
  async run<T extends string | null | boolean | undefined>(client: number, op: KvOp, fn: () => Promise<T>): Promise<{ ok: true; result: T } | { ok: false; outcome: 'fail' | 'unknown'; code: string }> {
    const call = performance.now();
    try {
      const result = await fn();
      const ret = performance.now();
      this.events.push(result === undefined ? { client, op, call, ret, outcome: 'ok' } : { client, op, call, ret, outcome: 'ok', result });
      return { ok: true, result };
    } catch (err) {
      const { outcome, code } = this.classify(err);
      // A read that failed changed nothing, whatever the reason: record it as failed.
      const o = op.kind === 'get' ? 'fail' : outcome;
      this.events.push({ client, op, call, ret: o === 'unknown' ? null : performance.now(), outcome: o, code });
      return { ok: false, outcome: o, code };
    }
  }

  /** The events of one key, by call time. */
  byKey(): Map<string, HistoryEvent[]> {
    const m = new Map<string, HistoryEvent[]>();
    for (const e of this.events) {
      const list = m.get(e.op.key) ?? [];
      list.push(e);
      m.set(e.op.key, list);
    }
    for (const list of m.values()) list.sort((a, b) => a.call - b.call);
    return m;
  }

  /**
   * The history in the checker's shape (test/lin/checker.ts `KvOperation`): certain
   * failures left out, unknown outcomes with `ret: null`.
   */
  toLinOps(): KvOperation[] {
    const out: KvOperation[] = [];
    this.events.forEach((e, i) => {
      if (e.outcome === 'fail') return;
      const base = { key: e.op.key, op: e.op.kind, call: e.call, ret: e.ret, id: `c${e.client}#${i}` };
      if (e.op.kind === 'put') out.push({ ...base, value: e.op.value, ...(e.outcome === 'ok' ? { ok: true } : {}) });
      else if (e.op.kind === 'del') out.push({ ...base, ...(e.outcome === 'ok' ? { ok: true } : {}) });
      else if (e.op.kind === 'cas') out.push({ ...base, value: e.op.value, expected: e.op.expected, ...(e.outcome === 'ok' ? { ok: e.result === true } : {}) });
      else if (e.outcome === 'ok') out.push({ ...base, ok: true, result: (e.result as string | null | undefined) ?? null });
    });
    return out;
  }

  /** Counts by outcome. */
  summary(): { ok: number; fail: number; unknown: number } {
    const s = { ok: 0, fail: 0, unknown: 0 };
    for (const e of this.events) s[e.outcome]++;
    return s;
  }
}
