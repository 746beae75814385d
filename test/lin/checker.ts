/**
 * A linearizability checker for key-value histories (Wing & Gong's search with
 * Lowe's memoization, as in Knossos and Porcupine), split per key (P-compositionality:
 * a history is linearizable iff each key's sub-history is).
 *
 * The model: every key is an independent register holding a string or nothing (absent),
 * absent at the start unless {@link CheckOptions.initial} says otherwise.
 *
 * - `put(key, value)`: sets it; `del(key)`: makes it absent;
 * - `get(key)`: reads it (`result`: the value, or null when absent);
 * - `cas(key, expected, value)`: if it holds `expected` (null: absent), sets `value` and
 *   answers `ok: true`, else changes nothing and answers `ok: false`.
 *
 * Each operation carries the client's call time and return time, on one clock shared by
 * every client (simulated steps, a global event counter, or `process.hrtime` of one
 * observer). Operation A precedes B in real time iff `A.ret < B.call`; equal times count
 * as concurrent. An operation whose outcome the client never learnt (timeout, the server
 * crashed, the connection dropped) has `ret: null`: it may take effect at any single
 * instant after its call, or never. Operations that certainly did not take effect
 * (refused before they were sent, or answered "not applied") must be left out, or given
 * `ok: false` for put/del/get (such entries are skipped).
 *
 * Used by the simulator (test/sim) and meant for real-process cluster histories too.
 *
 * @example
 * ```ts
 * const res = checkLinearizable([
 *   { key: 'x', op: 'put', value: '1', call: 0, ret: 2, ok: true },
 *   { key: 'x', op: 'get', call: 3, ret: 4, ok: true, result: '1' },
 *   { key: 'x', op: 'put', value: '2', call: 5, ret: null },          // unknown outcome
 * ]);
 * if (!res.ok) throw new Error(res.failure?.message);
 * ```
 *
 * @packageDocumentation
 */

/** Operations of the register model. */
export type KvOpKind = 'put' | 'get' | 'cas' | 'del';

/** One client operation of a key-value history. */
export interface KvOperation {
  /** The register the operation acts on. */
  readonly key: string;
  readonly op: KvOpKind;
  /** put: the value written; cas: the value written if the comparison holds. */
  readonly value?: string;
  /** cas: the value compared against (null or omitted: "absent"). */
  readonly expected?: string | null;
  /** When the client called, on the history's shared clock. */
  readonly call: number;
  /** When the client learnt the outcome; null: never (unknown outcome). Must be ≥ call. */
  readonly ret: number | null;
  /**
   * Known outcomes only. cas: true if it swapped, false if the comparison failed.
   * put/del/get: true (false means "certainly did not take effect": the entry is skipped).
   */
  readonly ok?: boolean;
  /** get with a known outcome: the value read, null when absent. */
  readonly result?: string | null;
  /** Optional label, echoed in failure messages. */
  readonly id?: string;
}

/** Options of {@link checkLinearizable}. */
export interface CheckOptions {
  /** Values at the start, per key (default: every key absent). */
  readonly initial?: ReadonlyMap<string, string | null>;
  /**
   * Search states explored per key before giving up on it as inconclusive (default 2,000,000).
   * An inconclusive key is neither a pass nor a failure: see {@link CheckResult.inconclusive}.
   */
  readonly maxStatesPerKey?: number;
}

/** Why a key's history is not linearizable. */
export interface LinearizabilityFailure {
  readonly key: string;
  /** The key's operations as checked (sorted by call time). */
  readonly ops: readonly KvOperation[];
  /**
   * An operation with a known outcome that no order explored could place: the return the
   * deepest search reached, with the state it saw. A hint, not a proof of minimality.
   */
  readonly stuckAt: KvOperation | null;
  readonly message: string;
}

/** Outcome of {@link checkLinearizable}. */
export interface CheckResult {
  /** True when no key failed (inconclusive keys do not fail). */
  readonly ok: boolean;
  /** Keys checked. */
  readonly keys: number;
  /** Operations checked (after dropping certain failures and unknown gets). */
  readonly ops: number;
  /** Operations with unknown outcome among them. */
  readonly unknown: number;
  /** Keys whose search exceeded the state budget (neither proven nor refuted). */
  readonly inconclusive: readonly string[];
  /** Search states explored, all keys. */
  readonly states: number;
  /** The first failing key (in key order), if any. */
  readonly failure?: LinearizabilityFailure;
}

