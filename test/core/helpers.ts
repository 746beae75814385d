/** Small helpers for core unit tests: a replica over a MemoryLog and a Ready pump. */
import { Replica, SeededRandom, type Message, type Ready, type ReplicaOptions } from '../../lib/core';
import { MemoryLog } from '../../lib/log/memory';

export interface TestNode {
  replica: Replica;
  log: MemoryLog;
}

export function makeNode(id: string, voters: string[], extra: Partial<ReplicaOptions> = {}, log = new MemoryLog()): TestNode {
  const replica = new Replica({ id, voters, clusterId: 'test', log, random: new SeededRandom(id.charCodeAt(0)), ...extra });
  return { replica, log };
}

/** Persists a Ready into the node's log in the documented order and advances. Returns it. */
export function persistAndAdvance(n: TestNode, rd: Ready): Ready {
  const p = rd.persist;
  if (p.snapshot !== null) n.log.installSnapshot(p.snapshot);
  if (p.entries.length > 0) n.log.append(p.entries);
  if (p.hardState !== null) n.log.setHardState(p.hardState);
  n.replica.advance(rd);
  return rd;
}

/** Handles every Ready of `n`; returns all messages it emitted (both kinds). */
export function drain(n: TestNode): Message[] {
  const out: Message[] = [];
  for (let rd = n.replica.ready(); rd !== null; rd = n.replica.ready()) {
    out.push(...rd.messages, ...rd.messagesAfterPersist);
    persistAndAdvance(n, rd);
  }
  return out;
}

/** Delivers messages among nodes until quiet. */
export function settle(nodes: Map<string, TestNode>, maxRounds = 100): void {
  for (let i = 0; i < maxRounds; i++) {
    const msgs: Message[] = [];
    for (const n of nodes.values()) msgs.push(...drain(n));
    if (msgs.length === 0) return;
    for (const m of msgs) nodes.get(m.to)?.replica.step(m);
  }
  throw new Error('cluster did not settle');
}

export function cluster(n: number, extra: Partial<ReplicaOptions> = {}): Map<string, TestNode> {
  const ids = Array.from({ length: n }, (_, i) => String.fromCharCode(97 + i));
  return new Map(ids.map((id) => [id, makeNode(id, ids, extra)]));
}

export function electFirst(nodes: Map<string, TestNode>): TestNode {
  const first = nodes.values().next().value as TestNode;
  first.replica.campaign();
  settle(nodes);
  if (first.replica.role !== 'leader') throw new Error('first node did not win');
  return first;
}

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
