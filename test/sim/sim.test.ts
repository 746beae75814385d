/**
 * The seeded simulator in CI: seeds 1..500 here, 501..1000 in sim-more.test.ts
 * (two files so vitest runs them in parallel), 2,000 steps each plus the
 * liveness phase, N = 3 (even seeds) and N = 5 (odd seeds), across the fault mix
 * drawn per seed (drops, duplicates, delays, partitions, crashes losing unsynced
 * writes, slow syncs, pauses, compaction, leadership transfers).
 * A failure prints its seed and `npm run sim -- --seed S --steps M`.
 */
import { describe, expect, it } from 'vitest';
import { PINNED_SEEDS } from './seeds';
import { CI_STEPS, range, runSeeds } from './shard';
import { SCHEDULES, Simulator } from './simulator';

describe('simulator: seeds 1..500', () => {
  for (let shard = 0; shard < 5; shard++) {
    const first = 1 + shard * 100;
    it(`seeds ${first}..${first + 99} × ${CI_STEPS} steps`, () => {
      const { failures } = runSeeds(range(first, 100), CI_STEPS);
      expect(failures, failures.join('\n\n')).toEqual([]);
    });
  }
});

describe('simulator: pinned regression seeds', () => {
  for (const p of PINNED_SEEDS) {
    it(`seed ${p.seed}: ${p.what.slice(0, 80)}…`, () => {
      const res = new Simulator({ seed: p.seed, steps: p.steps, ...(p.nodes !== undefined ? { nodes: p.nodes } : {}) }).run();
      expect(res.ok, `${res.error}\nreplay: ${res.replay}`).toBe(true);
    });
  }
});

describe('simulator: itself', () => {
  it('is deterministic: the same seed gives the same run', () => {
    const a = new Simulator({ seed: 4242, steps: 1500 }).run();
    const b = new Simulator({ seed: 4242, steps: 1500 }).run();
    expect(a.ok).toBe(true);
    expect(b.stats).toEqual(a.stats);
  });

  it('exercises the faults it claims (aggregate over 100 seeds)', () => {
    const { results } = runSeeds(range(20_001, 100), CI_STEPS);
    const sum = (k: string): number => results.reduce((n, r) => n + (r.stats[k] ?? 0), 0);
    for (const k of [
      'crashes',
      'crashesAfterSend',
      'pauses',
      'queuedWhilePaused',
      'partitions',
      'dropped',
      'duplicated',
      'delayedLong',
      'heldAtCut',
      'replayed',
      'split',
      'retransmits',
      'snapshotsInstalled',
      'transfers',
      'transfersCompleted',
      'readsServed',
      'readsLocal',
      'elections',
      'stepDowns',
      'acked',
      'refused',
      'historyOps',
      'historyUnknown',
      'deposedReads',
      'staleAcks',
    ]) {
      expect(sum(k), k).toBeGreaterThan(0);
    }
    for (const s of new Set(SCHEDULES)) expect(results.filter((r) => r.schedule === s).length, s).toBeGreaterThan(0);
    // The linearizability check decides nearly every history (an inconclusive key is not a pass).
    expect(sum('historyInconclusive')).toBeLessThanOrEqual(2);
    expect(results.filter((r) => r.nodes === 3).length).toBeGreaterThan(0);
    expect(results.filter((r) => r.nodes === 5).length).toBeGreaterThan(0);
  });

  it('without faults, commits nearly every proposal', () => {
    const res = new Simulator({ seed: 7, steps: 2000, noFaults: true }).run();
    expect(res.ok, res.error).toBe(true);
    expect(res.stats.crashes).toBe(0);
    expect(res.stats.acked ?? 0).toBeGreaterThan(0.9 * (res.stats.proposed ?? 0));
  });
});
