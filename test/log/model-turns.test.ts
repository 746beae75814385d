/**
 * Model-based test (fast-check commands): each command is one JS turn that
 * issues a random interleaving of append, appendMany, read, entries,
 * truncateBefore, truncateAfter and close without awaiting in between, then
 * awaits them all; between turns the process may "crash" (a power loss through
 * the fault layer, then a reopen) or reopen cleanly. The model is the writer's
 * sequential semantics: operations take effect in the order they were issued,
 * each checked where it takes effect (issue 8, WAL defect 1), and reads see at
 * least every truncation issued before them (defect 3). Where the outcome
 * depends on timing the model accepts every outcome that timing allows, and
 * the observed one narrows it.
 *
 * Replay: TIDEMARK_TURNS_SEED=<seed> (fast-check also prints the seed and path of a failure).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Wal, TidemarkError } from '../../lib/index';
import { recordBytes, runSeed } from '../helpers';
import { faults, openFaulty, tempDir } from './helpers';

const OPTIONS = { segmentBytes: 64 * 1024, sync: 'fdatasync' as const };
const SALT = 0x7e5;
const seed = runSeed('TIDEMARK_TURNS_SEED');
const NUM_RUNS = Number(process.env.TIDEMARK_TURNS_RUNS ?? 12);

beforeEach(() => faults()('reset'));
afterEach(() => faults()('reset'));

/** What the runs reached, printed at the end (and checked: the sequences must reach what they are for). */
const counts = { turns: 0, ops: 0, crashes: 0, truncationsRefusedWhereRun: 0, truncateBeforeDrops: 0, maxSegments: 0 };

type Op =
  | { t: 'append'; length: number }
  | { t: 'appendMany'; lengths: number[] }
  | { t: 'read'; at: number }
  | { t: 'entries'; at: number }
  | { t: 'truncateAfter'; at: number }
  | { t: 'truncateBefore'; at: number }
  | { t: 'close' };

const length = fc.oneof({ arbitrary: fc.integer({ min: 0, max: 200 }), weight: 3 }, { arbitrary: fc.integer({ min: 201, max: 9000 }), weight: 2 });
/** Where an index lands, relative to the log's range at the start of the turn (may fall outside it). */
const where = fc.integer({ min: -20, max: 1020 }).map((n) => n / 1000);
const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: length.map((n) => ({ t: 'append' as const, length: n })), weight: 5 },
  { arbitrary: fc.array(length, { minLength: 1, maxLength: 30 }).map((ls) => ({ t: 'appendMany' as const, lengths: ls })), weight: 4 },
  { arbitrary: where.map((at) => ({ t: 'read' as const, at })), weight: 2 },
  { arbitrary: where.map((at) => ({ t: 'entries' as const, at })), weight: 1 },
  { arbitrary: where.map((at) => ({ t: 'truncateAfter' as const, at })), weight: 2 },
  { arbitrary: where.map((at) => ({ t: 'truncateBefore' as const, at })), weight: 2 },
  { arbitrary: fc.constant({ t: 'close' as const }), weight: 1 },
);

/** What the log holds: `records[k]` is index `first + k`; `firstLo..firstHi` bounds the first index while it is unknown. */
class Model {
  first = 1;
  records: Buffer[] = [];
  get last(): number {
    return this.first + this.records.length - 1;
  }
  clone(): Model {
    const m = new Model();
    m.first = this.first;
    m.records = this.records.slice();
    return m;
  }
  at(index: number): Buffer | undefined {
    return index >= this.first && index <= this.last ? this.records[index - this.first] : undefined;
  }
}

interface Real {
  wal: Wal;
  dir: string;
  closed: boolean;
  key: number;
}

type Outcome = { ok: true; value: unknown } | { ok: false; err: TidemarkError };

function settle<T>(p: Promise<T>): Promise<Outcome> {
  return p.then(
    (value) => ({ ok: true as const, value }),
    (err: TidemarkError) => ({ ok: false as const, err }),
  );
}

function pick(lo: number, hi: number, at: number): number {
  return Math.max(0, Math.round(lo + at * (hi - lo)));
}

