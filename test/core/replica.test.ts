/**
 * Unit tests of the replica, each citing the "Patterns of Distributed Systems"
 * pattern or the Raft paper (Ongaro & Ousterhout 2014; thesis 2014) section it
 * checks.
 */
import { describe, expect, it } from 'vitest';
import {
  CoreAssertionError,
  type Message,
  Replica,
  SENT_AFTER_PERSIST,
  SeededRandom,
  type VoteMessage,
} from '../../lib/core';
import { ErrorCodes, TidemarkError } from '../../lib/errors';
import { MemoryLog } from '../../lib/log/memory';
import { bytes, cluster, drain, electFirst, makeNode, persistAndAdvance, settle } from './helpers';

const base = { from: 'b', to: 'a', clusterId: 'test' } as const;

describe('Generation Clock (Raft §5.1)', () => {
  it('a candidate persists (generation, vote) before any vote request may leave', () => {
    const a = makeNode('a', ['a', 'b', 'c'], { preVote: false });
    a.replica.campaign();
    const rd = a.replica.ready();
    expect(rd).not.toBeNull();
    expect(rd?.persist.hardState).toEqual({ generation: 1, votedFor: 'a', commit: 0 });
    expect(rd?.messages).toEqual([]);
    expect(rd?.messagesAfterPersist.map((m) => m.type)).toEqual(['vote', 'vote']);
  });

  it('vote grants and append acknowledgements are always held until after the persist', () => {
    expect(SENT_AFTER_PERSIST.vote).toBe(true);
    expect(SENT_AFTER_PERSIST['vote-response']).toBe(true);
    expect(SENT_AFTER_PERSIST['append-response']).toBe(true);
    expect(SENT_AFTER_PERSIST['snapshot-response']).toBe(true);
    expect(SENT_AFTER_PERSIST['pre-vote']).toBe(false);
  });

  it('a message of an older generation is rejected and tells its sender the newer one', () => {
    const a = makeNode('a', ['a', 'b', 'c'], { preVote: false });
    a.replica.campaign(); // generation 1
    persistAndAdvance(a, a.replica.ready()!);
    const stale: Message = { ...base, type: 'append', generation: 0, prevIndex: 0, prevGeneration: 0, entries: [], commit: 0 };
    expect(a.replica.step(stale)).toBe('ignored-stale');
    const rd = a.replica.ready()!;
    const reply = rd.messagesAfterPersist.find((m) => m.to === 'b');
    expect(reply).toMatchObject({ type: 'append-response', success: false, generation: 1 });
  });

  it('a message of a newer generation makes a leader step down', () => {
    const nodes = cluster(3);
    const leader = electFirst(nodes);
    const hb: Message = { ...base, type: 'heartbeat', generation: 5, commit: 0, readRound: 0 };
    leader.replica.step(hb);
    expect(leader.replica.role).toBe('follower');
    expect(leader.replica.generation).toBe(5);
    expect(leader.replica.leaderId).toBe('b');
  });
});

