/**
 * truncateAfter and truncateBefore are done when they resolve: a child truncates, reports
 * the resolution over its stdout pipe, and the parent SIGKILLs it the moment it reads that
 * line. On reopen the log must have exactly the bounds the child saw, and the records
 * inside them with their exact bytes; no truncated record may come back. In the
 * `-append` scenarios the child keeps appending after the truncation and is killed after a
 * few acknowledgements: the indices after the cut must hold only the new records.
 *
 * One log directory for all rounds, 64 KiB segments so truncations cross segment files.
 * Replay: TIDEMARK_TRUNCATE_SEED=<seed in the test name>.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Wal } from '../../lib/index';
import { Rng, checkSelfDescribing, errorCode, rejectionOf, runSeed, seedOf, spawnTs, tmpDir } from '../helpers';
import type { TruncateScenario } from './truncate-child';

const CHILD = join(__dirname, 'truncate-child.ts');
const SEGMENT_BYTES = 64 * 1024;
const SETUP_COUNT = 120; // ~360 KiB of records: several segments per round
const POST_KEY_OFFSET = 500_000;

const seed = runSeed('TIDEMARK_TRUNCATE_SEED');
// eslint-disable-next-line no-console
console.log(`truncate-crash.test: seed ${seed} (replay with TIDEMARK_TRUNCATE_SEED=${seed})`);

const SCENARIOS: readonly TruncateScenario[] = [
  'after', 'before', 'after-append', 'after-inflight', 'before-append', 'after-all',
  'after', 'before-inflight', 'after-inflight', 'before-append', 'after-append', 'before', 'before-inflight',
  'after-inflight', 'after-inflight', 'before-inflight',
];

interface Rec {
  key: number;
  length: number;
}

describe('truncation survives a SIGKILL right after it resolves', () => {
  it(`${SCENARIOS.length} rounds: ${SCENARIOS.join(', ')} (seed ${seed})`, async () => {
    const dir = await tmpDir('truncate-crash');
    const rng = new Rng(seedOf(seed, 7));
    /** What the log must hold, by index. */
    let model = new Map<number, Rec>();
    let firstIndex = 1;
    let lastIndex = 0;
    const inflightRounds: string[] = [];

    for (let round = 0; round < SCENARIOS.length; round++) {
      const scenario = SCENARIOS[round] as TruncateScenario;
      const where = `[seed=${seed} round=${round} ${scenario}; replay: TIDEMARK_TRUNCATE_SEED=${seed}]`;
      const setupLast = lastIndex + SETUP_COUNT;
      let at: number;
      if (scenario === 'after-all') at = firstIndex - 1; // drop every record
      else if (scenario.startsWith('after')) at = rng.int(Math.max(firstIndex, setupLast - 100), setupLast - 1); // often into an earlier segment
      else at = rng.int(lastIndex + 40, setupLast - 10); // the first segments of this round's records lie wholly below
      const killAfterAcks = rng.int(1, 40);
      const inflightDelayMs = rng.int(0, 4);

      const child = spawnTs(CHILD, [JSON.stringify({ dir, segmentBytes: SEGMENT_BYTES, seed, round, scenario, setupCount: SETUP_COUNT, at })]);
      let truncated = false;
      let acksAfter = 0;
      child.onLine((line) => {
        if (line.startsWith('P ')) {
          if (inflightDelayMs === 0) child.kill();
          else setTimeout(() => child.kill(), inflightDelayMs);
        } else if (line.startsWith('T ') || line.startsWith('B ')) {
          truncated = true;
          if (!scenario.endsWith('-append')) child.kill(); // right after the truncation resolved
        } else if (line.startsWith('A ') && truncated) {
          acksAfter++;
          if (acksAfter === killAfterAcks) child.kill();
        } else if (line.startsWith('E ')) {
          child.kill();
        }
      });
      const killTimer = setTimeout(() => child.kill(), 60_000);
      const exit = await child.exited;
      clearTimeout(killTimer);
      const errors = child.lines.filter((l) => l.startsWith('E '));
      if (errors.length > 0) throw new Error(`${where} child reported ${errors.join('; ')}; stderr: ${child.stderr}`);
      if (exit.signal !== 'SIGKILL') throw new Error(`${where} child exited ${JSON.stringify(exit)}; stderr: ${child.stderr}`);

      // What the child saw and was acknowledged.
      const ready = child.lines.find((l) => l.startsWith('R '));
      expect(ready, `${where} the child opened the log`).toBe(`R ${firstIndex} ${lastIndex}`);
      const kind = scenario.startsWith('after') ? 'T' : 'B';
      const inflight = scenario.endsWith('-inflight');
      // `T|B <at> <firstIndex> <lastIndex>` once the truncation resolved; an -inflight kill may come first.
      const cut = child.lines.find((l) => l.startsWith(`${kind} `));
      const resolved = cut !== undefined;
      if (!resolved && !inflight) throw new Error(`${where} the child never reported the truncation; last lines ${child.lastLines()}`);
      const [, argText, firstText, lastText] = (cut ?? '').split(' ');
      const reportedFirst = Number(firstText);
      const reportedLast = Number(lastText);
      if (resolved) expect(Number(argText)).toBe(at);
      const setupAcks = new Map<number, Rec>();
      const postAcks = new Map<number, Rec>();
      for (const line of child.lines) {
        if (!line.startsWith('A ')) continue;
        const [, i, k, n] = line.split(' ').map(Number) as [number, number, number, number];
        ((k - round * 1_000_000) >= POST_KEY_OFFSET ? postAcks : setupAcks).set(i, { key: k, length: n });
      }
      expect(setupAcks.size, `${where} setup records acknowledged`).toBe(SETUP_COUNT);
      for (let i = lastIndex + 1; i <= setupLast; i++) {
        const rec = setupAcks.get(i);
        if (rec === undefined) throw new Error(`${where} setup record ${i} was not acknowledged (indices ${lastIndex + 1}..${setupLast} expected)`);
        model.set(i, rec);
      }

      if (inflight) {
        inflightRounds.push(resolved ? 'resolved-before-kill' : 'killed-mid-truncation');
        // Killed while the truncation ran (or just after it resolved). truncateAfter: the log is a
        // prefix of what it was, at least up to `at`; exactly `at` if it had resolved. truncateBefore:
        // the same records minus some whole leading segments below `at`.
        const wal = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES });
        try {
          if (kind === 'T') {
            expect(wal.firstIndex, `${where} firstIndex`).toBe(firstIndex);
            expect(wal.lastIndex, `${where} lastIndex after a kill during truncateAfter(${at})`).toBeGreaterThanOrEqual(at);
            expect(wal.lastIndex, `${where} lastIndex after a kill during truncateAfter(${at})`).toBeLessThanOrEqual(resolved ? at : setupLast);
          } else {
            // Killed while truncateBefore(at) ran: some prefix of whole segments may be gone, never more.
            expect(wal.lastIndex, `${where} lastIndex after a kill during truncateBefore(${at})`).toBe(setupLast);
            expect(wal.firstIndex, `${where} firstIndex after a kill during truncateBefore(${at})`).toBeGreaterThanOrEqual(firstIndex);
            expect(wal.firstIndex, `${where} firstIndex after a kill during truncateBefore(${at})`).toBeLessThanOrEqual(at);
            if (resolved) expect(wal.firstIndex, `${where} firstIndex after truncateBefore(${at}) resolved`).toBe(reportedFirst);
          }
          let expectIndex = wal.firstIndex;
          for await (const { index, data } of wal.entries()) {
            expect(index, `${where} contiguous indices`).toBe(expectIndex++);
            const verdict = checkSelfDescribing(data, seed);
            if ('problem' in verdict) throw new Error(`${where} record ${index}: ${verdict.problem}`);
            if (model.get(index)?.key !== verdict.key) throw new Error(`${where} record ${index} holds key ${verdict.key}, expected ${model.get(index)?.key}`);
          }
          expect(expectIndex, `${where} entries() covered the log`).toBe(wal.lastIndex + 1);
          for (const i of [...model.keys()]) if (i > wal.lastIndex || i < wal.firstIndex) model.delete(i);
          lastIndex = wal.lastIndex;
          firstIndex = wal.firstIndex;
        } finally {
          await wal.close();
        }
        continue;
      }

      // The model after the truncation, checked against what the child saw when it resolved.
      if (kind === 'T') {
        expect(reportedLast, `${where} lastIndex right after truncateAfter(${at})`).toBe(at);
        expect(reportedFirst, `${where} firstIndex right after truncateAfter(${at})`).toBe(firstIndex);
        for (const i of [...model.keys()]) if (i > at) model.delete(i);
        lastIndex = at;
      } else {
        expect(reportedLast, `${where} lastIndex right after truncateBefore(${at})`).toBe(setupLast);
        expect(reportedFirst, `${where} firstIndex right after truncateBefore(${at}) is at most ${at}`).toBeLessThanOrEqual(at);
        expect(reportedFirst, `${where} firstIndex never moves back`).toBeGreaterThanOrEqual(firstIndex);
        // More than two segments' worth of payload below `at`: the first segment is sealed and wholly below it, so it must go.
        let below = 0;
        for (let i = firstIndex; i < at; i++) below += model.get(i)?.length ?? 0;
        if (below > 2 * SEGMENT_BYTES) expect(reportedFirst, `${where} truncateBefore(${at}) with ${below} bytes below it dropped nothing`).toBeGreaterThan(firstIndex);
        for (const i of [...model.keys()]) if (i < reportedFirst) model.delete(i);
        firstIndex = reportedFirst;
        lastIndex = setupLast;
      }
      const cutLast = lastIndex;
      for (const [i, rec] of postAcks) model.set(i, rec);

      // Reopen in this process: exact bounds, exact bytes, nothing truncated came back.
      const wal = await Wal.open(dir, { segmentBytes: SEGMENT_BYTES });
      try {
        expect(wal.firstIndex, `${where} firstIndex after reopen`).toBe(firstIndex);
        if (scenario.endsWith('-append')) {
          const maxAck = Math.max(cutLast, ...postAcks.keys());
          expect(wal.lastIndex, `${where} lastIndex after reopen covers every acknowledged append`).toBeGreaterThanOrEqual(maxAck);
        } else {
          expect(wal.lastIndex, `${where} lastIndex after reopen`).toBe(cutLast);
        }
        let expectIndex = wal.firstIndex;
        const next = new Map<number, Rec>();
        for await (const { index, data } of wal.entries({ from: wal.firstIndex, to: wal.lastIndex })) {
          expect(index, `${where} contiguous indices`).toBe(expectIndex++);
          const verdict = checkSelfDescribing(data, seed);
          if ('problem' in verdict) throw new Error(`${where} record ${index}: ${verdict.problem}`);
          const want = model.get(index);
          if (want !== undefined) {
            if (want.key !== verdict.key) throw new Error(`${where} record ${index} holds key ${verdict.key}, expected key ${want.key}`);
          } else if (index <= cutLast || verdict.key - round * 1_000_000 < POST_KEY_OFFSET) {
            throw new Error(`${where} record ${index} (key ${verdict.key}) should not be in the log: a truncated or stale record came back`);
          }
          next.set(index, want ?? { key: verdict.key, length: data.length });
        }
        expect(expectIndex, `${where} entries() covered the log`).toBe(wal.lastIndex + 1);
        if (wal.firstIndex > 1) {
          const err = await rejectionOf(wal.read(wal.firstIndex - 1));
          expect(errorCode(err), `${where} read below firstIndex: ${err.message}`).toBe('TM_OUT_OF_RANGE');
        }
        model = next;
        lastIndex = wal.lastIndex;
      } finally {
        await wal.close();
      }
    }
    // eslint-disable-next-line no-console
    console.log(`truncate-crash.test: kills while truncating: ${inflightRounds.join(', ')}`);
  }, 120_000);
});
