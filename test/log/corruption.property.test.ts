// Property: damage one byte anywhere in a closed log. Opening it either fails
// with TM_CORRUPTION, or yields exactly the records that were acknowledged.
// Nothing is silently dropped (promise 3), not even the very last batch: the log
// is in format version 2, whose batch headers carry a CRC per 512-byte sector, so
// a written sector that differs from its CRC is damage (native/recovery.cc rows
// Q, R); a one-byte change never makes a sector of these batches all zero, which
// is what a torn write would leave. (Version 1 logs may still drop their last
// batch: row E.)
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Wal } from '../../lib/index';
import { SMALL, frames, payload, segmentFiles, segmentVersion, tempDir } from './helpers';

async function buildLog(): Promise<{ dir: string; n: number }> {
  const dir = tempDir();
  const wal = await Wal.open(dir, SMALL);
  let n = 0;
  for (let b = 0; b < 40; b++) {
    const count = (b % 5) + 1;
    const datas = Array.from({ length: count }, (_, k) => payload(n + k + 1));
    n = await wal.appendMany(datas);
  }
  await wal.close();
  // Version 2 batches: the first segment (2) and the rotations into prepared spares (3, an open header).
  for (const f of segmentFiles(dir)) expect([2, 3]).toContain(segmentVersion(f));
  return { dir, n };
}

describe('single-byte damage', () => {
  it('is reported as TM_CORRUPTION or changes nothing', async () => {
    const { dir, n } = await buildLog();
    const files = segmentFiles(dir);
    const lastFile = files.at(-1) as string;
    const lastFrames = frames(lastFile);
    const pads = lastFrames.filter((x) => x.kind === 'padding');
    const lastBatchStart = pads.length >= 2 ? (pads.at(-2) as { offset: number; size: number }).offset + (pads.at(-2) as { size: number }).size : 4096;
    const lastBatchEnd = (pads.at(-1) as { offset: number; size: number }).offset + (pads.at(-1) as { size: number }).size;
    expect(files.length).toBeGreaterThan(2);
    // Offsets worth hitting: every byte of every header and frame, plus random bytes anywhere.
    const targets: Array<[string, number]> = [];
    for (const f of files) {
      for (let o = 0; o < 32; o++) targets.push([f, o]);
      for (const fr of frames(f)) {
        for (let o = 0; o < Math.min(fr.size, 24); o++) targets.push([f, fr.offset + o]);
        targets.push([f, fr.offset + fr.size - 1]);
      }
    }
    const seed = Number(process.env.TIDEMARK_SEED ?? Date.now() % 1_000_000);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constantFrom(...targets),
          fc.tuple(fc.constantFrom(...files), fc.integer({ min: 0, max: 64 * 1024 - 1 })),
        ),
        fc.integer({ min: 1, max: 255 }),
        async ([file, offset], xor) => {
          const copy = tempDir('tidemark-prop-');
          cpSync(dir, copy, { recursive: true });
          const target = join(copy, basename(file));
          const b = readFileSync(target);
          b[offset] = (b[offset] ?? 0) ^ xor;
          writeFileSync(target, b);
          let wal: Wal;
          try {
            wal = await Wal.open(copy, SMALL);
          } catch (err) {
            expect(err, `${basename(file)}@${offset}^${xor}`).toMatchObject({ code: 'TM_CORRUPTION' });
            return;
          }
          try {
            const inLastBatch = file === lastFile && offset >= lastBatchStart && offset < lastBatchEnd;
            expect(wal.lastIndex, `${basename(file)}@${offset}^${xor}: lastIndex (in the last batch: ${inLastBatch})`).toBe(n);
            for await (const e of wal.entries()) {
              expect(Buffer.from(e.data).equals(payload(e.index)), `${basename(file)}@${offset}^${xor}: record ${e.index}`).toBe(true);
            }
          } finally {
            await wal.close();
          }
        },
      ),
      { numRuns: 250, seed },
    );
  }, 120_000);
});
