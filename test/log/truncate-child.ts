/**
 * Child process for truncate-crash.test.ts. Opens the log, appends `setupCount` records,
 * then truncates and reports the truncation only after its promise resolved; the parent
 * SIGKILLs it as soon as it reads that line (or, in the `-append` scenarios, after a few
 * acknowledged appends that follow the truncation).
 *
 * Protocol (stdout lines):
 *   R <firstIndex> <lastIndex>             opened
 *   A <index> <key> <length>               acknowledged append
 *   S <firstIndex> <lastIndex>             setup appends done
 *   P <argument>                           about to truncate (the -inflight scenarios)
 *   T <argument> <firstIndex> <lastIndex>  truncateAfter(argument) resolved
 *   B <argument> <firstIndex> <lastIndex>  truncateBefore(argument) resolved
 *   E <message>                            failure
 * Keys: round * 1e6 + n for setup records, round * 1e6 + 500000 + n after the truncation.
 */
import { Wal } from '../../lib/index';
import { Rng, recordBytes, seedOf } from '../helpers';

export type TruncateScenario = 'after' | 'after-append' | 'after-all' | 'after-inflight' | 'before' | 'before-append' | 'before-inflight';

interface Config {
  dir: string;
  segmentBytes: number;
  seed: number;
  round: number;
  scenario: TruncateScenario;
  setupCount: number;
  /** Argument of the truncation. */
  at: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;

function out(text: string): void {
  process.stdout.write(text);
}

async function appendKeys(wal: Wal, rng: Rng, firstKey: number, count: number, concurrency: number): Promise<void> {
  let n = 0;
  async function writer(): Promise<void> {
    while (n < count) {
      const key = firstKey + n++;
      const length = rng.int(16, 6000);
      const index = await wal.append(recordBytes(key, length, config.seed));
      out(`A ${index} ${key} ${length}\n`);
    }
  }
  const writers: Promise<void>[] = [];
  for (let i = 0; i < concurrency; i++) writers.push(writer());
  await Promise.all(writers);
}

async function main(): Promise<void> {
  const wal = await Wal.open(config.dir, { segmentBytes: config.segmentBytes });
  out(`R ${wal.firstIndex} ${wal.lastIndex}\n`);
  const rng = new Rng(seedOf(config.seed, config.round));
  const base = config.round * 1_000_000;
  await appendKeys(wal, rng, base, config.setupCount, 8);
  out(`S ${wal.firstIndex} ${wal.lastIndex}\n`);
  if (config.scenario.startsWith('before')) {
    if (config.scenario === 'before-inflight') out(`P ${config.at}\n`); // the parent kills while the truncation runs
    await wal.truncateBefore(config.at);
    out(`B ${config.at} ${wal.firstIndex} ${wal.lastIndex}\n`);
  } else {
    if (config.scenario === 'after-inflight') out(`P ${config.at}\n`); // the parent kills while the truncation runs
    await wal.truncateAfter(config.at);
    out(`T ${config.at} ${wal.firstIndex} ${wal.lastIndex}\n`);
  }
  if (config.scenario.endsWith('-append')) {
    await appendKeys(wal, rng, base + 500_000, 100_000, 16); // until killed
  }
  // Wait to be killed, holding the log open.
  setInterval(() => undefined, 1000);
}

main().catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  out(`E ${e.code ?? 'no code'}: ${(e.message ?? String(err)).replace(/\n/g, ' | ')}\n`);
  process.exitCode = 1;
});
