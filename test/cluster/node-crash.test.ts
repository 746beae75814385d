/**
 * TidemarkNode under SIGKILL (one voter, the whole driver path: persist, apply, sessions,
 * snapshots every 50 entries): a child writes from 8 sessions and reports each acknowledged
 * command; the parent kills it at a random moment, reopens the directory in a node of its
 * own and checks the replayed state machine: every acknowledged command is there exactly
 * once, nothing is applied twice, indexes increase. The next child first retries the
 * commands that were in flight with the same (clientId, seq): they too end up exactly once.
 *
 * Replay: TIDEMARK_NODE_CRASH_SEED=<seed>; more kills: TIDEMARK_NODE_CRASH_KILLS (default 6).
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { TidemarkNode } from '../../lib/cluster/node';
import { MemoryNetwork } from '../../lib/cluster/memory-transport';
import { Rng, runSeed, seedOf, spawnTs, tmpDir } from '../helpers';
import { ListMachine, waitUntil } from './cluster-helpers';

const CHILD = join(__dirname, 'node-crash-child.ts');
const seed = runSeed('TIDEMARK_NODE_CRASH_SEED');
const kills = Number(process.env.TIDEMARK_NODE_CRASH_KILLS ?? 6);
// eslint-disable-next-line no-console
console.log(`node-crash.test: seed ${seed} (replay with TIDEMARK_NODE_CRASH_SEED=${seed}), ${kills} kills`);

async function replay(dir: string): Promise<ListMachine> {
  const machine = new ListMachine();
  const node = await TidemarkNode.open({
    id: 'solo',
    dir,
    clusterId: 'crash',
    voters: ['solo'],
    transport: new MemoryNetwork().transport('solo'),
    stateMachine: machine,
    tickMs: 5,
    electionTimeoutTicks: 10,
    heartbeatTicks: 2,
    snapshotEntries: 50,
    wal: { sync: 'fdatasync', segmentBytes: 64 * 1024 },
  });
  try {
    await waitUntil(() => (node.role === 'leader' && node.applied === node.metrics().lastIndex ? true : undefined), 30_000, 'replay to the end of the log');
  } finally {
    await node.close();
  }
  return machine;
}

describe('TidemarkNode crash test', () => {
  it(`keeps every acknowledged command exactly once across ${kills} SIGKILLs (seed ${seed})`, async () => {
    const dir = await tmpDir('node-crash');
    const rng = new Rng(seedOf(seed, 0x90de));
    const acked = new Map<string, number>(); // text -> index
    let retries: Array<{ clientId: string; seq: number; text: string }> = [];
    let total = 0;
    for (let round = 0; round < kills; round++) {
      const where = `[seed ${seed} round ${round}]`;
      const child = spawnTs(CHILD, [JSON.stringify({ dir, round, writers: 8, retries, snapshotEntries: 50 })]);
      expect(await child.waitFor((l) => l === 'R' || l.startsWith('E'), 60_000), where).toBe('R');
      await new Promise((r) => setTimeout(r, rng.int(100, 800)));
      child.kill('SIGKILL');
      await child.exited;
      const inFlight = new Map<string, { clientId: string; seq: number; text: string }>();
      for (const line of child.lines) {
        if (line.startsWith('E')) throw new Error(`${where} child: ${line}`);
        const [tag, clientId, seq, text, index] = line.split(' ');
        if (tag === 'O') inFlight.set(text as string, { clientId: clientId as string, seq: Number(seq), text: text as string });
        if (tag === 'A') {
          inFlight.delete(text as string);
          acked.set(text as string, Number(index));
          total++;
        }
      }
      retries = [...inFlight.values()];
      const machine = await replay(dir);
      const texts = machine.items.map((i) => i.text);
      const counts = new Map<string, number>();
      for (const t of texts) counts.set(t, (counts.get(t) ?? 0) + 1);
      const twice = [...counts].filter(([, n]) => n > 1).map(([t]) => t);
      expect(twice, `${where} applied twice`).toEqual([]);
      const lost = [...acked.keys()].filter((t) => !counts.has(t));
      expect(lost, `${where} acknowledged but missing`).toEqual([]);
      for (const i of machine.items) {
        const at = acked.get(i.text);
        if (at !== undefined) expect(i.index, `${where} ${i.text} moved`).toBe(at);
      }
      const indexes = machine.items.map((i) => i.index);
      expect(indexes.every((x, k) => k === 0 || x > (indexes[k - 1] as number)), `${where} out of order`).toBe(true);
    }
    // eslint-disable-next-line no-console
    console.log(`node-crash.test: ${total} acknowledged commands over ${kills} kills`);
    expect(total).toBeGreaterThan(kills);
  }, 300_000);
});
