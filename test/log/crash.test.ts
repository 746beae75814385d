/**
 * Promise 1 (acknowledged means durable) under process kills: a child appends at
 * concurrency 32 and reports each acknowledged record over its stdout pipe only after the
 * append resolved; the parent SIGKILLs it at a seeded random moment, reopens the log,
 * and checks that every acknowledged record is there with its exact bytes, that indices
 * are contiguous, and that nothing but records a child wrote is in the log. The next
 * child then recovers the same directory and keeps appending. One log directory for all
 * rounds; small segments so rotations happen throughout. Some kills land while the child is
 * still opening the log, so recovery itself gets interrupted too.
 *
 * Every variant runs on both append paths: the writer thread (`io: 'thread'`) and
 * io_uring from the JS thread (`io: 'uring'`, where the kernel allows it; the child
 * then refuses to open otherwise, so a variant never silently runs on the other path).
 *
 * Replay a run: TIDEMARK_CRASH_SEED=<seed printed in the test name> npx vitest run test/log/crash.test.ts
 * More kills: TIDEMARK_CRASH_KILLS=500 (default 50 for fdatasync).
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Wal, type IoMode, type SyncMode } from '../../lib/index';
import { Rng, checkSelfDescribing, errorCode, recordBytes, runSeed, seedOf, spawnTs, tmpDir, firstDiff, type TsChild } from '../helpers';

const CHILD = join(__dirname, 'crash-child.ts');
const SEGMENT_BYTES = 256 * 1024;
const CONCURRENCY = 32;
const KEYS_PER_ROUND = 0x1000000; // keys of round r: r * KEYS_PER_ROUND + sequence (passed to the child)
const FINISH_COUNT = 300;
const SAMPLE_OLD_READS = 100;

const seed = runSeed('TIDEMARK_CRASH_SEED');
const kills = Number(process.env.TIDEMARK_CRASH_KILLS ?? 50);
// eslint-disable-next-line no-console
console.log(`crash.test: seed ${seed} (replay with TIDEMARK_CRASH_SEED=${seed}), ${kills} kills`);

interface Ack {
  key: number;
  length: number;
}

interface RoundResult {
  acks: number;
  plan: string;
}

class CrashRun {
  /** Key of every index seen in the log so far (acknowledged or not): what is there must stay. */
  private readonly seen = new Map<number, number>();
  /** Every acknowledged record, by index. */
  private readonly acked = new Map<number, Ack>();
  private maxAcked = 0;
  private lastIndex = 0;
  private readonly rng: Rng;
  totalAcks = 0;

  constructor(
    private readonly dir: string,
    private readonly sync: SyncMode,
    private readonly seed: number,
    private readonly segmentBytes: number = SEGMENT_BYTES,
    /** appendMany calls one caller keeps in flight (crash-child.ts `pipeline`); 0: CONCURRENCY awaiting writers. */
    private readonly pipeline = 0,
    private readonly io: Exclude<IoMode, 'auto'> = 'thread',
  ) {
    this.rng = new Rng(seedOf(seed, 0xc0ffee));
  }

  spawn(round: number, mode: 'crash' | 'finish'): TsChild {
    const config = {
      dir: this.dir,
      sync: this.sync,
      segmentBytes: this.segmentBytes,
      io: this.io,
      seed: this.seed,
      round,
      concurrency: CONCURRENCY,
      mode,
      finishCount: FINISH_COUNT,
      waitForGo: true,
      keysPerRound: KEYS_PER_ROUND,
      pipeline: this.pipeline,
    };
    return spawnTs(CHILD, [JSON.stringify(config)]);
  }

  private where(round: number): string {
    return `[sync=${this.sync} io=${this.io} seed=${this.seed} round=${round}; replay: TIDEMARK_CRASH_SEED=${this.seed}]`;
  }

  /** Starts the child (already loaded), kills it by the round's plan, collects its acknowledgements. */
  async crashRound(child: TsChild, round: number): Promise<RoundResult> {
    await child.waitFor((l) => l === 'L', 60_000);
    const r = this.rng.float();
    // Plans: kill while the log is being opened (recovery interrupted), right after it opened,
    // at the n-th acknowledgement, or n ms after the first acknowledgement.
    const plan =
      r < 0.08
        ? { kind: 'opening' as const, n: this.rng.int(0, 15) }
        : r < 0.16
          ? { kind: 'ready' as const, n: 0 }
          : r < 0.58
            ? { kind: 'acks' as const, n: this.rng.int(1, 400) }
            : { kind: 'time' as const, n: this.rng.int(0, 80) };
    let ackCount = 0;
    let timer: NodeJS.Timeout | undefined;
    let noProgress: NodeJS.Timeout | undefined;
    let stalled = false;
    const stop = child.onLine((line) => {
      if (line.startsWith('R ')) {
        if (plan.kind === 'ready') child.kill(); // appends are starting: kill among the first in-flight batches
        else
          noProgress = setTimeout(() => {
            stalled = true;
            child.kill();
          }, 20_000);
      } else if (line.startsWith('A ')) {
        ackCount++;
        if (plan.kind === 'acks' && ackCount === plan.n) child.kill(); // synchronously, at the n-th acknowledgement
        if (plan.kind === 'time' && ackCount === 1) timer = setTimeout(() => child.kill(), plan.n); // n ms into a stream of appends
        if (ackCount === 1 && noProgress !== undefined) clearTimeout(noProgress);
      } else if (line.startsWith('E ')) {
        child.kill();
      }
    });
    child.send('go');
    if (plan.kind === 'opening') timer = setTimeout(() => child.kill(), plan.n);
    const exit = await child.exited;
    stop();
    if (timer !== undefined) clearTimeout(timer);
    if (noProgress !== undefined) clearTimeout(noProgress);

    const errors = child.lines.filter((l) => l.startsWith('E '));
    if (errors.length > 0) throw new Error(`${this.where(round)} child reported: ${errors.join('; ')}; stderr: ${child.stderr}`);
    if (exit.signal !== 'SIGKILL') throw new Error(`${this.where(round)} child ended by itself (exit ${JSON.stringify(exit)}) instead of being killed; stderr: ${child.stderr}`);
    const ready = child.lines.find((l) => l.startsWith('R '));
    if (ready === undefined) {
      // Only the 'opening' plan kills before R; any other child without R died or hung while opening the log.
      if (plan.kind !== 'opening') throw new Error(`${this.where(round)} child never reported it opened the log (exit ${JSON.stringify(exit)}); stderr: ${child.stderr}`);
    } else {
      this.checkReady(ready, round);
    }
    if (stalled) throw new Error(`${this.where(round)} child made no progress: no append acknowledged within 20 s of opening`);
    const acks = this.collectAcks(child.lines, round);
    return { acks, plan: `${plan.kind}:${plan.n}` };
  }

  /** The final round: a child appends FINISH_COUNT records and closes cleanly. */
  async finishRound(child: TsChild, round: number): Promise<void> {
    await child.waitFor((l) => l === 'L', 60_000);
    child.send('go');
    const hung = setTimeout(() => child.kill(), 60_000);
    const exit = await child.exited;
    clearTimeout(hung);
    const errors = child.lines.filter((l) => l.startsWith('E '));
    if (errors.length > 0) throw new Error(`${this.where(round)} child reported: ${errors.join('; ')}; stderr: ${child.stderr}`);
    if (exit.code !== 0) throw new Error(`${this.where(round)} finishing child exited ${JSON.stringify(exit)}; stderr: ${child.stderr}`);
    const ready = child.lines.find((l) => l.startsWith('R '));
    if (ready === undefined) throw new Error(`${this.where(round)} finishing child printed no R line`);
    this.checkReady(ready, round);
    const acks = this.collectAcks(child.lines, round);
    if (acks !== FINISH_COUNT) throw new Error(`${this.where(round)} finishing child acknowledged ${acks} records, expected ${FINISH_COUNT}`);
    const done = child.lines.find((l) => l.startsWith('D '));
    if (done !== undefined) {
      const [, first, last] = done.split(' ').map(Number);
      if (first !== 1 || last !== this.lastIndex + FINISH_COUNT) throw new Error(`${this.where(round)} after finishing, child saw firstIndex ${first} lastIndex ${last}, expected 1 and ${this.lastIndex + FINISH_COUNT}`);
    } else {
      throw new Error(`${this.where(round)} finishing child printed no D line`);
    }
  }

  /** The child must see exactly the log the parent verified last (its recovery drops nothing acknowledged). */
  private checkReady(line: string, round: number): void {
    const [, first, last] = line.split(' ').map(Number);
    if (first !== 1 || last !== this.lastIndex) throw new Error(`${this.where(round)} child opened the log at firstIndex ${first} lastIndex ${last}; the parent last saw 1..${this.lastIndex}`);
  }

  private collectAcks(lines: readonly string[], round: number): number {
    let count = 0;
    for (const line of lines) {
      if (!line.startsWith('A ')) continue;
      const [, index, key, length] = line.split(' ').map(Number);
      if (index === undefined || key === undefined || length === undefined || !Number.isInteger(index) || !Number.isInteger(key) || !Number.isInteger(length)) {
        throw new Error(`${this.where(round)} malformed acknowledgement line: ${line}`);
      }
      if (Math.floor(key / KEYS_PER_ROUND) !== round) throw new Error(`${this.where(round)} acknowledgement of a key from another round: ${line}`);
      const before = this.acked.get(index);
      if (before !== undefined) throw new Error(`${this.where(round)} index ${index} acknowledged twice (key ${before.key} earlier, now ${key}): an acknowledged record was overwritten`);
      this.acked.set(index, { key, length });
      if (index > this.maxAcked) this.maxAcked = index;
      count++;
    }
    this.totalAcks += count;
    return count;
  }

  /**
   * Reopens the log in this process and checks it: every acknowledged record present with
   * its bytes, indices contiguous, new records all from this round, a sample of older
   * records unchanged. `full` rescans the whole log.
   */
  async verify(round: number, full: boolean): Promise<void> {
    const wal = await Wal.open(this.dir, { sync: this.sync, segmentBytes: this.segmentBytes });
    try {
      const where = this.where(round);
      if (wal.firstIndex !== 1) throw new Error(`${where} firstIndex is ${wal.firstIndex} after recovery, expected 1 (nothing was truncated)`);
      if (wal.lastIndex < this.maxAcked) throw new Error(`${where} lastIndex is ${wal.lastIndex} after recovery but index ${this.maxAcked} was acknowledged: acknowledged records lost`);
      if (wal.lastIndex < this.lastIndex) throw new Error(`${where} lastIndex went back from ${this.lastIndex} to ${wal.lastIndex}`);
      const from = full ? 1 : this.lastIndex + 1;
      let expectedIndex = from;
      for await (const { index, data } of wal.entries({ from, to: wal.lastIndex })) {
        if (index !== expectedIndex) throw new Error(`${where} entries() yielded index ${index}, expected ${expectedIndex}: indices not contiguous`);
        expectedIndex++;
        this.checkEntry(index, data, round, where);
      }
      if (expectedIndex !== wal.lastIndex + 1) throw new Error(`${where} entries({from: ${from}, to: ${wal.lastIndex}}) stopped at ${expectedIndex - 1}`);
      if (!full) {
        // A sample of records verified in earlier rounds, by random access: still the same bytes.
        for (let i = 0; i < SAMPLE_OLD_READS && this.lastIndex > 0; i++) {
          const index = this.rng.int(1, this.lastIndex);
          this.checkEntry(index, await wal.read(index), round, where);
        }
      }
      this.lastIndex = wal.lastIndex;
    } finally {
      await wal.close();
    }
  }

  private checkEntry(index: number, data: Buffer, round: number, where: string): void {
    const verdict = checkSelfDescribing(data, this.seed);
    if ('problem' in verdict) throw new Error(`${where} record ${index} is not a record any child wrote: ${verdict.problem}`);
    const ack = this.acked.get(index);
    if (ack !== undefined && ack.key !== verdict.key) {
      const expected = recordBytes(ack.key, ack.length, this.seed);
      throw new Error(`${where} acknowledged record ${index} (key ${ack.key}, ${ack.length} bytes) holds key ${verdict.key} (${data.length} bytes; first difference at byte ${firstDiff(expected, data)})`);
    }
    const before = this.seen.get(index);
    if (before === undefined) {
      if (index > this.lastIndex && Math.floor(verdict.key / KEYS_PER_ROUND) !== round) {
        throw new Error(`${where} new record ${index} has key ${verdict.key} from round ${Math.floor(verdict.key / KEYS_PER_ROUND)}: a stale record came back`);
      }
      this.seen.set(index, verdict.key);
    } else if (before !== verdict.key) {
      throw new Error(`${where} record ${index} changed from key ${before} to ${verdict.key} between reopenings`);
    }
  }
}

