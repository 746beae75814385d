/**
 * Safety properties the simulator checks after every step. Each failure throws
 * an InvariantError naming the property ("Patterns of Distributed Systems" /
 * Raft §5.4 names).
 */
import type { Entry, Replica } from '../../lib/core';

export class InvariantError extends Error {
  constructor(property: string, detail: string) {
    super(`invariant "${property}" broken: ${detail}`);
    this.name = 'InvariantError';
  }
}

/** Identity of an entry for comparisons: generation + payload. */
export function entryKey(e: Entry): string {
  return e.kind === 'noop' ? `${e.generation}/noop` : `${e.generation}/${String.fromCharCode(...e.data)}`;
}

export class Invariants {
  /** generation → the one node that led it. */
  private readonly leaders = new Map<number, string>();
  /** (index, generation) → payload key and generation of the previous index, from durable writes. */
  private readonly written = new Map<string, { key: string; prevGeneration: number }>();
  /** index → entry key of the entry committed there (below any node's high-water mark). */
  readonly committed = new Map<number, string>();
  /**
   * index → generation in which it was first seen committed (the committing leader's: the leader
   * moves its high-water mark before any follower can learn it).
   */
  readonly committedInGeneration = new Map<number, number>();
  /** index → entry key applied there by any node. */
  readonly applied = new Map<number, string>();
  /** index → state-machine hash after applying it. */
  readonly hashAt = new Map<number, number>();
  /** node → high-water mark seen in its current incarnation. */
  private readonly lastCommit = new Map<string, number>();
  maxCommitted = 0;
  checks = 0;

  /** At most one leader per generation (Generation Clock, Majority Quorum). */
  checkLeader(id: string, r: Replica, wasLeader: boolean): void {
    this.checks++;
    if (r.role !== 'leader') return;
    const other = this.leaders.get(r.generation);
    if (other !== undefined && other !== id) {
      throw new InvariantError('one leader per generation', `${other} and ${id} both lead generation ${r.generation}`);
    }
    if (other === undefined) this.leaders.set(r.generation, id);
    if (!wasLeader) this.checkLeaderCompleteness(id, r);
  }

  /**
   * Leader completeness (Raft §5.4.1): an entry committed in generation g is in the log of every
   * leader of a generation above g. (A leader of an older generation may still appear late, e.g.
   * a paused candidate counting stale votes; it cannot commit anything, and is not checked.)
   */
  private checkLeaderCompleteness(id: string, r: Replica): void {
    const first = r.status().firstIndex;
    for (let i = first; i <= this.maxCommitted; i++) {
      const want = this.committed.get(i);
      if (want === undefined) continue;
      if ((this.committedInGeneration.get(i) ?? 0) >= r.generation) continue;
      if (i > r.lastIndex) {
        throw new InvariantError('leader completeness', `new leader ${id} (g${r.generation}) lacks committed index ${i} (last ${r.lastIndex})`);
      }
      const got = entryKey(r.entries(i, i + 1)[0] as Entry);
      if (got !== want) {
        throw new InvariantError('leader completeness', `new leader ${id} has ${got} at committed index ${i}, expected ${want}`);
      }
    }
  }

  /** High-water mark never moves back (within one incarnation); committed entries never differ across nodes. */
  checkCommit(id: string, r: Replica): void {
    const before = this.lastCommit.get(id) ?? 0;
    const now = r.commit;
    if (r.applied > now) throw new InvariantError('nothing above the high-water mark is applied', `${id} applied ${r.applied} > ${now}`);
    if (now < before) throw new InvariantError('high-water mark never moves back', `${id} went from ${before} to ${now}`);
    if (now === before) return;
    this.lastCommit.set(id, now);
    const first = Math.max(before + 1, r.status().firstIndex);
    if (first <= now) {
      const es = r.entries(first, now + 1);
      for (const e of es) {
        const key = entryKey(e);
        const prev = this.committed.get(e.index);
        if (prev === undefined) {
          this.committed.set(e.index, key);
          this.committedInGeneration.set(e.index, r.generation);
        }
        else if (prev !== key) {
          throw new InvariantError('committed entries agree', `${id} committed ${key} at ${e.index}, another node ${prev}`);
        }
      }
    }
    if (now > this.maxCommitted) this.maxCommitted = now;
  }

  /** A restarted node starts from its durable high-water mark. */
  restarted(id: string, durableCommit: number): void {
    this.lastCommit.set(id, durableCommit);
  }

  /** Log matching: an (index, generation) pair identifies one entry and the whole prefix before it. */
  checkWritten(id: string, entries: readonly Entry[], prevGenerationOfFirst: number): void {
    let prevGen = prevGenerationOfFirst;
    for (const e of entries) {
      const k = `${e.index}/${e.generation}`;
      const key = entryKey(e);
      const seen = this.written.get(k);
      if (seen === undefined) this.written.set(k, { key, prevGeneration: prevGen });
      else if (seen.key !== key || seen.prevGeneration !== prevGen) {
        throw new InvariantError(
          'log matching',
          `${id} wrote ${key} after g${prevGen} at ${e.index}; elsewhere ${seen.key} after g${seen.prevGeneration}`,
        );
      }
      prevGen = e.generation;
    }
  }

  /** No two nodes apply different entries at one index; the state machines agree. */
  checkApplied(id: string, e: Entry, hashAfter: number): void {
    const key = entryKey(e);
    const prev = this.applied.get(e.index);
    if (prev === undefined) this.applied.set(e.index, key);
    else if (prev !== key) throw new InvariantError('state machine safety', `${id} applied ${key} at ${e.index}, another node ${prev}`);
    const h = this.hashAt.get(e.index);
    if (h === undefined) this.hashAt.set(e.index, hashAfter);
    else if (h !== hashAfter) throw new InvariantError('state machine safety', `${id} state hash at ${e.index} differs`);
  }

  /** A snapshot's state equals what every node computed at that index. */
  checkSnapshot(id: string, index: number, hash: number): void {
    const h = this.hashAt.get(index);
    if (h === undefined) this.hashAt.set(index, hash);
    else if (h !== hash) throw new InvariantError('snapshot safety', `${id} installed a snapshot at ${index} whose state differs`);
  }
}
