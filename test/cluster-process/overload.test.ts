/**
 * Overload against real node processes: first the cluster's commit rate is measured with
 * a closed loop; then raw pipelined clients offer the leader ten times that rate for a few
 * seconds. Admission control (maxPendingProposals, default 1024) must answer the excess
 * TM_BUSY (outcome not-applied, with a retryAfterMs hint) instead of queueing it; admitted
 * proposals keep a bounded latency; the leader's RSS stays flat (generous bound); no
 * election happens (the generation and the leader do not change); every request gets an
 * answer; and a real client (lib/net's Client, which honours the hint) keeps its writes,
 * every acknowledged one readable at the end. Figures are printed, bounds are generous.
 */
import { describe, expect, it } from 'vitest';
import { sleep } from '../../lib/cli/local-cluster';
import { readAll, startLoad, verify } from '../../lib/cli/load';
import { RawClient, rssKiB } from './edge';
import { eventually, testCluster } from './harness';

/**
 * The node's default timing (10 ms ticks, election timeout 100 ticks = 1-2 s, heartbeat every
 * 10 ticks), not the harness's 300 ms election timeout: the claim under test is that load alone
 * does not depose a leader running the defaults. (With 300 ms, a 10x flood on this shared
 * 2-core machine starved the processes long enough for a follower to time out.)
 */
const DEFAULT_TIMING = ['--tick-ms', '10', '--election-ticks', '100', '--heartbeat-ticks', '10', '--log-level', 'info'];

const CONNECTIONS = 4;
const OVERLOAD_MS = 8000;

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number);
}

describe('cluster processes: overload', () => {
  it('ten times the commit rate: TM_BUSY with a hint, bounded latency and memory, no election', { timeout: 120_000 }, async () => {
    const { cluster, kv } = await testCluster({ metrics: true, nodeArgs: DEFAULT_TIMING });
    const leader = await cluster.waitForLeader(30_000);
    const port = cluster.endpoint(leader.id).port;
    const pid = cluster.pid(leader.id) as number;

    // What the cluster commits: a closed loop of 64 proposals in flight for 3 s.
    const probe = await RawClient.open(port, 'tidemark');
    const tProbe = performance.now();
    probe.propose(64, 'probe');
    while (performance.now() - tProbe < 3000) {
      await sleep(5);
      const free = 64 - probe.outstanding;
      if (free > 0) probe.propose(free, 'probe');
    }
    await eventually('probe drained', () => probe.outstanding === 0, 20_000);
    const probeOk = probe.answers.filter((a) => a.res.ok).length;
    const rate = probeOk / ((performance.now() - tProbe) / 1000);
    probe.close();
    expect(probeOk).toBeGreaterThan(0);

    // A real client alongside, through lib/net's Client (retries TM_BUSY after the hint).
    const load = startLoad(kv([cluster.endpoint(leader.id)]), 4, 'overload');
    await eventually('real client writing', () => load.acked.size > 5, 20_000);
    const gen0 = leader.view.generation;
    await sleep(300);
    const rssBefore = rssKiB(pid);
    let rssMax = rssBefore;

    // Ten times that rate, open loop, for OVERLOAD_MS.
    const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => RawClient.open(port, 'tidemark')));
    const perTick = Math.max(1, Math.ceil((rate * 10 * 0.02) / CONNECTIONS)); // per connection per 20 ms
    const tStart = performance.now();
    let offered = 0;
    let ticks = 0;
    while (performance.now() - tStart < OVERLOAD_MS) {
      // Catch up on ticks the event loop missed, so the offered rate is the intended one.
      const due = Math.floor((performance.now() - tStart) / 20) + 1;
      for (; ticks < due; ticks++) for (const c of clients) (c.propose(perTick, 'flood'), (offered += perTick));
      if (ticks % 25 === 0) rssMax = Math.max(rssMax, rssKiB(pid));
      await sleep(10);
    }
    const offeredSeconds = (performance.now() - tStart) / 1000;
    await eventually('every flood request answered', () => clients.every((c) => c.outstanding === 0), 60_000);
    const rssAfter = rssKiB(pid);
    rssMax = Math.max(rssMax, rssAfter);
    const tEnd = performance.now();
    await eventually('real client writes after the overload', () => load.ackTimes.some((t) => t > tEnd), 20_000);
    load.stop = true;
    await load.done;

    const answers = clients.flatMap((c) => c.answers);
    for (const c of clients) c.close();
    const ok = answers.filter((a) => a.res.ok);
    const busy = answers.filter((a) => !a.res.ok && a.res.code === 'TM_BUSY');
    const other = answers.filter((a) => !a.res.ok && a.res.code !== 'TM_BUSY');
    const lat = ok.map((a) => a.answeredAt - a.sentAt).sort((a, b) => a - b);
    const hints = busy.map((a) => (a.res.ok ? 0 : (a.res.retryAfterMs ?? 0)));

    const after = await cluster.waitForLeader(20_000);
    const line =
      `[overload] commit rate ~${Math.round(rate)}/s; offered ${offered} in ${offeredSeconds.toFixed(1)} s (~${Math.round(offered / offeredSeconds)}/s, ${((offered / offeredSeconds) / rate).toFixed(1)}x); ` +
      `admitted ${ok.length} (${Math.round(ok.length / offeredSeconds)}/s), TM_BUSY ${busy.length}, other ${other.length}; admitted latency p50 ${Math.round(percentile(lat, 0.5))} ms p99 ${Math.round(percentile(lat, 0.99))} ms max ${Math.round(lat[lat.length - 1] ?? NaN)} ms; ` +
      `leader RSS ${Math.round(rssBefore / 1024)} -> max ${Math.round(rssMax / 1024)} -> ${Math.round(rssAfter / 1024)} MiB; generation ${gen0} -> ${after.view.generation}; real client ${load.acked.size} acked, ${load.unknown.size} unknown outcomes (attempt timeouts while queued), failures ${JSON.stringify(Object.fromEntries(load.failures))}\n`;
    process.stdout.write(line);

    expect(answers.length).toBe(offered);
    expect(other.map((a) => (a.res.ok ? '' : a.res.code)).slice(0, 3)).toEqual([]);
    expect(busy.length, 'the excess was refused, not queued').toBeGreaterThan(offered * 0.3);
    for (const a of busy.slice(0, 100)) if (!a.res.ok) expect(a.res.outcome).toBe('not-applied');
    expect(Math.min(...hints.slice(0, 1000)), 'every TM_BUSY carries a retryAfterMs hint').toBeGreaterThan(0);
    expect(ok.length).toBeGreaterThan(0);
    expect(percentile(lat, 0.99), 'admitted latency p99 (generous bound)').toBeLessThan(10_000);
    expect(rssMax, 'leader RSS under overload (generous bound)').toBeLessThan(rssBefore + 300 * 1024);
    expect(after.id, 'no leader change under load alone').toBe(leader.id);
    expect(after.view.generation, 'no election under load alone').toBe(gen0);
    for (const id of cluster.ids()) {
      const v = await cluster.status(id);
      if (!(v instanceof Error)) expect(v.generation, `${id}'s generation`).toBe(gen0);
    }
    const busyMetric = /^tidemark_proposals_busy_total (\d+)$/m.exec(await cluster.metrics(leader.id));
    expect(Number(busyMetric?.[1])).toBeGreaterThanOrEqual(busy.length);
    const read = await readAll(kv([cluster.endpoint(leader.id)]), false, 'overload');
    expect(verify(read, load).slice(0, 5)).toEqual([]);
  });
});
