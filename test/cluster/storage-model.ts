/**
 * The model shared by storage-crash.test.ts and its child: a storage state (snapshot,
 * entries, hard state) as plain data, a seeded generator of Raft-shaped operations on it
 * (appends, conflicting-suffix overwrites above the commit, vote and generation changes,
 * compactions, snapshot installs), and the operation's effect on the model.
 */
import type { Entry, HardState, PersistWork, Snapshot } from '../../lib/core/types';
import type { RaftStorage } from '../../lib/cluster/storage';
import { Rng, mix32 } from '../helpers';

/** An entry as the model keeps it: its payload is a function of (index, generation, salt). */
export interface ModelEntry {
  readonly generation: number;
  readonly salt: number;
}
export interface ModelSnapshot {
  readonly index: number;
  readonly generation: number;
  readonly salt: number;
}
export interface ModelState {
  snapshot: ModelSnapshot | null;
  /** Entries snapshot index + 1 .. , in order. */
  entries: ModelEntry[];
  hardState: HardState;
}

export type Op =
  | { id: number; kind: 'persist'; snapshot: ModelSnapshot | null; first: number; entries: ModelEntry[]; hardState: HardState | null }
  | { id: number; kind: 'compact'; snapshot: ModelSnapshot };

export function payload(index: number, generation: number, salt: number): Buffer {
  const length = 1 + (mix32(index ^ Math.imul(salt, 31) ^ (generation << 20)) % 1500);
  const head = Buffer.from(`${index}/${generation}/${salt}|`);
  const out = Buffer.alloc(Math.max(length, head.length), 0x61 + (salt % 26));
  head.copy(out);
  return out;
}
export function snapshotData(index: number, salt: number): Buffer {
  return Buffer.from(`snapshot ${index} salt ${salt} `.repeat(1 + (salt % 50)));
}

export function snapIndex(m: ModelState): number {
  return m.snapshot?.index ?? 0;
}
export function lastIndex(m: ModelState): number {
  return snapIndex(m) + m.entries.length;
}
export function generationAt(m: ModelState, index: number): number | undefined {
  if (index === snapIndex(m)) return m.snapshot?.generation ?? 0;
  return m.entries[index - snapIndex(m) - 1]?.generation;
}
function lastGeneration(m: ModelState): number {
  return generationAt(m, lastIndex(m)) ?? 0;
}

/** The model of what a storage holds (read through its LogReader face). */
export function modelOf(s: RaftStorage): ModelState {
  const snap = s.snapshot();
  const entries: ModelEntry[] = [];
  if (s.lastIndex() >= s.firstIndex()) {
    for (const e of s.entries(s.firstIndex(), s.lastIndex() + 1, Number.MAX_SAFE_INTEGER)) {
      const text = Buffer.from(e.data).toString('latin1');
      const [idx, gen, salt] = (text.split('|')[0] ?? '').split('/').map(Number);
      if (idx !== e.index || gen !== e.generation || salt === undefined || !payload(e.index, e.generation, salt).equals(Buffer.from(e.data))) {
        throw new Error(`entry ${e.index} holds bytes no operation wrote: ${text.slice(0, 40)}`);
      }
      entries.push({ generation: e.generation, salt });
    }
  }
  let snapshot: ModelSnapshot | null = null;
  if (snap !== null) {
    const m = /^snapshot (\d+) salt (\d+) /.exec(Buffer.from(snap.data).toString());
    const salt = Number(m?.[2]);
    if (m === null || Number(m[1]) !== snap.meta.index || !snapshotData(snap.meta.index, salt).equals(Buffer.from(snap.data))) {
      throw new Error(`snapshot ${snap.meta.index} holds bytes no operation wrote`);
    }
    snapshot = { index: snap.meta.index, generation: snap.meta.generation, salt };
  }
  return { snapshot, entries, hardState: s.hardState() };
}

const VOTES = ['a', 'b', 'c', null] as const;