type Value = string | null;

interface ListNode {
  /** Index into the key's ops; the call node and the return node share it. */
  readonly op: number;
  readonly isCall: boolean;
  readonly time: number;
  /** Call nodes: their return node (null: unknown outcome). */
  match: ListNode | null;
  prev: ListNode | null;
  next: ListNode | null;
}

function describeOp(o: KvOperation): string {
  const label = o.id !== undefined ? `${o.id} ` : '';
  const when = `[${o.call}, ${o.ret === null ? '?' : o.ret}]`;
  switch (o.op) {
    case 'put':
      return `${label}put(${o.key}, ${JSON.stringify(o.value)}) ${when}`;
    case 'del':
      return `${label}del(${o.key}) ${when}`;
    case 'get':
      return `${label}get(${o.key}) → ${o.ret === null ? '?' : JSON.stringify(o.result ?? null)} ${when}`;
    case 'cas':
      return `${label}cas(${o.key}, ${JSON.stringify(o.expected ?? null)} → ${JSON.stringify(o.value)}) = ${o.ret === null ? '?' : String(o.ok)} ${when}`;
  }
}

function validate(o: KvOperation, i: number): void {
  const where = `history entry ${i} (${o.id ?? o.op})`;
  if (typeof o.key !== 'string') throw new TypeError(`${where}: key must be a string`);
  if (!['put', 'get', 'cas', 'del'].includes(o.op)) throw new TypeError(`${where}: unknown op ${String(o.op)}`);
  if (!Number.isFinite(o.call)) throw new TypeError(`${where}: call must be a finite number`);
  if (o.ret !== null && (!Number.isFinite(o.ret) || o.ret < o.call)) throw new TypeError(`${where}: ret must be null or a number ≥ call`);
  if ((o.op === 'put' || o.op === 'cas') && typeof o.value !== 'string') throw new TypeError(`${where}: ${o.op} needs a string value`);
  if (o.op === 'cas' && o.ret !== null && typeof o.ok !== 'boolean') throw new TypeError(`${where}: a cas with a known outcome needs ok`);
  if (o.op === 'get' && o.ret !== null && o.ok !== false && o.result === undefined) throw new TypeError(`${where}: a get with a known outcome needs result`);
}

/** The register model: is `o` consistent with state `s`, and the state after it. */
function step(s: Value, o: KvOperation): { valid: boolean; next: Value } {
  switch (o.op) {
    case 'put':
      return { valid: true, next: o.value as string };
    case 'del':
      return { valid: true, next: null };
    case 'get':
      return { valid: o.ret === null || (o.result ?? null) === s, next: s };
    case 'cas': {
      const holds = s === (o.expected ?? null);
      if (o.ret !== null && o.ok !== holds) return { valid: false, next: s };
      return { valid: true, next: holds ? (o.value as string) : s };
    }
  }
}

/** Result of one key's search. */
type KeyOutcome = { kind: 'ok'; states: number } | { kind: 'fail'; states: number; stuckAt: KvOperation | null } | { kind: 'inconclusive'; states: number };

/**
 * Wing–Gong–Lowe search over one register's history.
 *
 * Unknown-outcome blind writes (put/del with `ret: null`) are not placed on their own: in any
 * linearization such a write is either followed (ignoring nothing, since every operation reads
 * or writes the register) by an operation that observes its value (get or cas), or it can be
 * dropped (it may never have taken effect). So the search places one only as a compound move
 * "unknown write, then the get/cas that observes it". Unknown writes of the same op and value
 * are interchangeable once called, so the memo key counts them per class instead of by identity.
 */
