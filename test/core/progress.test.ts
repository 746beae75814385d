/**
 * Request Pipeline / flow control ("Patterns of Distributed Systems": Request
 * Pipeline, Request Batch; Raft thesis §10.2.1 on pipelining). Every bound is
 * tested at bound−1, bound and bound+1 (STYLE.md §5).
 */
import { describe, expect, it } from 'vitest';
import { ENTRY_OVERHEAD_BYTES, type AppendMessage } from '../../lib/core';
import { Inflights, Progress } from '../../lib/core/progress';
import { bytes, cluster, drain, electFirst, settle } from './helpers';

describe('Inflights: bounded window of appends and bytes', () => {
  it('count bound: not full at bound−1, full at bound, refuses bound+1', () => {
    const w = new Inflights(4, 1_000_000);
    for (let i = 1; i <= 3; i++) w.add(i, 10);
    expect(w.count).toBe(3);
    expect(w.full()).toBe(false); // bound − 1
    w.add(4, 10);
    expect(w.full()).toBe(true); // bound
    expect(() => w.add(5, 10)).toThrow(/full window/); // bound + 1
  });
  it('bytes bound: not full below, full at the bound, refuses beyond', () => {
    const w = new Inflights(100, 100);
    w.add(1, 99);
    expect(w.full()).toBe(false); // 99 = bound − 1
    w.add(2, 1);
    expect(w.bytes).toBe(100);
    expect(w.full()).toBe(true); // 100 = bound
    expect(() => w.add(3, 1)).toThrow(/full window/); // bound + 1
  });
  it('acknowledgements free the window in order', () => {
    const w = new Inflights(3, 1000);
    w.add(2, 10);
    w.add(5, 20);
    w.add(9, 30);
    w.freeTo(4);
    expect([w.count, w.bytes]).toEqual([2, 50]);
    w.freeTo(9);
    expect([w.count, w.bytes, w.full()]).toEqual([0, 0, false]);
  });
});

describe('Progress: probe and replicate', () => {
  it('probe sends one append at a time; a stale refusal is ignored', () => {
    const pr = new Progress(10, 4, 1000);
    expect(pr.paused()).toBe(false);
    pr.probeSent = true;
    expect(pr.paused()).toBe(true);
    expect(pr.maybeDecrease(5, 3)).toBe(false); // not the probe we sent (next-1 = 9)
    expect(pr.maybeDecrease(9, 4)).toBe(true); // jump back to the hint
    expect(pr.next).toBe(4);
    expect(pr.paused()).toBe(false);
  });
  it('replicate: a refusal at or below match is stale; above it falls back to probe', () => {
    const pr = new Progress(1, 4, 1000);
    pr.maybeUpdate(5);
    pr.becomeReplicate();
    expect(pr.next).toBe(6);
    expect(pr.maybeDecrease(5, 1)).toBe(false);
    expect(pr.maybeDecrease(8, 7)).toBe(true);
    expect(pr.state).toBe('probe');
    expect(pr.next).toBe(7);
  });
  it('never moves next below match + 1', () => {
    const pr = new Progress(1, 4, 1000);
    pr.maybeUpdate(5);
    pr.next = 9;
    pr.probeSent = true;
    pr.maybeDecrease(8, 1);
    expect(pr.next).toBe(6);
  });
});

describe('Leader flow control: a silent follower cannot grow the leader\'s sends without bound', () => {
  const window = 3;
  function setup() {
    const nodes = cluster(3, { maxInflightAppends: window, maxAppendBytes: 1, maxUncommittedBytes: 1 << 20 });
    const leader = electFirst(nodes);
    return { nodes, leader };
  }
  function appendsTo(msgs: ReturnType<typeof drain>, to: string): AppendMessage[] {
    return msgs.filter((m): m is AppendMessage => m.type === 'append' && m.to === to && m.entries.length > 0);
  }
  it.each([
    [window - 1, window - 1],
    [window, window],
    [window + 1, window],
    [window + 5, window],
  ])('%i proposals while the follower is silent → %i appends in flight', (proposals, expected) => {
    const { leader } = setup();
    const sent: ReturnType<typeof drain> = [];
    for (let i = 0; i < proposals; i++) {
      leader.replica.propose(bytes(`p${i}`));
      sent.push(...drain(leader)); // one entry per append (maxAppendBytes = 1)
    }
    expect(appendsTo(sent, 'b').length).toBe(expected);
    const peer = leader.replica.status().peers.find((p) => p.id === 'b');
    expect(peer?.inflightAppends).toBe(expected);
  });
  it('batches entries per append up to maxAppendBytes (Request Batch)', () => {
    const nodes = cluster(3, { maxAppendBytes: 3 * (ENTRY_OVERHEAD_BYTES + 2) });
    const leader = electFirst(nodes);
    for (let i = 0; i < 7; i++) leader.replica.propose(bytes(`p${i}`));
    const sent = drain(leader);
    expect(appendsTo(sent, 'b').map((m) => m.entries.length)).toEqual([3, 3, 1]);
    for (const m of sent) nodes.get(m.to)?.replica.step(m);
    settle(nodes);
    expect(nodes.get('b')?.replica.commit).toBe(leader.replica.lastIndex);
  });
});