describe('Leader election (Raft §5.2, §5.4.1)', () => {
  it('randomized election timeout lies in [T, 2T) ticks, from the injected PRNG', () => {
    const T = 10;
    const seen = new Set<number>();
    for (let seed = 1; seed <= 200; seed++) {
      const r = new Replica({ id: 'a', voters: ['a', 'b', 'c'], clusterId: 'x', log: new MemoryLog(), random: new SeededRandom(seed), electionTimeoutTicks: T });
      let ticks = 0;
      while (r.role === 'follower') {
        r.tick();
        ticks++;
        if (ticks > 2 * T) throw new Error('no campaign within 2T');
      }
      expect(ticks).toBeGreaterThanOrEqual(T);
      expect(ticks).toBeLessThan(2 * T);
      seen.add(ticks);
    }
    expect(seen.size).toBeGreaterThan(5); // actually random
  });

  it('votes only for a candidate whose log is at least as up to date (last generation, then last index)', () => {
    const nodes = cluster(3);
    const leader = electFirst(nodes); // a leads generation 1, log [1/1 noop]
    leader.replica.propose(bytes('x'));
    settle(nodes); // everybody has 2/1
    const c = nodes.get('c')!;
    const vote = (lastIndex: number, lastGeneration: number): VoteMessage => ({
      type: 'vote', from: 'b', to: 'c', clusterId: 'test', generation: 9, lastIndex, lastGeneration, transfer: true,
    });
    c.replica.step(vote(1, 1)); // shorter log, same generation: refused
    let rd = c.replica.ready()!;
    expect(rd.messagesAfterPersist.find((m) => m.type === 'vote-response')).toMatchObject({ granted: false });
    persistAndAdvance(c, rd);
    c.replica.step({ ...vote(1, 2), generation: 10 }); // older index but newer last generation: granted
    rd = c.replica.ready()!;
    expect(rd.messagesAfterPersist.find((m) => m.type === 'vote-response')).toMatchObject({ granted: true });
    expect(rd.persist.hardState).toMatchObject({ generation: 10, votedFor: 'b' });
  });

  it('at most one vote per generation', () => {
    const c = makeNode('c', ['a', 'b', 'c'], { checkQuorum: false });
    const v = (from: string): VoteMessage => ({ type: 'vote', from, to: 'c', clusterId: 'test', generation: 1, lastIndex: 0, lastGeneration: 0, transfer: false });
    c.replica.step(v('a'));
    c.replica.step(v('b'));
    const grants = drain(c).filter((m) => m.type === 'vote-response');
    expect(grants.map((m) => [m.to, (m as { granted: boolean }).granted])).toEqual([
      ['a', true],
      ['b', false],
    ]);
  });

  it('pre-vote (thesis §9.6): a node cut off keeps its generation while its timer fires', () => {
    const a = makeNode('a', ['a', 'b', 'c']);
    for (let i = 0; i < 100; i++) a.replica.tick();
    drain(a);
    expect(a.replica.role).toBe('pre-candidate');
    expect(a.replica.generation).toBe(0);
  });

  it('leader lease: a voter that hears from a leader ignores (pre-)votes (thesis §4.2.3)', () => {
    const nodes = cluster(3);
    electFirst(nodes);
    const c = nodes.get('c')!;
    const v: VoteMessage = { type: 'vote', from: 'b', to: 'c', clusterId: 'test', generation: 2, lastIndex: 9, lastGeneration: 1, transfer: false };
    expect(c.replica.step(v)).toBe('ignored-lease');
    expect(c.replica.generation).toBe(1);
  });
});

describe('Majority Quorum and High-Water Mark (Raft §5.3, §5.4.2)', () => {
  it("the leader's own copy counts only after its persist is reported", () => {
    const nodes = cluster(3);
    const leader = electFirst(nodes);
    const commitBefore = leader.replica.commit;
    leader.replica.propose(bytes('x'));
    const rd = leader.replica.ready()!; // entries to persist; not yet advanced
    // b acknowledges before the leader's own write is reported durable
    const b = nodes.get('b')!;
    for (const m of rd.messages) if (m.to === 'b') b.replica.step(m);
    for (const m of drain(b)) leader.replica.step(m);
    expect(leader.replica.commit).toBe(commitBefore); // a majority would be b + a, but a is not durable yet
    persistAndAdvance(leader, rd);
    expect(leader.replica.commit).toBe(commitBefore + 1);
  });

  it('a single-node cluster commits after its own persist only', () => {
    const a = makeNode('a', ['a']);
    a.replica.campaign();
    drain(a);
    expect(a.replica.role).toBe('leader');
    a.replica.propose(bytes('x'));
    const rd = a.replica.ready()!;
    expect(rd.committedEntries).toEqual([]);
    expect(a.replica.commit).toBe(1);
    persistAndAdvance(a, rd);
    expect(a.replica.commit).toBe(2);
    const next = a.replica.ready()!;
    expect(next.committedEntries.map((e) => e.index)).toEqual([2]);
  });

  it('followers apply only up to the high-water mark they were told', () => {
    const nodes = cluster(3);
    const leader = electFirst(nodes);
    leader.replica.propose(bytes('x'));
    const rd = leader.replica.ready()!;
    const b = nodes.get('b')!;
    for (const m of rd.messages) if (m.to === 'b') b.replica.step(m);
    const brd = b.replica.ready()!;
    expect(brd.persist.entries.map((e) => e.index)).toEqual([2]);
    expect(brd.committedEntries).toEqual([]); // not below the high-water mark yet
  });

  it('a follower never truncates at or below its high-water mark: that is a bug, and it crashes', () => {
    const nodes = cluster(3);
    const leader = electFirst(nodes);
    leader.replica.propose(bytes('x'));
    settle(nodes);
    const b = nodes.get('b')!;
    expect(b.replica.commit).toBe(2);
    // A (forged) leader of generation 2 claims index 2 holds something else.
    const forged: Message = {
      type: 'append', from: 'c', to: 'b', clusterId: 'test', generation: 2, prevIndex: 1, prevGeneration: 1,
      entries: [{ index: 2, generation: 2, kind: 'normal', data: bytes('evil') }], commit: 2,
    };
    expect(() => b.replica.step(forged)).toThrow(CoreAssertionError);
  });
});