function checkKey(ops: readonly KvOperation[], initial: Value, maxStates: number): KeyOutcome {
  const n = ops.length;
  if (n === 0) return { kind: 'ok', states: 0 };
  const blind = ops.map((o) => o.ret === null && (o.op === 'put' || o.op === 'del'));
  const classOf = new Map<string, number>();
  const cls = ops.map((o, i) => {
    if (!blind[i]) return -1;
    const k = `${o.op}|${o.value ?? ''}`;
    let c = classOf.get(k);
    if (c === undefined) classOf.set(k, (c = classOf.size));
    return c;
  });
  const usedPerClass = new Array<number>(classOf.size).fill(0);
  const bump = (w: number, by: number): void => {
    const c = cls[w] as number;
    usedPerClass[c] = (usedPerClass[c] as number) + by;
    used[w] = by > 0;
  };
  // Events in time order; at equal times calls come first (equal times are concurrent).
  const nodes: ListNode[] = [];
  const calls: ListNode[] = [];
  // Unknown blind writes stay out of the list: they are placed only through compound moves.
  const blindOps: number[] = [];
  const used = new Array<boolean>(n).fill(false);
  for (let i = 0; i < n; i++) {
    const o = ops[i] as KvOperation;
    if (blind[i]) {
      blindOps.push(i);
      continue;
    }
    const c: ListNode = { op: i, isCall: true, time: o.call, match: null, prev: null, next: null };
    calls.push(c);
    nodes.push(c);
    if (o.ret !== null) {
      const r: ListNode = { op: i, isCall: false, time: o.ret, match: null, prev: null, next: null };
      c.match = r;
      nodes.push(r);
    }
  }
  nodes.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));
  const head: ListNode = { op: -1, isCall: false, time: -Infinity, match: null, prev: null, next: null };
  let prev = head;
  for (const x of nodes) {
    prev.next = x;
    x.prev = prev;
    prev = x;
  }
  let returnsLeft = nodes.length - calls.length;
  blindOps.sort((a, b) => (ops[a] as KvOperation).call - (ops[b] as KvOperation).call);

  const lift = (c: ListNode): void => {
    (c.prev as ListNode).next = c.next;
    if (c.next !== null) c.next.prev = c.prev;
    const r = c.match;
    if (r !== null) {
      (r.prev as ListNode).next = r.next;
      if (r.next !== null) r.next.prev = r.prev;
      returnsLeft--;
    }
  };
  const unlift = (c: ListNode): void => {
    const r = c.match;
    if (r !== null) {
      (r.prev as ListNode).next = r;
      if (r.next !== null) r.next.prev = r;
      returnsLeft++;
    }
    (c.prev as ListNode).next = c;
    if (c.next !== null) c.next.prev = c;
  };

  const bits = new Uint32Array(Math.ceil(n / 32));
  const setBit = (i: number, on: boolean): void => {
    const w = i >>> 5;
    const bit = 1 << (i & 31);
    bits[w] = on ? (bits[w] as number) | bit : (bits[w] as number) & ~bit;
  };
  const seen = new Set<string>();
  const memoKey = (s: Value): string => `${bits.join(',')}|${usedPerClass.join(',')}|${s === null ? '\u0000' : s}`;

  /** Unused unknown blind writes called by the first remaining return, one per class (the earliest). */
  const availableWrites = (): number[] => {
    let frontier = Infinity;
    for (let x = head.next; x !== null; x = x.next) {
      if (!x.isCall) {
        frontier = x.time;
        break;
      }
    }
    const out: number[] = [];
    const taken = new Set<number>();
    for (const w of blindOps) {
      if ((ops[w] as KvOperation).call > frontier) break;
      const c = cls[w] as number;
      if (!used[w] && !taken.has(c)) {
        taken.add(c);
        out.push(w);
      }
    }
    return out;
  };

  interface Frame {
    readonly node: ListNode;
    /** The unknown write (op index) placed just before it, or -1. */
    readonly write: number;
    /** Which candidate (0: none, k: the k-th available write) this frame used. */
    readonly candidate: number;
    readonly state: Value;
  }
  const stack: Frame[] = [];
  let state: Value = initial;
  let entry: ListNode | null = head.next;
  let firstCandidate = 0;
  let deepest = -1;
  let stuckAt: KvOperation | null = null;

  while (returnsLeft > 0) {
    if (entry !== null && entry.isCall) {
      const o = ops[entry.op] as KvOperation;

      const observes = o.op === 'get' || o.op === 'cas';
      const writes = observes ? availableWrites() : [];
      let placed = false;
      for (let k = firstCandidate; k <= writes.length && !placed; k++) {
        const w = k === 0 ? -1 : (writes[k - 1] as number);
        const before = w < 0 ? state : step(state, ops[w] as KvOperation).next;
        // An unknown cas whose comparison fails is a no-op: leaving it for later dominates placing it.
        if (o.ret === null && o.op === 'cas' && before !== (o.expected ?? null)) continue;
        const { valid, next } = step(before, o);
        if (!valid) continue;
        setBit(entry.op, true);
        if (w >= 0) bump(w, 1);
        const key = memoKey(next);
        if (!seen.has(key)) {
          seen.add(key);
          if (seen.size > maxStates) return { kind: 'inconclusive', states: seen.size };
          stack.push({ node: entry, write: w, candidate: k, state });
          state = next;
          lift(entry);

          placed = true;
        } else {
          setBit(entry.op, false);
          if (w >= 0) bump(w, -1);
        }
      }
      firstCandidate = 0;
      entry = placed ? head.next : entry.next;
      continue;
    }
    // A return (or the end) before every operation before it was placed: backtrack.
    if (stack.length > deepest && entry !== null) {
      deepest = stack.length;
      stuckAt = ops[entry.op] as KvOperation;
    }
    const top = stack.pop();
    if (top === undefined) return { kind: 'fail', states: seen.size, stuckAt };
    state = top.state;
    if (top.write >= 0) bump(top.write, -1);
    unlift(top.node);
    setBit(top.node.op, false);
    // Retry the same operation with the next candidate write before moving on.
    entry = top.node;
    firstCandidate = top.candidate + 1;
  }
  return { kind: 'ok', states: seen.size };
}

