/**
 * Safety properties the simulator checks after every step. Each failure throws
 * an InvariantError naming the property ("Patterns of Distributed Systems" /
 * Raft §5.4 names).
 */
import type { Entry, LogReader, Replica } from '../../lib/core';

export class InvariantError extends Error {
  constructor(property: string, detail: string) {
    super(`invariant "${property}" broken: ${detail}`);
    this.name = 'InvariantError';
  }
}

const keys = new WeakMap<Entry, string>();

/** Identity of an entry for comparisons: generation + payload (cached per entry object). */
export function entryKey(e: Entry): string {
  let k = keys.get(e);
  if (k === undefined) {
    k = e.kind === 'noop' ? `${e.generation}/noop` : `${e.generation}/${String.fromCharCode(...e.data)}`;
    keys.set(e, k);
  }
  return k;
}

export class Invariants {
  /** generation → the one node that led it. */
  private readonly leaders = new Map<number, string>();
  /** (index, generation) → payload key and generation of the previous index, from durable writes. */
  private readonly written = new Map<string, { key: string; prevGeneration: number }>();
  /** index → entry key some node saw committed there (below its high-water mark). */
  readonly committed = new Map<number, string>();
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
   * Leader completeness (Raft §5.4.1) against the ground truth: every entry a majority held
   * durably in its own generation (see {@link Invariants.held}) is in the log of every leader of
   * a later generation. (A leader of an older generation may still appear late, e.g. a paused
   * candidate counting stale votes; it cannot commit anything, and is not checked.)
   */
  private checkLeaderCompleteness(id: string, r: Replica): void {
    const first = r.status().firstIndex;
    for (let i = first; i <= this.truthMax; i++) {
      const want = this.truth.get(i);
      if (want === undefined) continue;
      if ((this.truthGeneration.get(i) ?? 0) >= r.generation) continue;
      if (i > r.lastIndex) {
        throw new InvariantError('leader completeness', `new leader ${id} (g${r.generation}) lacks index ${i} that a majority held durably (last ${r.lastIndex})`);
      }
      const got = entryKey(r.entries(i, i + 1)[0] as Entry);
      if (got !== want) {
        throw new InvariantError('leader completeness', `new leader ${id} (g${r.generation}) has ${got} at ${i}; a majority held ${want} durably there`);
      }
    }
  }

  // ---- ground truth: what is committed, from durable state alone -----------------------

  /** generation → candidate → voters that durably stored a vote for it in that generation (ever). */
  private readonly durableVotes = new Map<number, Map<string, Set<string>>>();

  /** `voter`'s durable hard state now says it voted for `candidate` in `generation`. */
  votedDurably(voter: string, generation: number, candidate: string | null): void {
    if (candidate === null) return;
    let g = this.durableVotes.get(generation);
    if (g === undefined) this.durableVotes.set(generation, (g = new Map()));
    // One vote per voter per generation, across crashes (Raft §5.2: the vote survives a restart).
    for (const [other, voters] of g) {
      if (other !== candidate && voters.has(voter)) {
        throw new InvariantError('one durable vote per generation', `${voter} durably voted for ${other} and then for ${candidate} in generation ${generation}`);
      }
    }
    let set = g.get(candidate);
    if (set === undefined) g.set(candidate, (set = new Set()));
    set.add(voter);
  }

  /**
   * Election safety from durable state (Raft §5.2, Generation Clock): a node that leads generation g
   * was voted for in g by a majority whose votes were durable (its own included) by then.
   */
  checkElected(id: string, generation: number): void {
    const n = this.durableVotes.get(generation)?.get(id)?.size ?? 0;
    if (n < this.quorum) {
      throw new InvariantError('a leader holds a majority of durable votes', `${id} leads generation ${generation} with ${n} durable votes for it (need ${this.quorum})`);
    }
  }

  /** Cluster size, for the majority. */
  quorum = 2;
  /** generation → node → highest index it held durably (with that generation) while in that generation. */
  private readonly inGeneration = new Map<number, Map<string, number>>();
  /** index → entry key committed there, by the ground truth (prefix-closed, grows only). */
  readonly truth = new Map<number, string>();
  /** index → the generation whose majority first made it committed. */
  readonly truthGeneration = new Map<number, number>();
  /** Highest index committed by the ground truth. */
  truthMax = 0;

  /**
   * Evidence that `id` durably holds the entry (`index`, `generation`) and was in
   * `generation` when it did (it acknowledged it in that generation, or its durable hard
   * state says that generation). By Raft's commitment rule (§5.4.2) an entry of generation g
   * held so by a majority is committed, and so is every entry before it in that log. (An entry
   * a majority holds that some of them received in a later generation is not: Raft Figure 8.)
   * `log` is that node's durable log, read for the keys of the newly committed prefix.
   */
  held(id: string, index: number, generation: number, log: LogReader): void {
    let m = this.inGeneration.get(generation);
    if (m === undefined) this.inGeneration.set(generation, (m = new Map()));
    if ((m.get(id) ?? 0) >= index) return;
    m.set(id, index);
    if (m.size < this.quorum) return;
    const sorted = [...m.values()].sort((a, b) => b - a);
    const c = sorted[this.quorum - 1] as number;
    if (c <= this.truthMax) return;
    // The reporter holds index ≥ c of this generation, so its durable log holds the committed prefix.
    const from = Math.max(log.firstIndex(), this.truthMax);
    if (from <= c && from >= 1) {
      const es = log.entries(from, c + 1, Number.MAX_SAFE_INTEGER);
      for (const e of es) {
        const key = entryKey(e);
        const prev = this.truth.get(e.index);
        if (prev !== undefined && prev !== key) {
          throw new InvariantError('committed entries never change', `index ${e.index} was committed as ${prev}; now a majority of generation ${generation} holds ${key} before ${c}`);
        }
        if (prev === undefined) {
          this.truth.set(e.index, key);
          this.truthGeneration.set(e.index, generation);
        }
      }
    }
    this.truthMax = c;
  }

  /** A node's high-water mark or applied entry is committed by the ground truth. */
  private checkTruth(what: string, id: string, e: Entry): void {
    const key = entryKey(e);
    if (e.index > this.truthMax) {
      throw new InvariantError(`${what} only what a majority holds durably`, `${id} at ${e.index} (${key}); the ground truth has committed only up to ${this.truthMax}`);
    }
    const t = this.truth.get(e.index);
    if (t !== undefined && t !== key) throw new InvariantError(`${what} only committed entries`, `${id} has ${key} at ${e.index}, committed was ${t}`);
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
        this.checkTruth('commit', id, e);
        const prev = this.committed.get(e.index);
        if (prev === undefined) this.committed.set(e.index, key);
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

  /** No two nodes ever apply different entries at one index (across crashes); the state machines agree. */
  checkApplied(id: string, e: Entry, hashAfter: number): void {
    this.checkTruth('apply', id, e);
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