async function crashTest(
  sync: SyncMode,
  killCount: number,
  dir: string,
  segmentBytes = SEGMENT_BYTES,
  pipeline = 0,
  io: Exclude<IoMode, 'auto'> = 'thread',
): Promise<void> {
  const run = new CrashRun(dir, sync, seed, segmentBytes, pipeline, io);
  const plans: string[] = [];
  let next = run.spawn(0, killCount === 0 ? 'finish' : 'crash');
  for (let round = 0; round < killCount; round++) {
    const child = next;
    // Load the next child (tsx + addon) while this one runs; it opens the log only on `go`.
    next = run.spawn(round + 1, round + 1 === killCount ? 'finish' : 'crash');
    try {
      const result = await run.crashRound(child, round);
      plans.push(`${result.plan}=${result.acks}`);
      await run.verify(round, false);
    } catch (err) {
      child.kill();
      next.kill();
      throw err;
    }
  }
  await run.finishRound(next, killCount);
  await run.verify(killCount, true);
  // eslint-disable-next-line no-console
  console.log(`crash.test ${sync} io=${io}: ${killCount} kills, ${run.totalAcks} acknowledged records verified; plans (kind:n=acks): ${plans.join(' ')}`);
  expect(run.totalAcks).toBeGreaterThan(FINISH_COUNT);
}

