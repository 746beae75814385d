/**
 * The process-pause scenario: SIGSTOP the leader past the election timeout (a GC
 * pause, a stalled VM), then SIGCONT. The others elect a new leader; the old one
 * steps down when it runs again; every write sent to it is either committed by the
 * cluster (acknowledged writes are all there), or was reported as not acknowledged
 * (not-applied writes are absent; unknown outcomes may go either way), and the
 * clients' register history is linearizable.
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '../../lib/cli/local-cluster';
import { startLoad } from '../../lib/cli/load';
import { Rng } from '../helpers';
import { ELECTION_TIMEOUT_MS, RegisterWorkload, eventually, expectEveryNodeHas, testCluster, testSeed } from './harness';

describe('cluster processes: SIGSTOP of the leader', () => {
  it('the paused leader steps down on SIGCONT and nothing it accepted is silently lost', { timeout: 120_000 }, async () => {
    const seed = testSeed(2);
    const rng = new Rng(seed);
    const { cluster, kv } = await testCluster();
    const old = await cluster.waitForLeader(30_000);
    // One client talks to the old leader only; another to everyone.
    const pinned = startLoad(kv([cluster.endpoint(old.id)]), 4);
    const registers = new RegisterWorkload(kv(), rng);
    registers.start(4);
    await sleep(500);

    cluster.signal(old.id, 'SIGSTOP');
    const others = cluster.ids().filter((id) => id !== old.id);
    const next = await cluster.waitForLeader(20_000, others, [old.id]);
    await sleep(ELECTION_TIMEOUT_MS * 3);
    cluster.signal(old.id, 'SIGCONT');
    await eventually(`${old.id} steps down`, async () => {
      const v = await cluster.status(old.id, 500);
      return !(v instanceof Error) && v.role !== 'leader' && v.generation >= next.view.generation;
    });
    const oldView = await cluster.status(old.id);
    process.stdout.write(`[pause] seed ${seed}: ${old.id} (gen ${old.view.generation}) paused; ${next.id} elected (gen ${next.view.generation}); after SIGCONT ${old.id} is ${oldView instanceof Error ? oldView.message : `${oldView.role} gen ${oldView.generation}`}\n`);
    await sleep(500);
    pinned.stop = true;
    await pinned.done;
    await registers.stop();

    await expectEveryNodeHas(cluster, kv, [pinned], `seed ${seed}`);
    const lin = await registers.check(kv());
    process.stdout.write(`[pause] pinned client: ${pinned.acked.size} acknowledged, ${pinned.unknown.size} unknown, ${pinned.notApplied} not applied; registers: ${lin.message}\n`);
    expect(lin.ok, lin.message).toBe(true);
  });
});