/** The next operation on `m` (does not change `m`). Honours the Raft rules the storage relies on. */
export function nextOp(rng: Rng, m: ModelState, id: number, commit: number): Op {
  const last = lastIndex(m);
  const si = snapIndex(m);
  const hs = m.hardState;
  const gen = Math.max(hs.generation, lastGeneration(m), 1);
  const salt = rng.int(0, 1_000_000);
  const r = rng.float();
  const bump = (g: number): HardState => ({ generation: g, votedFor: rng.pick(VOTES), commit: 0 });
  const withCommit = (h: HardState, maxCommit: number): HardState => ({ ...h, commit: Math.max(commit, rng.int(commit, Math.max(commit, maxCommit))) });
  const run = (n: number, g: number): ModelEntry[] => Array.from({ length: n }, (_, i) => ({ generation: g, salt: salt + i }));
  if (r < 0.55) {
    const n = rng.int(1, 24);
    const h = rng.chance(0.3) ? bump(gen + 1) : rng.chance(0.5) ? { ...hs, generation: gen } : null;
    const g = h?.generation ?? gen;
    return { id, kind: 'persist', snapshot: null, first: last + 1, entries: run(n, g), hardState: h === null ? null : withCommit(h, last + n) };
  }
  const floor = Math.max(commit, si);
  if (r < 0.72 && last > floor) {
    const first = rng.int(floor + 1, last);
    const n = rng.int(1, 24);
    const h = bump(gen + 1);
    return { id, kind: 'persist', snapshot: null, first, entries: run(n, gen + 1), hardState: withCommit(h, first + n - 1) };
  }
  if (r < 0.82) {
    const h = rng.chance(0.5) ? bump(gen + 1) : { ...hs, generation: Math.max(hs.generation, 1) };
    return { id, kind: 'persist', snapshot: null, first: last + 1, entries: [], hardState: withCommit(h, last) };
  }
  const compactTo = Math.min(commit, last);
  if (r < 0.92 && compactTo > si) {
    const index = rng.int(si + 1, compactTo);
    return { id, kind: 'compact', snapshot: { index, generation: generationAt(m, index) as number, salt } };
  }
  // Snapshot install: beyond the commit, inside or past the log, at a newer generation.
  const index = rng.chance(0.3) && last > floor ? rng.int(floor + 1, last) : last + rng.int(1, 40);
  const sg = gen + 1;
  const n = rng.int(0, 8);
  const h: HardState = { ...bump(sg), commit: index };
  return { id, kind: 'persist', snapshot: { index, generation: sg, salt }, first: index + 1, entries: run(n, sg), hardState: h };
}

/** `m` after `op` completed. */
export function applyOp(m: ModelState, op: Op): ModelState {
  if (op.kind === 'compact') {
    const drop = op.snapshot.index - snapIndex(m);
    return { snapshot: op.snapshot, entries: m.entries.slice(drop), hardState: m.hardState };
  }
  let snapshot = m.snapshot;
  let entries = m.entries;
  if (op.snapshot !== null) {
    snapshot = op.snapshot;
    entries = [];
  }
  if (op.entries.length > 0) {
    const keep = op.first - (snapshot?.index ?? 0) - 1;
    entries = entries.slice(0, keep).concat(op.entries);
  }
  return { snapshot, entries, hardState: op.hardState ?? m.hardState };
}

/** The PersistWork (or snapshot for compact) of `op`. */
export function persistWorkOf(op: Extract<Op, { kind: 'persist' }>): PersistWork {
  const snapshot: Snapshot | null =
    op.snapshot === null ? null : { meta: { index: op.snapshot.index, generation: op.snapshot.generation }, data: snapshotData(op.snapshot.index, op.snapshot.salt) };
  const entries: Entry[] = op.entries.map((e, i) => ({ index: op.first + i, generation: e.generation, kind: 'normal', data: payload(op.first + i, e.generation, e.salt) }));
  return { snapshot, entries, hardState: op.hardState };
}
export function snapshotOf(s: ModelSnapshot): Snapshot {
  return { meta: { index: s.index, generation: s.generation }, data: snapshotData(s.index, s.salt) };
}