/** Opens a throwaway log with `sync: 'direct'`: undefined when it works, else the reason it is refused. */
async function directUnsupportedReason(dir: string, io: Exclude<IoMode, 'auto'> = 'thread'): Promise<string | undefined> {
  try {
    const wal = await Wal.open(dir, { sync: 'direct', segmentBytes: SEGMENT_BYTES, io });
    await wal.close();
    return undefined;
  } catch (err) {
    if (errorCode(err) === 'TM_DIRECT_UNSUPPORTED') return (err as Error).message;
    throw err;
  }
}

describe('crash: SIGKILL during concurrent appends loses no acknowledged record', () => {
  it(`sync fdatasync, ${kills} kills (seed ${seed})`, async () => {
    await crashTest('fdatasync', kills, await tmpDir('crash'));
  }, Math.max(150_000, kills * 3_000));

  // Segments of 1 then 2 MiB: the next spare (8 zero-fill chunks of 256 KiB) can still be being
  // zero-written when a rotation takes it (the fill stops there); kills land around that too.
  it(`sync fdatasync, 2 MiB segments (spares taken mid-fill), 12 kills (seed ${seed})`, async () => {
    await crashTest('fdatasync', 12, await tmpDir('crash-big'), 2 * 1024 * 1024);
  }, 90_000);

  // One caller that issues the next appendMany before awaiting the previous (what the
  // bench's pipelined appendMany line measures): every call settles in call order with its
  // own indexes (checked in the child), and what was acknowledged survives the kill.
  it(`sync fdatasync, one caller with 4 appendMany calls in flight, 12 kills (seed ${seed})`, async () => {
    await crashTest('fdatasync', 12, await tmpDir('crash-pipelined'), SEGMENT_BYTES, 4);
  }, 90_000);

  it(`sync dsync, 12 kills (seed ${seed})`, async () => {
    await crashTest('dsync', 12, await tmpDir('crash-dsync'));
  }, 90_000);

  // 'none' resolves once the bytes are in the page cache: a process kill (not a power loss) must still lose nothing.
  it(`sync none, 8 kills (seed ${seed})`, async () => {
    await crashTest('none', 8, await tmpDir('crash-none'));
  }, 90_000);

  it(`sync direct, 12 kills, if the filesystem allows O_DIRECT (seed ${seed})`, async (ctx) => {
    const probe = await tmpDir('crash-direct-probe');
    const reason = await directUnsupportedReason(probe);
    if (reason !== undefined) {
      // eslint-disable-next-line no-console
      console.warn(`crash.test: skipping the direct variant: ${reason}`);
      ctx.skip(`O_DIRECT refused here: ${reason}`);
    }
    await crashTest('direct', 12, await tmpDir('crash-direct'));
  }, 90_000);
});

