/**
 * Native-Wal mode of the simulator (minimal, see wal-mirror.ts for what it does not cover):
 * the durable writes of every simulated node, under the seed's faults (crashes with torn
 * writes, conflicting-suffix truncations, snapshot installs, compactions), are mirrored into
 * a real RaftStorage over the native Wal; after the run each storage is closed, reopened from
 * its directory, and must recover exactly the node's durable log.
 * CI: 3 seeds × 2,000 steps; more with TIDEMARK_SIM_WAL_SEEDS=N.
 */
import { describe, expect, it } from 'vitest';
import { Simulator } from './simulator';
import { WalMirrors } from './wal-mirror';

const extra = Number(process.env.TIDEMARK_SIM_WAL_SEEDS ?? 0);
// Seeds 1 and 11 (stale-acks, 5 nodes: crashes, truncated tails, compactions), 3 (one-entry-appends: a snapshot install).
const seeds = extra > 0 ? Array.from({ length: extra }, (_, i) => i + 1) : [1, 3, 11];

describe('simulator over the native Wal (mirrored storage, recovery checked)', () => {
  for (const seed of seeds) {
    it(`seed ${seed}: the simulator passes and every node's Wal recovers its durable log`, async () => {
      const mirrors = new WalMirrors();
      try {
        const res = new Simulator({ seed, steps: 2000, storage: mirrors.create }).run();
        expect(res.ok, `${res.error}\nreplay: ${res.replay}`).toBe(true);
        let writes = 0;
        for (const m of mirrors.all) {
          expect(await m.verifyRecovery(), m.dir).toEqual([]);
          writes += m.writes;
        }
        // The CI seeds must actually write through the Wal (appends, hard states, truncations);
        // some seeds of a wider sweep barely write (a quiet client mix), so only recovery counts there.
        if (extra > 0) return;
        expect(writes).toBeGreaterThan(50);
        expect(mirrors.all.some((m) => m.lastIndex() > 5)).toBe(true);
      } finally {
        await mirrors.remove();
      }
    }, 120_000);
  }

  it('the recovery check fails when the Wal lacks a write the node made durable', async () => {
    const mirrors = new WalMirrors();
    try {
      const m = mirrors.create('n1') as import('./wal-mirror').WalMirror;
      m.setHardState({ generation: 1, votedFor: 'n1', commit: 0 });
      m.append([{ index: 1, generation: 1, kind: 'noop', data: new Uint8Array() }]);
      // A write that bypasses the Wal: the memory log now holds entry 2, the Wal does not.
      m.mem.append([{ index: 2, generation: 1, kind: 'normal', data: new Uint8Array([7]) }]);
      expect(await m.verifyRecovery()).toEqual(['last index 1, memory 2']);
    } finally {
      await mirrors.remove();
    }
  });
});
