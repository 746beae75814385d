// Property: damage one byte anywhere in a closed log. Opening it either fails
// with TM_CORRUPTION, or yields exactly the records that were acknowledged,
// except that damage inside the very last batch may drop that batch (it cannot
// be told from a torn write: native/recovery.cc row E). Nothing else is
// silently dropped (promise 3).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Wal } from '../../lib/index';
import { SMALL, frames, payload, segmentFiles, tempDir } from './helpers';

async function buildLog(): Promise<{ dir: string; n: number; lastBatch: number }> {
  const dir = tempDir();
  const wal = await Wal.open(dir, SMALL);
  let n = 0;
  for (let b = 0; b < 40; b++) {
    const count = (b % 5) + 1;
    const datas = Array.from({ length: count }, (_, k) => payload(n + k + 1));
    n = await wal.appendMany(datas);
  }
  await wal.close();
  return { dir, n, lastBatch: (39 % 5) + 1 };
}

describe('single-byte damage', () => {
  it('is reported as TM_CORRUPTION or changes nothing', async () => {
    const { dir, n, lastBatch } = await buildLog();
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
            if (inLastBatch && wal.lastIndex === n - lastBatch) {
              for await (const e of wal.entries()) expect(Buffer.from(e.data).equals(payload(e.index))).toBe(true);
              return;
            }
            expect(wal.lastIndex, `${basename(file)}@${offset}^${xor}: lastIndex`).toBe(n);
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