class Turn implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ops: Op[]) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    if (real.closed) {
      real.wal = await openFaulty(real.dir, OPTIONS);
      real.closed = false;
    }
    const { wal } = real;
    expect(wal.firstIndex).toBe(model.first);
    expect(wal.lastIndex).toBe(model.last);
    const lo = model.first - 1;
    const hi = model.last + 1;
    // Issue everything in this one turn.
    const issued: Array<{ op: Op; arg: number; datas: Buffer[]; result: Promise<Outcome>; yielded?: Array<[number, Buffer]> }> = [];
    let closedAt = -1;
    for (const o of this.ops) {
      const arg = o.t === 'append' || o.t === 'appendMany' || o.t === 'close' ? 0 : pick(lo, hi, o.at);
      const datas = o.t === 'append' ? [recordBytes(real.key++, o.length, SALT)] : o.t === 'appendMany' ? o.lengths.map((l) => recordBytes(real.key++, l, SALT)) : [];
      let result: Promise<Outcome>;
      const entry: (typeof issued)[number] = { op: o, arg, datas, result: Promise.resolve({ ok: true, value: undefined }) };
      switch (o.t) {
        case 'append':
          result = settle(wal.append(datas[0] as Buffer));
          break;
        case 'appendMany':
          result = settle(wal.appendMany(datas));
          break;
        case 'read':
          result = settle(wal.read(arg));
          break;
        case 'entries': {
          const yielded: Array<[number, Buffer]> = [];
          entry.yielded = yielded;
          result = settle(
            (async () => {
              for await (const e of wal.entries({ from: Math.max(arg, wal.firstIndex) })) yielded.push([e.index, Buffer.from(e.data)]);
            })(),
          );
          break;
        }
        case 'truncateAfter':
          result = settle(wal.truncateAfter(arg));
          break;
        case 'truncateBefore':
          result = settle(wal.truncateBefore(arg));
          break;
        case 'close':
          if (closedAt < 0) closedAt = issued.length;
          result = settle(wal.close());
          break;
      }
      entry.result = result;
      issued.push(entry);
    }
    const outcomes = await Promise.all(issued.map((e) => e.result));
    counts.turns++;
    counts.ops += issued.length;
    counts.maxSegments = Math.max(counts.maxSegments, wal.stats().segments);
    if (closedAt >= 0) {
      real.closed = true;
      real.wal = await openFaulty(real.dir, OPTIONS);
      real.closed = false;
    }
    const first = real.wal.firstIndex;

    // Replay the writer's sequential semantics over what was observed. The first
    // index is known only after the turn (truncateBefore drops whole segments):
    // `firstLo..firstHi` bounds it, and each observed outcome narrows it.
    const s = model.clone(); // records relative to the turn's starting first index
    const states: Model[] = [s.clone()];
    let firstLo = s.first;
    let firstHi = s.first;
    let mayFailAppends = false; // after a truncateAfter rejected where it ran: what was queued behind it fails with it
    let callNext = s.last + 1; // the next index as the calls saw it (a queued truncateAfter moves it at once)
    const inherited = (out: Outcome): boolean => mayFailAppends && !out.ok && out.err.code === 'TM_OUT_OF_RANGE' && out.err.message.includes('when it runs');
    const reads: Array<{ k: number; pos: number }> = [];
    for (let k = 0; k < issued.length; k++) {
      const { op: o, arg, datas } = issued[k] as (typeof issued)[number];
      const out = outcomes[k] as Outcome;
      const step = `turn op ${k} ${JSON.stringify(o)} arg ${arg}: ${out.ok ? `ok ${String(out.value)}` : out.err.message}`;
      if (closedAt >= 0 && k > closedAt) {
        // Everything after close() rejects TM_CLOSED at once (a second close() returns the first's promise).
        if (o.t === 'close') expect(out.ok, step).toBe(true);
        else expect(out.ok ? 'resolved' : out.err.code, step).toBe('TM_CLOSED');
        continue;
      }
      switch (o.t) {
        case 'append':
        case 'appendMany':
          callNext += datas.length;
          if (out.ok) {
            expect(out.value, step).toBe(s.last + datas.length);
            s.records.push(...datas);
          } else {
            expect(mayFailAppends, step).toBe(true);
            expect(out.err.code, step).toBe('TM_OUT_OF_RANGE');
          }
          break;
        case 'truncateAfter':
          if (!out.ok && !out.err.message.includes('is outside') && !inherited(out)) throw new Error(`${step}: unexpected rejection`);
          if (out.ok || out.err.message.includes('when it runs')) callNext = arg + 1;
          if (inherited(out)) break;
          if (out.ok) {
            expect(arg <= s.last && arg + 1 >= firstLo, step).toBe(true);
            firstHi = Math.min(firstHi, arg + 1);
            s.records.length = arg - s.first + 1;
          } else {
            // Refused at the call against the numbering the calls saw: a truncateAfter queued
            // before it (refused later, where it ran) had already moved the next index down.
            // Such a refusal says nothing about the first index.
            const byCallNumbering = !out.err.message.includes('when it runs') && arg >= callNext;
            expect(arg > s.last || arg + 1 < firstHi || byCallNumbering, step).toBe(true);
            expect(out.err.code, step).toBe('TM_OUT_OF_RANGE');
            if (arg <= s.last && !byCallNumbering) firstLo = Math.max(firstLo, arg + 2);
            if (out.err.message.includes('when it runs')) {
              mayFailAppends = true;
              counts.truncationsRefusedWhereRun++;
            }
          }
          break;
        case 'truncateBefore':
          if (inherited(out)) break;
          if (out.ok) {
            expect(arg, step).toBeLessThanOrEqual(s.last + 1);
            firstHi = Math.max(firstHi, arg);
          } else {
            // Refused where it ran (above the log), or at its call against the numbering the
            // calls saw, which a queued truncateAfter refused later had already moved.
            expect(arg > s.last + 1 || (mayFailAppends && arg > callNext), step).toBe(true);
            expect(out.err.code, step).toBe('TM_OUT_OF_RANGE');
          }
          break;
        case 'read':
        case 'entries':
          reads.push({ k, pos: states.length - 1 });
          break;
        case 'close':
          expect(out.ok, step).toBe(true);
          break;
      }
      states.push(s.clone());
    }
    // The first index the turn left: inside the bounds; records below it are gone from the model.
    expect(first, `first index after the turn, bounds [${firstLo}, ${firstHi}]`).toBeGreaterThanOrEqual(firstLo);
    expect(first, `first index after the turn, bounds [${firstLo}, ${firstHi}]`).toBeLessThanOrEqual(Math.max(firstLo, firstHi));
    // Reads: what they returned must be what the index held in some state from their issue on.
    for (const { k, pos } of reads) {
      const { op: o, arg, yielded } = issued[k] as (typeof issued)[number];
      const out = outcomes[k] as Outcome;
      const later = states.slice(pos);
      const step = `turn op ${k} ${JSON.stringify(o)} arg ${arg}`;
      const held = (index: number): Buffer[] => later.map((st) => st.at(index)).filter((b): b is Buffer => b !== undefined);
      if (o.t === 'read') {
        if (out.ok) {
          const got = out.value as Buffer;
          expect(held(arg).some((b) => b.equals(got)), `${step}: read returned bytes no state from its issue on held`).toBe(true);
        } else {
          expect(['TM_OUT_OF_RANGE', 'TM_CLOSED'], `${step}: ${out.err.message}`).toContain(out.err.code);
          // Durable before the turn, the same record in every state from its issue on, not below the first index: it must be readable.
          const before = (states[0] as Model).at(arg);
          const always = arg >= first && before !== undefined && later.every((st) => st.at(arg) === before);
          if (out.err.code === 'TM_OUT_OF_RANGE') expect(always, `${step}: ${out.err.message}`).toBe(false);
        }
      } else {
        let expected: number | undefined;
        for (const [index, data] of yielded ?? []) {
          if (expected !== undefined) expect(index, `${step}: entries out of order`).toBe(expected);
          expected = index + 1;
          expect(held(index).some((b) => b.equals(data)), `${step}: entries yielded ${index} with bytes no state held`).toBe(true);
        }
        if (!out.ok) expect(['TM_OUT_OF_RANGE', 'TM_CLOSED'], `${step}: ${out.err.message}`).toContain(out.err.code);
      }
    }
    if (first > model.first) counts.truncateBeforeDrops++;
    const drop = Math.min(s.records.length, Math.max(0, first - s.first));
    s.records.splice(0, drop);
    s.first = first;
    model.first = s.first;
    model.records = s.records;
    expect(real.wal.firstIndex).toBe(model.first);
    expect(real.wal.lastIndex).toBe(model.last);
  }
  toString(): string {
    return `Turn(${JSON.stringify(this.ops)})`;
  }
}

