/**
 * SIGKILL the leader under load, three seeded rounds on one cluster: after the
 * killed node rejoins, every acknowledged write is on every node with its value;
 * writes resume (the gap is measured and printed; the bound asserted is a generous
 * 5 s, since timing assertions would flake on a loaded machine); the register
 * clients' history is linearizable, unknown outcomes included.
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '../../lib/cli/local-cluster';
import { longestGap, startLoad } from '../../lib/cli/load';
import { Rng } from '../helpers';
import { RegisterWorkload, expectEveryNodeHas, testCluster, testSeed } from './harness';

const ROUNDS = Number(process.env.TIDEMARK_KILL_ROUNDS ?? 3);

describe('cluster processes: SIGKILL of the leader', () => {
  it(`loses no acknowledged write over ${ROUNDS} kills, and writes resume`, { timeout: 150_000 }, async () => {
    const seed = testSeed(1);
    const rng = new Rng(seed);
    const { cluster, kv } = await testCluster();
    await cluster.waitForLeader(30_000);
    const client = kv();
    const load = startLoad(client, 8);
    const registers = new RegisterWorkload(kv(), rng);
    registers.start(4);
    const gaps: number[] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        await sleep(400 + (rng.next32() % 800));
        const before = await cluster.waitForLeader(20_000);
        const tKill = performance.now();
        await cluster.kill(before.id);
        const survivors = cluster.ids().filter((id) => id !== before.id);
        const after = await cluster.waitForLeader(20_000, survivors, [before.id]);
        // Wait for a write acknowledged after the kill, then measure the stretch without any.
        const deadline = Date.now() + 15_000;
        while (!load.ackTimes.some((t) => t > tKill) && Date.now() < deadline) await sleep(20);
        const firstAfter = load.ackTimes.find((t) => t > tKill);
        expect(firstAfter, `seed ${seed} round ${round}: no write acknowledged after killing ${before.id}`).toBeDefined();
        const gap = longestGap(load.ackTimes, tKill, firstAfter as number);
        gaps.push(gap);
        process.stdout.write(`[kill] seed ${seed} round ${round}: killed ${before.id} (gen ${before.view.generation}), new leader ${after.id} (gen ${after.view.generation}), write gap ${Math.round(gap)} ms\n`);
        expect(after.view.generation).toBeGreaterThan(before.view.generation);
        cluster.spawn(before.id);
      }
    } finally {
      load.stop = true;
      await load.done;
      await registers.stop();
    }
    await expectEveryNodeHas(cluster, kv, [load], `seed ${seed}`);
    const lin = await registers.check(kv());
    process.stdout.write(`[kill] ${load.acked.size} unique writes acknowledged, ${load.unknown.size} unknown; registers: ${lin.message}; gaps ${gaps.map((g) => Math.round(g)).join(', ')} ms\n`);
    expect(lin.ok, lin.message).toBe(true);
    for (const gap of gaps) expect(gap).toBeLessThan(5000);
  });
});
