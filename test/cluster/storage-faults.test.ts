/**
 * RaftStorage and TidemarkNode over the test-only fault layer (test/log/helpers.ts
 * openFaulty): unsynced WAL writes dropped by a power loss never include an acknowledged
 * persist; a failed fdatasync poisons the storage and closes the node, whose pending
 * proposals get TM_UNKNOWN_OUTCOME while the rest of the cluster goes on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Entry } from '../../lib/core/types';
import { RaftStorage } from '../../lib/cluster/storage';
import { faults, openFaulty } from '../log/helpers';
import { Rng, runSeed, tmpDir } from '../helpers';
import { ListMachine, TestCluster, sleep, waitUntil } from './cluster-helpers';

const WAL = { sync: 'fdatasync' as const, segmentBytes: 64 * 1024 };
const EIO = 5;
const seed = runSeed('TIDEMARK_STORAGE_FAULTS_SEED');

afterEach(() => faults()('reset'));

describe('RaftStorage over the fault layer', () => {
  it(`power loss drops only unacknowledged entries (seed ${seed})`, async () => {
    const rng = new Rng(seed);
    for (let round = 0; round < 5; round++) {
      const dir = await tmpDir('storage-faults');
      const s = await RaftStorage.open(dir, { wal: WAL, openWal: (d, o) => openFaulty(d, o) });
      const acked: Entry[] = [];
      let next = 1;
      let stop = false;
      const writer = (async () => {
        while (!stop) {
          const n = rng.int(1, 20);
          const entries: Entry[] = Array.from({ length: n }, (_, i) => ({ index: next + i, generation: 1, kind: 'normal', data: Buffer.alloc(rng.int(1, 3000), (next + i) % 251) }));
          next += n;
          try {
            await s.persist({ snapshot: null, entries, hardState: null });
          } catch (err) {
            expect((err as { code: string }).code).toMatch(/TM_POISONED|TM_IO|TM_CLOSED/);
            return;
          }
          acked.push(...entries);
        }
      })();
      await sleep(rng.int(5, 80));
      faults()('powerLoss');
      stop = true;
      await writer;
      await s.close().catch(() => undefined);
      faults()('reset');
      const again = await RaftStorage.open(dir, { wal: WAL });
      expect(again.lastIndex(), `round ${round} seed ${seed}`).toBeGreaterThanOrEqual(acked.length);
      for (const e of acked) expect(Buffer.from(again.entries(e.index, e.index + 1, 1)[0]?.data ?? []).equals(e.data as Buffer)).toBe(true);
      await again.close();
    }
  });

  it('a failed fdatasync closes the node; its pending proposals get TM_UNKNOWN_OUTCOME; the others elect and go on', async () => {
    const c = new TestCluster(await tmpDir('node-faults'), ['n1', 'n2', 'n3'], {}, () => new ListMachine());
    try {
      await c.start('n1', { openWal: (d, o) => openFaulty(d, o) });
      await c.start('n2');
      await c.start('n3');
      const failing = c.nodes.get('n1');
      if (failing === undefined) throw new Error('no n1');
      failing.removeAllListeners('error');
      const errors: unknown[] = [];
      failing.on('error', (err) => errors.push(err));
      const closed = new Promise<void>((r) => failing.once('close', () => r()));
      // Make n1 the leader (it is the only one whose disk fails).
      await waitUntil(() => (c.leader() !== undefined ? true : undefined), 20_000, 'a leader');
      const leader = c.leader();
      if (leader !== undefined && leader.id !== 'n1') {
        await c.client('warm').propose(Buffer.from('warm'));
        expect(await leader.transferLeadership('n1')).toBe(true);
      }
      await waitUntil(() => (failing.role === 'leader' ? true : undefined), 20_000, 'n1 leading');
      faults()('failSync', EIO);
      const res = await failing.request({ kind: 'propose', clientId: 'doomed', seq: 1, payload: Buffer.from('doomed') });
      expect(res).toMatchObject({ ok: false, outcome: 'unknown' });
      await closed;
      expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['TM_POISONED']);
      c.nodes.delete('n1');
      faults()('reset');
      const survivor = await c.waitForLeader(20_000, 'n1');
      await c.client('after').propose(Buffer.from('after'));
      expect(survivor.id).not.toBe('n1');
    } finally {
      await c.stopAll();
    }
  });
});