/** A power loss between turns: unsynced writes dropped, then a reopen. Nothing acknowledged may change. */
class Crash implements fc.AsyncCommand<Model, Real> {
  check(): boolean {
    return true;
  }
  async run(model: Model, real: Real): Promise<void> {
    counts.crashes++;
    if (!real.closed) {
      faults()('powerLoss');
      await real.wal.close();
      faults()('reset');
    }
    real.wal = await openFaulty(real.dir, OPTIONS);
    real.closed = false;
    expect(real.wal.firstIndex).toBe(model.first);
    expect(real.wal.lastIndex).toBe(model.last);
    for (let i = model.first; i <= model.last; i++) {
      if (!(await real.wal.read(i)).equals(model.at(i) as Buffer)) throw new Error(`record ${i} changed across a power loss`);
    }
  }
  toString(): string {
    return 'Crash';
  }
}

describe('model: operations issued in one turn take effect in order, checked where they run', () => {
  it(`${NUM_RUNS} random command sequences (seed ${seed})`, async () => {
    const turn = fc.array(op, { minLength: 1, maxLength: 16, size: 'max' }).map((ops) => new Turn(ops));
    const commands = fc.commands([turn, turn, turn, fc.constant(new Crash())], { maxCommands: 30, size: 'max' });
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        const dir = tempDir('tidemark-turns-');
        faults()('reset');
        const real: Real = { wal: await openFaulty(dir, OPTIONS), dir, closed: false, key: 1 };
        try {
          await fc.asyncModelRun(() => ({ model: new Model(), real }), cmds);
        } finally {
          faults()('reset');
          await real.wal.close();
        }
      }),
      { numRuns: NUM_RUNS, seed, endOnFailure: true },
    );
    // eslint-disable-next-line no-console
    console.log(`model-turns: ${JSON.stringify(counts)}`);
    expect(counts.turns).toBeGreaterThanOrEqual(NUM_RUNS);
    expect(counts.crashes).toBeGreaterThan(0);
    expect(counts.maxSegments).toBeGreaterThanOrEqual(3);
    expect(counts.truncateBeforeDrops).toBeGreaterThan(0);
  }, 300_000);

  // The reproduction of issue 8, defect 1, as a command sequence.
  it('regression: 300 records, then truncateBefore(250) and truncateAfter(100) in one turn', async () => {
    const dir = tempDir('tidemark-turns-');
    const real: Real = { wal: await openFaulty(dir, OPTIONS), dir, closed: false, key: 1 };
    const model = new Model();
    try {
      await new Turn(Array.from({ length: 300 }, () => ({ t: 'append' as const, length: 1000 }))).run(model, real);
      expect(real.wal.stats().segments).toBeGreaterThan(3);
      await new Turn([
        { t: 'truncateBefore', at: 250 / 301 },
        { t: 'truncateAfter', at: 100 / 301 },
        { t: 'append', length: 10 },
      ]).run(model, real);
      await new Crash().run(model, real);
      expect(model.first).toBeGreaterThan(101);
      // 301 when truncateAfter was refused at its call, 300 when it was refused where it ran (the append numbered 101 fails with it).
      expect(model.last).toBeGreaterThanOrEqual(300);
    } finally {
      await real.wal.close();
    }
  });
});
