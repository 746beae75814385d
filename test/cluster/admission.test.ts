/**
 * Admission control of a TidemarkNode (in-memory transport, real WALs): proposals past
 * `maxPendingProposals` or `maxPendingBytes` waiting for their commit are answered TM_BUSY,
 * outcome not-applied, with a retryAfterMs hint, and never applied; once the pending ones
 * commit, new ones are admitted again (the counts are given back on every path).
 */
import { describe, expect, it } from 'vitest';
import { encodeKvCommand, KvClient } from '../../lib/cluster/kv';
import type { ClientResponse } from '../../lib/net/api';
import { tmpDir } from '../helpers';
import { TestCluster } from './cluster-helpers';

const IDS = ['n1', 'n2', 'n3'];
const put = (key: string, bytes = 8) => ({ kind: 'propose' as const, clientId: '', seq: 0, payload: encodeKvCommand({ op: 'put', key, value: new Uint8Array(bytes) }) });

function tally(rs: readonly ClientResponse[]) {
  const busy = rs.filter((r) => !r.ok && r.code === 'TM_BUSY');
  return { ok: rs.filter((r) => r.ok).length, busy, other: rs.filter((r) => !r.ok && r.code !== 'TM_BUSY') };
}

describe('TidemarkNode admission control', () => {
  it('answers TM_BUSY past maxPendingProposals / maxPendingBytes, and admits again once they commit', async () => {
    const c = new TestCluster(await tmpDir('admission'), IDS, { maxPendingProposals: 8, maxPendingBytes: 4096 });
    try {
      await c.startAll();
      const leader = await c.waitForLeader();
      const refusedKeys: string[] = [];
      const admittedKeys: string[] = [];
      for (let round = 0; round < 3; round++) {
        const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => leader.request(put(`r${round}/${i}`))));
        rs.forEach((r, i) => (r.ok ? admittedKeys : refusedKeys).push(`r${round}/${i}`));
        const t = tally(rs);
        expect(t.other).toEqual([]);
        expect(t.ok, `round ${round}`).toBe(8);
        expect(t.busy).toHaveLength(42);
        for (const b of t.busy) expect(b).toMatchObject({ ok: false, outcome: 'not-applied', retryAfterMs: expect.any(Number) });
      }
      // Bytes: 1000-byte commands against a 4096-byte bound.
      const t = tally(await Promise.all(Array.from({ length: 6 }, (_, i) => leader.request(put(`big/${i}`, 1000)))));
      expect(t.ok).toBe(4);
      expect(t.busy).toHaveLength(2);
      expect(leader.metrics().proposalsBusy).toBe(3 * 42 + 2);
      // Refused ones were never applied.
      const kv = new KvClient(c.client('reader'));
      for (const k of refusedKeys.slice(0, 10)) expect(await kv.get(k), k).toBeNull();
      for (const k of admittedKeys.slice(0, 10)) expect(await kv.get(k), k).not.toBeNull();
    } finally {
      await c.stopAll();
    }
  });
});
