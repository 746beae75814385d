/**
 * A network partition: every peer link goes through a TCP proxy the test controls
 * (node A dials B through proxy A→B). Cutting the leader's links leaves it alone:
 * the majority elects a new leader and keeps taking writes; the cut-off leader
 * commits nothing (its high-water mark stays put and no write sent to it is
 * acknowledged); after healing the cluster converges, every acknowledged write is on
 * every node, and the register history is linearizable.
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '../../lib/cli/local-cluster';
import { startLoad } from '../../lib/cli/load';
import { Rng } from '../helpers';
import { RegisterWorkload, eventually, expectEveryNodeHas, testCluster, testSeed } from './harness';
import { TcpProxy } from './proxy';

describe('cluster processes: partition of the leader', () => {
  it('the majority side elects, the cut-off leader commits nothing, heal converges', { timeout: 120_000 }, async () => {
    const seed = testSeed(3);
    const rng = new Rng(seed);
    const proxies = new Map<string, TcpProxy>();
    const { cluster, kv } = await testCluster({
      start: false,
      peerEndpoint: (from, to) => {
        const p = proxies.get(`${from}>${to}`);
        if (p === undefined) throw new Error(`no proxy ${from}>${to}`);
        return p.endpoint();
      },
    });
    try {
      for (const from of cluster.ids()) for (const to of cluster.ids()) if (from !== to) proxies.set(`${from}>${to}`, await TcpProxy.start(cluster.endpoint(to)));
      for (const id of cluster.ids()) cluster.spawn(id);
      const old = await cluster.waitForLeader(30_000);
      const all = startLoad(kv(), 4, 'all');
      const pinned = startLoad(kv([cluster.endpoint(old.id)]), 2, 'pinned');
      const registers = new RegisterWorkload(kv(), rng);
      registers.start(4);
      await sleep(500);

      const links = [...proxies.entries()].filter(([k]) => k.startsWith(`${old.id}>`) || k.endsWith(`>${old.id}`));
      for (const [, p] of links) p.cut();
      const others = cluster.ids().filter((id) => id !== old.id);
      const next = await cluster.waitForLeader(20_000, others, [old.id]);
      // Anything the old leader had in flight at the cut may still commit there a moment after it; then nothing.
      await sleep(300);
      const tFrozen = performance.now();
      const frozen = await cluster.status(old.id);
      if (frozen instanceof Error) throw frozen;
      const majorityAcksBefore = all.acked.size;
      await sleep(1500);
      const still = await cluster.status(old.id);
      if (still instanceof Error) throw still;
      process.stdout.write(`[partition] seed ${seed}: cut ${old.id} (gen ${old.view.generation}); ${next.id} elected (gen ${next.view.generation}); cut-off node: ${still.role}, high-water mark ${frozen.commit} -> ${still.commit}; majority acks during the cut ${all.acked.size - majorityAcksBefore}\n`);
      expect(still.commit, 'the cut-off leader advanced its high-water mark').toBe(frozen.commit);
      expect(pinned.ackTimes.filter((t) => t > tFrozen).length, 'a write sent to the cut-off leader was acknowledged').toBe(0);
      expect(all.acked.size, 'the majority side took no write').toBeGreaterThan(majorityAcksBefore);

      for (const [, p] of links) p.heal();
      await eventually('every node agrees on one leader', async () => {
        const l = await cluster.waitForLeader(5000).catch(() => null);
        if (l === null) return false;
        const views = await Promise.all(cluster.ids().map((id) => cluster.status(id)));
        return views.every((v) => !(v instanceof Error) && (v.id === l.id || v.leaderId === l.id));
      }, 20_000);
      await sleep(300);
      all.stop = true;
      pinned.stop = true;
      await Promise.all([all.done, pinned.done, registers.stop()]);
      await expectEveryNodeHas(cluster, kv, [all, pinned], `seed ${seed} (majority writes, writes sent to the cut-off leader)`);
      const lin = await registers.check(kv());
      process.stdout.write(`[partition] ${all.acked.size} + ${pinned.acked.size} acknowledged, ${all.unknown.size + pinned.unknown.size} unknown; registers: ${lin.message}\n`);
      expect(lin.ok, lin.message).toBe(true);
    } finally {
      await cluster.killAll();
      await Promise.all([...proxies.values()].map((p) => p.close()));
    }
  });
});