/** Opens a throwaway log with `io: 'uring'`: undefined when it works, else why io_uring is refused. */
async function uringUnsupportedReason(dir: string): Promise<string | undefined> {
  try {
    const wal = await Wal.open(dir, { io: 'uring', segmentBytes: SEGMENT_BYTES });
    const io = wal.io;
    await wal.close();
    expect(io).toBe('uring');
    return undefined;
  } catch (err) {
    if (errorCode(err) === 'TM_URING_UNSUPPORTED') return (err as Error).message;
    throw err;
  }
}

// The same kills with io: 'uring'. Where the kernel refuses io_uring (CI containers may), the
// variants are skipped with the reason printed; TIDEMARK_REQUIRE_URING=1 makes that a failure.
describe('crash (io_uring path): SIGKILL during concurrent appends loses no acknowledged record', () => {
  const uringKills = Math.max(8, Math.ceil(kills / 2));
  const skipUnlessUring = async (ctx: { skip: (note?: string) => void }): Promise<void> => {
    const reason = await uringUnsupportedReason(await tmpDir('crash-uring-probe'));
    if (reason === undefined) return;
    if (process.env.TIDEMARK_REQUIRE_URING === '1') throw new Error(`TIDEMARK_REQUIRE_URING=1 but io_uring is refused: ${reason}`);
    // eslint-disable-next-line no-console
    console.warn(`crash.test: skipping the io_uring variants: ${reason}`);
    ctx.skip(`io_uring refused here: ${reason}`);
  };

  it(`io uring, sync fdatasync, ${uringKills} kills (seed ${seed})`, async (ctx) => {
    await skipUnlessUring(ctx);
    await crashTest('fdatasync', uringKills, await tmpDir('crash-uring'), SEGMENT_BYTES, 0, 'uring');
  }, Math.max(150_000, uringKills * 3_000));

  it(`io uring, sync fdatasync, 2 MiB segments, 8 kills (seed ${seed})`, async (ctx) => {
    await skipUnlessUring(ctx);
    await crashTest('fdatasync', 8, await tmpDir('crash-uring-big'), 2 * 1024 * 1024, 0, 'uring');
  }, 90_000);

  it(`io uring, sync dsync, 8 kills (seed ${seed})`, async (ctx) => {
    await skipUnlessUring(ctx);
    await crashTest('dsync', 8, await tmpDir('crash-uring-dsync'), SEGMENT_BYTES, 0, 'uring');
  }, 90_000);

  it(`io uring, sync none, 6 kills (seed ${seed})`, async (ctx) => {
    await skipUnlessUring(ctx);
    await crashTest('none', 6, await tmpDir('crash-uring-none'), SEGMENT_BYTES, 0, 'uring');
  }, 90_000);

  it(`io uring, sync direct, 8 kills, if the filesystem allows O_DIRECT (seed ${seed})`, async (ctx) => {
    await skipUnlessUring(ctx);
    const reason = await directUnsupportedReason(await tmpDir('crash-uring-direct-probe'), 'uring');
    if (reason !== undefined) ctx.skip(`O_DIRECT refused here: ${reason}`);
    await crashTest('direct', 8, await tmpDir('crash-uring-direct'), SEGMENT_BYTES, 0, 'uring');
  }, 90_000);
});
