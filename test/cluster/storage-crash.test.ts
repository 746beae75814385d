/**
 * RaftStorage under process kills: a child persists seeded Raft-shaped work (appends,
 * conflicting-suffix overwrites, vote/generation changes, compactions, snapshot installs)
 * one operation at a time and reports each completion over its stdout pipe; the parent
 * SIGKILLs it at a random moment, reopens the directory and checks the recovered state
 * against its model: everything acknowledged is there, the one operation in flight is
 * either absent or applied (a conflicting overwrite may be cut after its truncation, an
 * install may stop after its snapshot), the hard state never goes back, the stored commit
 * never passes the log and never decreases. The next child continues on the same directory.
 *
 * Replay: TIDEMARK_STORAGE_CRASH_SEED=<seed> npx vitest run test/cluster/storage-crash.test.ts
 * More kills: TIDEMARK_STORAGE_CRASH_KILLS=100 (default 8).
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { RaftStorage } from '../../lib/cluster/storage';
import { Rng, runSeed, seedOf, spawnTs, tmpDir } from '../helpers';
import { type ModelEntry, type ModelSnapshot, type ModelState, type Op, applyOp, lastIndex, modelOf, snapIndex } from './storage-model';

const CHILD = join(__dirname, 'storage-crash-child.ts');
const SEGMENT_BYTES = 64 * 1024;
const seed = runSeed('TIDEMARK_STORAGE_CRASH_SEED');
const kills = Number(process.env.TIDEMARK_STORAGE_CRASH_KILLS ?? 8);
// eslint-disable-next-line no-console
console.log(`storage-crash.test: seed ${seed} (replay with TIDEMARK_STORAGE_CRASH_SEED=${seed}), ${kills} kills`);

function entriesAbove(m: ModelState, from: number): Map<number, ModelEntry> {
  const out = new Map<number, ModelEntry>();
  const si = snapIndex(m);
  m.entries.forEach((e, i) => {
    if (si + 1 + i > from) out.set(si + 1 + i, e);
  });
  return out;
}
const same = (a: ModelEntry | undefined, b: ModelEntry | undefined): boolean => a !== undefined && b !== undefined && a.generation === b.generation && a.salt === b.salt;
const sameSnap = (a: ModelSnapshot | null, b: ModelSnapshot | null): boolean =>
  a === b || (a !== null && b !== null && a.index === b.index && a.generation === b.generation && a.salt === b.salt);

/** Problems with `r` (recovered) given `a` (all acknowledged) and `p` (in flight, maybe). */
function check(a: ModelState, p: Op | undefined, r: ModelState, prev: { generation: number; commit: number }): string[] {
  const problems: string[] = [];
  const hsChoices = [a.hardState];
  if (p?.kind === 'persist' && p.hardState !== null) hsChoices.push(p.hardState);
  if (!hsChoices.some((h) => h.generation === r.hardState.generation && h.votedFor === r.hardState.votedFor)) {
    problems.push(`hard state ${JSON.stringify(r.hardState)} is neither acknowledged ${JSON.stringify(a.hardState)} nor in flight`);
  }
  if (r.hardState.generation < prev.generation) problems.push(`generation went back from ${prev.generation} to ${r.hardState.generation}`);
  if (r.hardState.commit < prev.commit) problems.push(`stored commit went back from ${prev.commit} to ${r.hardState.commit}`);
  if (r.hardState.commit > lastIndex(r)) problems.push(`stored commit ${r.hardState.commit} beyond last index ${lastIndex(r)}`);
  const pSnap = p === undefined ? null : p.snapshot;
  if (!sameSnap(r.snapshot, a.snapshot) && !sameSnap(r.snapshot, pSnap)) {
    problems.push(`snapshot ${JSON.stringify(r.snapshot)} is neither acknowledged ${JSON.stringify(a.snapshot)} nor in flight ${JSON.stringify(pSnap)}`);
    return problems;
  }
  const rs = snapIndex(r);
  const got = entriesAbove(r, rs);
  const installed = p?.kind === 'persist' && p.snapshot !== null && sameSnap(r.snapshot, p.snapshot) && !sameSnap(r.snapshot, a.snapshot);
  const pending = p?.kind === 'persist' ? p : undefined;
  const pendingAt = (i: number): ModelEntry | undefined => (pending === undefined ? undefined : pending.entries[i - pending.first]);
  if (installed) {
    // After an install: a prefix of the entries written after the snapshot.
    for (const [i, e] of got) if (!same(e, pendingAt(i))) problems.push(`entry ${i} after the installed snapshot is not the one written`);
    return problems;
  }
  const want = entriesAbove(a, rs);
  const cut = pending !== undefined && pending.entries.length > 0 ? pending.first : Number.POSITIVE_INFINITY;
  for (const [i, e] of want) {
    if (i >= cut) continue;
    if (!same(got.get(i), e)) problems.push(`acknowledged entry ${i} ${JSON.stringify(e)} is ${JSON.stringify(got.get(i))}`);
  }
  const tail = [...got].filter(([i]) => i >= cut);
  const tailIsOld = tail.every(([i, e]) => same(e, want.get(i))) && lastIndex(r) === lastIndex(a);
  const tailIsNew = tail.every(([i, e]) => same(e, pendingAt(i))) && lastIndex(r) >= Math.min(cut - 1, lastIndex(a));
  if (cut === Number.POSITIVE_INFINITY) {
    if (lastIndex(r) !== lastIndex(a)) problems.push(`last index ${lastIndex(r)}, acknowledged ${lastIndex(a)}`);
  } else if (!tailIsOld && !tailIsNew) {
    problems.push(`entries from ${cut} are neither the acknowledged ones nor a prefix of the in-flight write (last ${lastIndex(r)}, acknowledged ${lastIndex(a)})`);
  }
  return problems;
}

