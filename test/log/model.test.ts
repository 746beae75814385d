/**
 * Model-based property test: random sequences of append, appendMany, concurrent appends,
 * truncateAfter, truncateBefore, read and reopen run against the real log and against a
 * plain array; after every step the log's bounds and every record's bytes must match the
 * model. 64 KiB segments, so rotations, truncations across segments and whole-segment
 * drops all happen. Record contents are unique per append, so a truncated record that
 * came back would be noticed.
 *
 * Replay: TIDEMARK_MODEL_SEED=<seed> (fast-check also prints the seed and path of a failure).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Wal } from '../../lib/index';
import { recordBytes, runSeed, tmpDir } from '../helpers';

const SEGMENT_BYTES = 64 * 1024;
const SEED = 0x40de1;
const seed = runSeed('TIDEMARK_MODEL_SEED');
const NUM_RUNS = Number(process.env.TIDEMARK_MODEL_RUNS ?? 30);

type Op =
  | { t: 'append'; length: number }
  | { t: 'appendMany'; lengths: number[] }
  | { t: 'concurrent'; lengths: number[] }
  | { t: 'truncateAfter'; at: number }
  | { t: 'truncateBefore'; at: number }
  | { t: 'read'; at: number }
  | { t: 'reopen' };

const length = fc.oneof({ arbitrary: fc.integer({ min: 0, max: 300 }), weight: 3 }, { arbitrary: fc.integer({ min: 301, max: 20_000 }), weight: 2 });
/**
 * Where in the current range an index-taking op lands, as a fraction (so ops stay meaningful after
 * shrinking). Integers scaled down, not fc.double: doubles are drawn by bit pattern and cluster at 0.
 */
const fraction = fc.integer({ min: 0, max: 1_000_000 }).map((n) => n / 1_000_000);

const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: length.map((n) => ({ t: 'append' as const, length: n })), weight: 4 },
  { arbitrary: fc.array(length, { minLength: 1, maxLength: 12 }).map((ls) => ({ t: 'appendMany' as const, lengths: ls })), weight: 3 },
  { arbitrary: fc.array(length, { minLength: 2, maxLength: 24 }).map((ls) => ({ t: 'concurrent' as const, lengths: ls })), weight: 2 },
  { arbitrary: fraction.map((f) => ({ t: 'truncateAfter' as const, at: f })), weight: 2 },
  { arbitrary: fraction.map((f) => ({ t: 'truncateBefore' as const, at: f })), weight: 2 },
  { arbitrary: fraction.map((f) => ({ t: 'read' as const, at: f })), weight: 1 },
  { arbitrary: fc.constant({ t: 'reopen' as const }), weight: 1 },
);

function pickIn(lo: number, hi: number, f: number): number {
  return Math.min(hi, lo + Math.floor(f * (hi - lo + 1)));
}

class Model {
  first = 1;
  records: Buffer[] = [];
  get last(): number {
    return this.first + this.records.length - 1;
  }
}

async function checkAgainst(wal: Wal, model: Model, step: string): Promise<void> {
  expect(wal.firstIndex, `${step}: firstIndex`).toBe(model.first);
  expect(wal.lastIndex, `${step}: lastIndex`).toBe(model.last);
  let i = 0;
  for await (const { index, data } of wal.entries()) {
    expect(index, `${step}: index`).toBe(model.first + i);
    const want = model.records[i];
    if (want === undefined || !want.equals(data)) throw new Error(`${step}: record ${index} differs from the model (${data.length} bytes, model ${want?.length ?? 'none'})`);
    i++;
  }
  expect(i, `${step}: entries() count`).toBe(model.records.length);
}

describe('model: the log behaves like an array under random operations', () => {
  it(`${NUM_RUNS} random sequences (seed ${seed})`, async () => {
    let runs = 0;
    let totalOps = 0;
    let maxSegments = 0;
    let segmentDrops = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40, size: 'max' }), async (ops) => {
        runs++;
        const dir = await tmpDir('model');
        const model = new Model();
        let key = 1;
        let wal = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES, sync: 'fdatasync' });
        try {
          for (const [n, o] of ops.entries()) {
            const step = `step ${n} ${JSON.stringify(o)}`;
            totalOps++;
            switch (o.t) {
              case 'append': {
                const data = recordBytes(key++, o.length, SEED);
                expect(await wal.append(data), step).toBe(model.last + 1);
                model.records.push(data);
                break;
              }
              case 'appendMany': {
                const datas = o.lengths.map((l) => recordBytes(key++, l, SEED));
                expect(await wal.appendMany(datas), step).toBe(model.last + datas.length);
                model.records.push(...datas);
                break;
              }
              case 'concurrent': {
                // Alternating appends and small appendMany batches, all in flight at once: one group commit or several.
                const calls: Promise<number>[] = [];
                const expected: number[] = [];
                let next = model.last + 1;
                for (let j = 0; j < o.lengths.length; j++) {
                  const data = recordBytes(key++, o.lengths[j] as number, SEED);
                  model.records.push(data);
                  if (j % 3 === 2) calls.push(wal.appendMany([data]));
                  else calls.push(wal.append(data));
                  expected.push(next++);
                }
                expect(await Promise.all(calls), step).toEqual(expected);
                break;
              }
              case 'truncateAfter': {
                const at = pickIn(model.first - 1, model.last, o.at);
                await wal.truncateAfter(at);
                model.records.length = at - model.first + 1;
                break;
              }
              case 'truncateBefore': {
                const at = pickIn(model.first, model.last + 1, o.at);
                const before = model.first;
                await wal.truncateBefore(at);
                // Whole sealed segments go: the new firstIndex is somewhere in [old firstIndex, at].
                expect(wal.firstIndex, `${step}: firstIndex after truncateBefore(${at})`).toBeGreaterThanOrEqual(before);
                expect(wal.firstIndex, `${step}: firstIndex after truncateBefore(${at})`).toBeLessThanOrEqual(Math.max(at, before));
                if (wal.firstIndex > before) segmentDrops++;
                model.records.splice(0, wal.firstIndex - before);
                model.first = wal.firstIndex;
                break;
              }
              case 'read': {
                if (model.records.length === 0) break;
                const at = pickIn(model.first, model.last, o.at);
                const data = await wal.read(at);
                expect(data.equals(model.records[at - model.first] as Buffer), `${step}: read(${at})`).toBe(true);
                break;
              }
              case 'reopen': {
                await wal.close();
                wal = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES, sync: 'fdatasync' });
                break;
              }
            }
            await checkAgainst(wal, model, step);
            maxSegments = Math.max(maxSegments, wal.stats().segments);
          }
          // Finally, everything survives a reopen.
          await wal.close();
          wal = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES });
          await checkAgainst(wal, model, 'final reopen');
        } finally {
          await wal.close();
        }
      }),
      { numRuns: NUM_RUNS, seed, endOnFailure: false },
    );
    expect(runs).toBeGreaterThanOrEqual(NUM_RUNS);
    // eslint-disable-next-line no-console
    console.log(`model.test: ${runs} runs, ${totalOps} operations, up to ${maxSegments} segments, ${segmentDrops} truncateBefore calls dropped segments`);
    // The sequences must reach what they are for: several segments, and prefix truncation that drops some.
    expect(maxSegments).toBeGreaterThanOrEqual(3);
    expect(segmentDrops).toBeGreaterThan(0);
  }, 150_000);
});