describe('Replicated Log: conflict hint (Raft §5.3, "optimization" paragraph)', () => {
  it('a refusal carries the last index with generation ≤ the probe\'s', () => {
    const log = new MemoryLog();
    log.append([
      { index: 1, generation: 1, kind: 'noop', data: new Uint8Array(0) },
      { index: 2, generation: 1, kind: 'normal', data: bytes('a') },
      { index: 3, generation: 3, kind: 'normal', data: bytes('b') },
      { index: 4, generation: 3, kind: 'normal', data: bytes('c') },
    ]);
    log.setHardState({ generation: 3, votedFor: null, commit: 1 });
    const f = makeNode('f', ['f', 'l', 'x'], {}, log);
    f.replica.step({ type: 'append', from: 'l', to: 'f', clusterId: 'test', generation: 4, prevIndex: 4, prevGeneration: 2, entries: [], commit: 1 });
    const reply = drain(f).find((m) => m.type === 'append-response');
    expect(reply).toMatchObject({ success: false, index: 4, hintIndex: 2, hintGeneration: 1 });
  });
});

describe('Client requests', () => {
  it('a proposal on a follower is refused with the leader id (TM_NOT_LEADER)', () => {
    const nodes = cluster(3);
    electFirst(nodes);
    const b = nodes.get('b')!;
    try {
      b.replica.propose(bytes('x'));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(TidemarkError);
      expect((e as TidemarkError).code).toBe(ErrorCodes.NOT_LEADER);
      expect((e as TidemarkError).leaderId).toBe('a');
    }
  });

  it('uncommitted bytes: bound−1 and bound accepted, bound+1 refused with TM_BUSY, accepted again after commit', () => {
    const nodes = cluster(3, { maxUncommittedBytes: 10 });
    const leader = electFirst(nodes);
    leader.replica.propose(new Uint8Array(9)); // 9 = bound − 1
    leader.replica.propose(new Uint8Array(1)); // 10 = bound
    expect(() => leader.replica.propose(new Uint8Array(1))).toThrow(expect.objectContaining({ code: ErrorCodes.BUSY })); // bound + 1
    expect(leader.replica.status().uncommittedBytes).toBe(10);
    settle(nodes);
    expect(leader.replica.status().uncommittedBytes).toBe(0);
    expect(() => leader.replica.propose(new Uint8Array(1))).not.toThrow();
  });

  it('read index is not served before a quorum answers its heartbeat round', () => {
    const nodes = cluster(3);
    const leader = electFirst(nodes);
    leader.replica.readIndex('r');
    const rd = leader.replica.ready()!;
    expect(rd.readStates).toEqual([]);
    expect(rd.messages.filter((m) => m.type === 'heartbeat').length).toBe(2);
    persistAndAdvance(leader, rd);
    const b = nodes.get('b')!;
    for (const m of rd.messages) if (m.to === 'b') b.replica.step(m);
    for (const m of drain(b)) leader.replica.step(m);
    expect(leader.replica.ready()?.readStates).toEqual([{ ctx: 'r', index: leader.replica.commit, linearizable: true }]);
  });

  it('transfer to an unknown node is a typed error', () => {
    const nodes = cluster(3);
    const leader = electFirst(nodes);
    expect(() => leader.replica.transferLeadership('zz')).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
  });
});