describe('RaftStorage crash test', () => {
  it(`recovers every acknowledged write after ${kills} SIGKILLs (seed ${seed})`, async () => {
    const dir = await tmpDir('storage-crash');
    const rng = new Rng(seedOf(seed, 0x5707));
    let acked: ModelState = { snapshot: null, entries: [], hardState: { generation: 0, votedFor: null, commit: 0 } };
    let prev = { generation: 0, commit: 0 };
    let totalAcks = 0;
    let installs = 0;
    let inFlightAtKill = 0;
    for (let round = 0; round < kills; round++) {
      const where = `[seed ${seed} round ${round}]`;
      const child = spawnTs(CHILD, [JSON.stringify({ dir, seed: seedOf(seed, round + 1), segmentBytes: SEGMENT_BYTES })]);
      const first = await child.waitFor((l) => l === 'R' || l.startsWith('E'), 60_000);
      expect(first, where).toBe('R');
      await new Promise((r) => setTimeout(r, rng.int(20, 400)));
      child.kill('SIGKILL');
      await child.exited;
      const ops = new Map<number, Op>();
      let pending: Op | undefined;
      for (const line of child.lines) {
        if (line.startsWith('E')) throw new Error(`${where} child: ${line}`);
        if (line.startsWith('O ')) {
          const op = JSON.parse(line.slice(2)) as Op;
          ops.set(op.id, op);
          pending = op;
        } else if (line.startsWith('A ')) {
          const op = ops.get(Number(line.slice(2)));
          if (op === undefined) throw new Error(`${where} ack of an unknown op: ${line}`);
          acked = applyOp(acked, op);
          totalAcks++;
          if (op.kind === 'persist' && op.snapshot !== null) installs++;
          pending = undefined;
        }
      }
      if (pending !== undefined) inFlightAtKill++;
      const storage = await RaftStorage.open(dir, { wal: { sync: 'fdatasync', segmentBytes: SEGMENT_BYTES } });
      let recovered: ModelState;
      try {
        recovered = modelOf(storage);
      } finally {
        await storage.close();
      }
      const problems = check(acked, pending, recovered, prev);
      expect(problems, `${where} in flight: ${JSON.stringify(pending)?.slice(0, 300)}`).toEqual([]);
      acked = recovered;
      prev = { generation: recovered.hardState.generation, commit: recovered.hardState.commit };
    }
    // eslint-disable-next-line no-console
    console.log(`storage-crash.test: ${totalAcks} acknowledged operations, ${installs} installs, ${inFlightAtKill} kills with an operation in flight`);
    expect(totalAcks).toBeGreaterThan(kills);
  }, 240_000);
});
