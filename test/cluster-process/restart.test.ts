/**
 * Restarts with the same data directories, snapshots every 50 entries:
 *
 * - a follower that was down while the leader's log moved past it and was truncated
 *   below the leader's low-water mark catches up by snapshot (its log restarts after the
 *   snapshot's index) and holds every acknowledged write;
 * - then every node is stopped (SIGTERM) and started again: the state machine is the
 *   same on every node, and each node applied, since it started, exactly the entries
 *   after the snapshot it opened with (its `tidemark_commits_total` on /metrics equals
 *   its applied index minus that snapshot index): nothing applied twice, nothing skipped.
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { readAll, startLoad, verify } from '../../lib/cli/load';
import { sleep } from '../../lib/cli/local-cluster';
import type { NodeView } from '../../lib/cli/status-table';
import { sampleValue } from '../../lib/cli/prometheus';
import { eventually, testCluster } from './harness';

/** The snapshot index in the last "node opened" line of a node's log. */
function openedSnapshotIndex(logFile: string): number {
  const lines = fs.readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('"msg":"node opened"'));
  const last = lines[lines.length - 1];
  if (last === undefined) throw new Error(`no "node opened" line in ${logFile}`);
  return (JSON.parse(last) as { snapshotIndex: number }).snapshotIndex;
}

async function statusOf(get: () => Promise<NodeView | Error>): Promise<NodeView> {
  const v = await get();
  if (v instanceof Error) throw v;
  return v;
}

describe('cluster processes: restarts', () => {
  it('a node below the low-water mark catches up by snapshot; a full restart changes nothing', { timeout: 150_000 }, async () => {
    const { cluster, kv } = await testCluster({ nodeArgsFor: () => ['--snapshot-entries', '50'], metrics: true });
    const leader = await cluster.waitForLeader(30_000);
    const follower = cluster.ids().find((id) => id !== leader.id) as string;
    const client = kv();
    // A counter advanced only by compare-and-set from a known value.
    let counter = 0;
    for (; counter < 20; counter++) {
      const r = await client.cas('counter', counter === 0 ? null : String(counter), String(counter + 1));
      expect(r.swapped).toBe(true);
    }
    const load1 = startLoad(client, 8);
    await sleep(300);
    const fBefore = await statusOf(() => cluster.status(follower));
    await cluster.kill(follower);
    await eventually('the leader writes 400 more entries', async () => {
      const v = await cluster.status(leader.id);
      return !(v instanceof Error) && v.commit > fBefore.lastIndex! + 400;
    }, 60_000);
    load1.stop = true;
    await load1.done;
    const l = await statusOf(() => cluster.status(leader.id));
    process.stdout.write(`[restart] ${follower} stopped at last index ${fBefore.lastIndex}; leader log now ${l.firstIndex}..${l.lastIndex}\n`);
    expect(l.firstIndex, 'the leader did not truncate its log below the stopped follower').toBeGreaterThan((fBefore.lastIndex ?? 0) + 1);

    cluster.spawn(follower);
    const caught = await cluster.waitForApplied(follower, l.commit, 30_000);
    process.stdout.write(`[restart] ${follower} rejoined: log ${caught.firstIndex}..${caught.lastIndex}, applied ${caught.applied}\n`);
    expect(caught.firstIndex, 'the follower\'s log does not start after a snapshot').toBeGreaterThan((fBefore.lastIndex ?? 0) + 1);
    expect(verify(await readAll(kv([cluster.endpoint(follower)]), true), load1).slice(0, 5)).toEqual([]);

    for (; counter < 40; counter++) expect((await client.cas('counter', String(counter), String(counter + 1))).swapped).toBe(true);
    const leaderNow = await cluster.waitForLeader(10_000);
    for (const id of cluster.ids()) await cluster.waitForApplied(id, leaderNow.view.commit, 30_000);
    const before = new Map<string, Map<string, string>>();
    for (const id of cluster.ids()) before.set(id, await readAll(kv([cluster.endpoint(id)]), true));
    const counterBefore = (await client.get('counter')).value;
    expect(counterBefore).toBe(String(counter));

    const unclean = await cluster.stopAll(15_000);
    expect(unclean, 'nodes that did not exit on SIGTERM').toEqual([]);
    for (const id of cluster.ids()) cluster.spawn(id);
    const again = await cluster.waitForLeader(30_000);
    for (const id of cluster.ids()) await cluster.waitForApplied(id, leaderNow.view.commit, 30_000);
    const after = kv();
    expect((await after.get('counter')).value).toBe(String(counter));
    // Each node applied, since it started, exactly the entries after the snapshot it opened with.
    const settledBefore = await cluster.waitForLeader(10_000);
    for (const id of cluster.ids()) {
      const v = await cluster.waitForApplied(id, settledBefore.view.commit, 30_000);
      const opened = openedSnapshotIndex(cluster.logFile(id));
      const text = await cluster.metrics(id);
      const applied = sampleValue(text, 'tidemark_applied_index');
      const commits = sampleValue(text, 'tidemark_commits_total');
      process.stdout.write(`[restart] ${id}: opened at snapshot ${opened}, applied ${applied} (status ${v.applied}), entries applied since start ${commits}\n`);
      expect(commits, `node ${id}: entries applied since the restart`).toBe((applied as number) - opened);
    }
    expect((await after.cas('counter', String(counter), String(counter + 1))).swapped).toBe(true);
    counter++;
    const settled = await cluster.waitForLeader(10_000);
    for (const id of cluster.ids()) await cluster.waitForApplied(id, settled.view.commit, 30_000);
    for (const id of cluster.ids()) {
      const now = await readAll(kv([cluster.endpoint(id)]), true);
      expect(now, `node ${id}: the demo keys changed across the restart`).toEqual(before.get(id));
      expect((await kv([cluster.endpoint(id)]).get('counter', { follower: true })).value).toBe(String(counter));
    }
    process.stdout.write(`[restart] full restart: leader ${again.id} gen ${again.view.generation}; ${before.get(cluster.ids()[0] as string)?.size} keys identical on every node; counter ${counter}\n`);
  });
});