describe('Boundary checks', () => {
  it('ignores messages from unknown peers and other clusters', () => {
    const a = makeNode('a', ['a', 'b', 'c']);
    const hb: Message = { type: 'heartbeat', from: 'mallory', to: 'a', clusterId: 'test', generation: 9, commit: 0, readRound: 0 };
    expect(a.replica.step(hb)).toBe('ignored-unknown-peer');
    expect(a.replica.step({ ...hb, from: 'b', clusterId: 'other' })).toBe('ignored-other-cluster');
    expect(a.replica.generation).toBe(0);
  });
  it('rejects bad options with TM_INVALID_ARGUMENT', () => {
    const ok = { id: 'a', voters: ['a', 'b'], clusterId: 'x', log: new MemoryLog(), random: new SeededRandom(1) };
    const bad = [
      { ...ok, id: 'z' },
      { ...ok, voters: ['a', 'a'] },
      { ...ok, voters: [] },
      { ...ok, electionTimeoutTicks: 0 },
      { ...ok, heartbeatTicks: 10, electionTimeoutTicks: 10 },
      { ...ok, maxInflightAppends: 1.5 },
    ];
    for (const o of bad) expect(() => new Replica(o)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
    expect(() => new Replica({ ...ok, applied: 3 })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
  });
  it('advance() only accepts the outstanding Ready', () => {
    const a = makeNode('a', ['a']);
    a.replica.campaign();
    const rd = a.replica.ready()!;
    expect(a.replica.ready()).toBeNull(); // one outstanding at a time
    expect(() => a.replica.advance({ ...rd })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
    persistAndAdvance(a, rd);
  });
  it('hasReady() agrees with ready()', () => {
    const nodes = cluster(3);
    const leader = electFirst(nodes);
    expect(leader.replica.hasReady()).toBe(false);
    expect(leader.replica.ready()).toBeNull();
    leader.replica.propose(bytes('x'));
    expect(leader.replica.hasReady()).toBe(true);
    const rd = leader.replica.ready()!;
    expect(leader.replica.hasReady()).toBe(false); // outstanding
    persistAndAdvance(leader, rd);
  });
  it('hasReady() is true exactly when ready() returns a Ready, even with a full in-flight window', () => {
    // One append in flight per follower and nothing delivered: a heartbeat answer from a follower that
    // lags marks it for sending, but its window is full, so there is nothing to send.
    const nodes = cluster(3, { maxInflightAppends: 1, maxAppendBytes: 1 });
    const leader = electFirst(nodes);
    for (let i = 0; i < 5; i++) {
      leader.replica.propose(bytes(`p${i}`));
      drain(leader); // persisted on the leader; the appends are never delivered
    }
    let disagreements = 0;
    for (let i = 0; i < 10; i++) {
      leader.replica.step({ type: 'heartbeat-response', from: 'b', to: 'a', clusterId: 'test', generation: leader.replica.generation, readRound: 0 });
      const h = leader.replica.hasReady();
      const rd = leader.replica.ready();
      if (h !== (rd !== null)) disagreements++;
      if (rd !== null) persistAndAdvance(leader, rd);
    }
    expect(disagreements).toBe(0);
  });
  it('readLocal answers are marked not linearizable; readIndex answers are', () => {
    const nodes = cluster(3);
    const leader = electFirst(nodes);
    const b = nodes.get('b')!;
    b.replica.readLocal('local');
    expect(b.replica.ready()?.readStates).toEqual([{ ctx: 'local', index: b.replica.commit, linearizable: false }]);
  });
  it('accepts applied above the stored commit (commit persistence is optional) but not above the stored log', () => {
    const nodes = cluster(3);
    const leader = electFirst(nodes);
    leader.replica.propose(bytes('x'));
    settle(nodes);
    const b = nodes.get('b')!;
    // A driver that never persists the commit: the stored hard state says commit 0.
    b.log.setHardState({ ...b.log.hardState(), commit: 0 });
    const again = makeNode('b', ['a', 'b', 'c'], { applied: 2 }, b.log);
    expect(again.replica.commit).toBe(2);
    expect(again.replica.applied).toBe(2);
    expect(again.replica.ready()?.committedEntries ?? []).toEqual([]);
    expect(() => makeNode('b', ['a', 'b', 'c'], { applied: 3 }, b.log)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
  });
  it('restarts from its durable state (hard state + log)', () => {
    const nodes = cluster(3);
    const leader = electFirst(nodes);
    leader.replica.propose(bytes('x'));
    settle(nodes);
    const b = nodes.get('b')!;
    const again = makeNode('b', ['a', 'b', 'c'], {}, b.log);
    expect(again.replica.generation).toBe(1);
    expect(again.replica.commit).toBe(2);
    expect(again.replica.lastIndex).toBe(2);
    expect(again.replica.ready()?.committedEntries.map((e) => e.index)).toEqual([1, 2]);
  });
});
