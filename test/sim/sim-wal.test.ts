/**
 * Native-Wal mode of the simulator (wal-mirror.ts): every node runs over a real RaftStorage on
 * the native Wal (through the faults addon), every crash is a power loss of that Wal (unsynced
 * writes rolled back, the write in flight torn at a seeded byte), and a restarted node runs from
 * what RaftStorage recovered. The simulator's invariants must hold; each recovery must equal the
 * node's durable log (plus a prefix of the write in flight); at the end every storage reopens to
 * exactly the node's log. Planted adapter bugs (wal-mutants.ts) must make a seed fail, through
 * the Raft invariants alone.
 *
 * CI: seeds 1, 2, 3, 5, 11 × 2,000 steps; TIDEMARK_SIM_WAL_SEEDS=N runs seeds 1..N instead.
 */
import { describe, expect, it } from 'vitest';
import { Simulator } from './simulator';
import { WalMirrors, type WalModeOptions, type WalMirror } from './wal-mirror';
import { STORAGE_MUTANTS, loadMutant } from './wal-mutants';

const extra = Number(process.env.TIDEMARK_SIM_WAL_SEEDS ?? 0);
// 1 and 11: stale-acks (5 nodes: crashes, truncated tails, compactions); 2: crash-before-persist
// (crashes with writes in flight); 3: one-entry-appends (a snapshot install); 5: paused-leader.
const CI_SEEDS = [1, 2, 3, 5, 11];
const seeds = extra > 0 ? Array.from({ length: extra }, (_, i) => i + 1) : CI_SEEDS;

async function runOverWal(seed: number, mode: WalModeOptions = {}): Promise<{ res: ReturnType<Simulator['run']>; sim: Simulator; mirrors: WalMirrors; recovery: string[] }> {
  const mirrors = new WalMirrors(mode);
  try {
    const sim = new Simulator({ seed, steps: 2000, storage: mirrors.create });
    const res = await sim.runAsync(mirrors.settle);
    const recovery: string[] = [];
    if (res.ok) {
      await mirrors.drain();
      for (const m of mirrors.all) for (const d of await m.verifyRecovery()) recovery.push(`${m.dir}: ${d}`);
    }
    return { res, sim, mirrors, recovery };
  } finally {
    await mirrors.remove();
  }
}

describe('simulator over the native Wal (power loss at crashes, restarts from the recovered Wal)', () => {
  const totals = { writes: 0, powerLosses: 0, inFlightLanded: 0, recoveredMore: 0 };
  for (const seed of seeds) {
    it(`seed ${seed}: the invariants hold and every node's Wal recovers its durable log`, async () => {
      const { res, mirrors, recovery } = await runOverWal(seed);
      expect(res.ok, `${res.error}\nreplay: ${res.replay} (native-Wal mode: sim-wal.test.ts)`).toBe(true);
      expect(recovery).toEqual([]);
      const c = mirrors.counters();
      for (const k of Object.keys(totals) as Array<keyof typeof totals>) totals[k] += c[k];
      // Every crash was a power loss of the node's Wal, and the node restarted from it.
      expect(c.powerLosses).toBe(res.stats.crashes);
      // Some seeds of a wider sweep barely write (a quiet client mix): activity is checked on CI's.
      if (extra === 0) expect(c.writes).toBeGreaterThan(50);
    }, 120_000);
  }

  it.runIf(extra === 0)('the CI seeds cut power with writes in flight, and some restarts recover part of them', () => {
    expect(totals.powerLosses).toBeGreaterThan(20);
    expect(totals.inFlightLanded).toBeGreaterThan(5);
    expect(totals.recoveredMore).toBeGreaterThan(0);
  });

  it('a seed replays the same history (the awaited storage does not make it depend on timing)', async () => {
    const a = await runOverWal(3);
    const b = await runOverWal(3);
    const digest = (r: typeof a): string =>
      JSON.stringify({ stats: r.res.stats, now: r.sim.now, ops: r.sim.history.ops.length, counters: r.mirrors.counters(), logs: r.sim.nodes.map((n) => [n.disk.log.lastIndex(), n.disk.log.hardState(), n.smIndex, n.smHash]) });
    expect(a.res.ok && b.res.ok).toBe(true);
    expect(digest(b)).toBe(digest(a));
  }, 120_000);

  it('the live-view and final recovery checks fail when the Wal lacks a write the node made durable', async () => {
    const mirrors = new WalMirrors();
    try {
      const m = mirrors.create('n1') as WalMirror;
      m.setHardState({ generation: 1, votedFor: 'n1', commit: 0 });
      m.append([{ index: 1, generation: 1, kind: 'noop', data: new Uint8Array() }]);
      // A write that bypasses the Wal: the memory view now holds entry 2, the Wal does not.
      m.mem.append([{ index: 2, generation: 1, kind: 'normal', data: new Uint8Array([7]) }]);
      // RaftStorage's live view disagrees at the next drain, and the reopened Wal at the end.
      await expect(mirrors.drain()).rejects.toThrow(/RaftStorage's view of .* differs from the node's log: last index 1, durable 2/);
      expect(await m.verifyRecovery()).toEqual(['last index 1, durable 2 (2 certain)']);
    } finally {
      await mirrors.remove();
    }
  });

  // A planted adapter bug, with a seed that catches it (the unmutated run of that seed passes above).
  const caughtBy: Record<string, number> = { 'recovery-forgets-vote': 2, 'recovery-drops-last-entry': 2, 'recovery-commit-to-last-index': 3 };
  for (const mutant of STORAGE_MUTANTS) {
    it(`planted adapter bug ${mutant.name}: seed ${caughtBy[mutant.name]} fails on a Raft invariant, and on the recovery check`, async () => {
      const seed = caughtBy[mutant.name] as number;
      expect(seed, `a seed that catches ${mutant.name}`).toBeGreaterThan(0);
      const mut = await loadMutant(mutant);
      try {
        const open: WalModeOptions['open'] = (d, o) => mut.RaftStorage.open(d, o);
        // The core restarted from what the broken adapter recovered: the simulator's invariants catch it.
        const raft = await runOverWal(seed, { checkRecovery: false, open });
        expect(raft.res.ok, `${mutant.name} survived seed ${seed}`).toBe(false);
        expect(raft.res.error).toMatch(/InvariantError: invariant "/);
        // The direct storage checks catch it at the first affected restart (or RaftStorage's live view).
        const direct = await runOverWal(seed, { open });
        expect(direct.res.ok).toBe(false);
        expect(direct.res.error).toMatch(/native-Wal recovery of .* after a power loss|RaftStorage's view of .* differs/);
      } finally {
        mut.cleanup();
      }
    }, 120_000);
  }
});