/**
 * Checks a key-value history for linearizability against the register model above.
 * Throws TypeError on a malformed entry (missing value, ret before call, ...).
 */
export function checkLinearizable(history: readonly KvOperation[], options: CheckOptions = {}): CheckResult {
  const maxStates = options.maxStatesPerKey ?? 2_000_000;
  const byKey = new Map<string, KvOperation[]>();
  let count = 0;
  let unknown = 0;
  history.forEach((o, i) => {
    validate(o, i);
    if (o.ret !== null && o.ok === false && o.op !== 'cas') return; // certainly did not happen
    if (o.ret === null && o.op === 'get') return; // an unanswered read constrains nothing
    let list = byKey.get(o.key);
    if (list === undefined) byKey.set(o.key, (list = []));
    list.push(o);
    count++;
    if (o.ret === null) unknown++;
  });
  const inconclusive: string[] = [];
  let states = 0;
  let failure: LinearizabilityFailure | undefined;
  for (const key of [...byKey.keys()].sort()) {
    const ops = (byKey.get(key) as KvOperation[]).sort((a, b) => a.call - b.call);
    const res = checkKey(ops, options.initial?.get(key) ?? null, maxStates);
    states += res.states;
    if (res.kind === 'inconclusive') inconclusive.push(key);
    else if (res.kind === 'fail' && failure === undefined) {
      const shown = ops.length <= 40 ? ops.map(describeOp).join('\n  ') : `${ops.length} operations (first 40)\n  ${ops.slice(0, 40).map(describeOp).join('\n  ')}`;
      failure = {
        key,
        ops,
        stuckAt: res.stuckAt,
        message: `history of key ${JSON.stringify(key)} is not linearizable${res.stuckAt !== null ? `; no order places ${describeOp(res.stuckAt)}` : ''}:\n  ${shown}`,
      };
    }
  }
  return { ok: failure === undefined, keys: byKey.size, ops: count, unknown, inconclusive, states, ...(failure !== undefined ? { failure } : {}) };
}

/** One line per operation, for traces and failure reports. */
export function describeHistory(history: readonly KvOperation[]): string {
  return history.map(describeOp).join('\n');
}
