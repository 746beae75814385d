/**
 * Child process for crash.test.ts. Opens the log in `dir` and appends at a fixed
 * concurrency (single appends of mixed sizes and some appendMany batches), or with
 * `pipeline`, from one caller that keeps that many appendMany calls in flight, until it is
 * SIGKILLed, or, in `finish` mode, until `finishCount` records are in, then closes.
 * Two readers check random durable records meanwhile.
 *
 * Protocol (stdout, one line each; written only AFTER the promise it reports resolved):
 *   L                                loaded, waiting for `go` on stdin (when waitForGo)
 *   R <firstIndex> <lastIndex>       opened (recovery done)
 *   A <index> <key> <length>         this record is acknowledged (its append resolved)
 *   D <firstIndex> <lastIndex>       finish mode: all appended and closed
 *   E <message>                      something went wrong (the parent fails the test)
 * Record bytes are recordBytes(key, length, seed), keys unique per (round, sequence).
 */
import { Wal, type SyncMode } from '../../lib/index';
import { Rng, checkSelfDescribing, recordBytes, seedOf } from '../helpers';

interface Config {
  dir: string;
  sync: SyncMode;
  segmentBytes: number;
  io?: 'thread' | 'uring';
  seed: number;
  round: number;
  concurrency: number;
  mode: 'crash' | 'finish';
  finishCount: number;
  waitForGo: boolean;
  /** Keys of round r are r * keysPerRound + sequence. */
  keysPerRound: number;
  /**
   * When above 0: instead of `concurrency` awaiting writers, one caller keeps this many
   * appendMany calls in flight (it issues the next before awaiting the oldest); each
   * must settle in call order with its own index range.
   */
  pipeline?: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;

function out(text: string): void {
  process.stdout.write(text);
}

function fail(message: string): void {
  out(`E ${message.replace(/\n/g, ' | ')}\n`);
}

/**
 * Sizes: mostly small, a fair share of 1-4 KiB, some up to 40 KiB (several per 256 KiB segment),
 * and rarely one of 100-200 KiB (most of a segment: rotations around a single huge record).
 */
function pickLength(rng: Rng): number {
  const r = rng.float();
  if (r < 0.6) return rng.int(16, 256);
  if (r < 0.92) return rng.int(257, 4096);
  if (r < 0.995) return rng.int(4097, 40 * 1024);
  return rng.int(100 * 1024, 200 * 1024);
}

async function waitForGo(): Promise<void> {
  out('L\n');
  await new Promise<void>((resolve) => {
    let buffered = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.includes('go\n')) {
        process.stdin.destroy(); // nothing more to read; an open stdin would keep the process alive
        resolve();
      }
    });
  });
}

async function main(): Promise<void> {
  if (config.waitForGo) await waitForGo();
  const wal = await Wal.open(config.dir, { sync: config.sync, segmentBytes: config.segmentBytes, io: config.io ?? 'thread' });
  if (wal.io !== (config.io ?? 'thread')) throw new Error(`crash-child: asked for io ${config.io}, the log uses ${wal.io}`);
  out(`R ${wal.firstIndex} ${wal.lastIndex}\n`);

  const rng = new Rng(seedOf(config.seed, config.round + 1));
  let sequence = 0;
  let nextIndex = wal.lastIndex + 1; // appends are numbered in call order
  let appended = 0;
  const target = config.mode === 'finish' ? config.finishCount : Number.POSITIVE_INFINITY;

  const nextKey = (): number => config.round * config.keysPerRound + sequence++;

  /** `count` new records (keys, lengths, bytes), numbered next: `expectedLast` is the index the last must get. */
  function newBatch(count: number): { keys: number[]; lengths: number[]; datas: Buffer[]; expectedLast: number } {
    const keys: number[] = [];
    const lengths: number[] = [];
    const datas: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const key = nextKey();
      const length = pickLength(rng);
      keys.push(key);
      lengths.push(length);
      datas.push(recordBytes(key, length, config.seed));
    }
    const expectedLast = nextIndex + count - 1;
    nextIndex += count;
    appended += count;
    return { keys, lengths, datas, expectedLast };
  }

  /** Reports a resolved appendMany ending at `last` (after it resolved). */
  function acknowledge(last: number, keys: number[], lengths: number[]): void {
    const count = keys.length;
    let lines = '';
    for (let i = 0; i < count; i++) {
      lines += `A ${last - count + 1 + i} ${keys[i]} ${lengths[i]}\n`;
      ackedKeys.set(last - count + 1 + i, keys[i] as number);
    }
    out(lines);
  }

  async function writer(): Promise<void> {
    while (appended < target) {
      if (rng.chance(0.15)) {
        const count = Math.min(rng.int(2, 16), Math.max(1, target - appended));
        const { keys, lengths, datas, expectedLast } = newBatch(count);
        const last = await wal.appendMany(datas);
        if (last !== expectedLast) fail(`appendMany of ${count} resolved with last index ${last}, expected ${expectedLast} (call order)`);
        acknowledge(last, keys, lengths);
      } else {
        const key = nextKey();
        const length = pickLength(rng);
        const data = recordBytes(key, length, config.seed);
        const expected = nextIndex++;
        appended += 1;
        const index = await wal.append(data);
        if (index !== expected) fail(`append resolved with index ${index}, expected ${expected} (call order)`);
        out(`A ${index} ${key} ${length}\n`);
        ackedKeys.set(index, key);
      }
    }
  }

  /** One caller, `depth` appendMany calls in flight: the next is issued before the oldest is awaited. */
  async function pipelined(depth: number): Promise<void> {
    const inflight: Promise<void>[] = [];
    let issued = 0;
    let settled = 0;
    while (appended < target) {
      const count = Math.min(rng.int(1, 64), target - appended);
      const { keys, lengths, datas, expectedLast } = newBatch(count);
      const call = issued++;
      inflight.push(
        wal.appendMany(datas).then((last) => {
          if (settled++ !== call) fail(`pipelined appendMany call ${call} settled after a later one (call order)`);
          if (last !== expectedLast) fail(`pipelined appendMany of ${count} resolved with last index ${last}, expected ${expectedLast} (call order)`);
          acknowledge(last, keys, lengths);
        }),
      );
      if (inflight.length >= depth) await inflight.shift();
    }
    await Promise.all(inflight);
  }

  // Readers run alongside: any durable index must read back as a record some writer wrote, and an
  // acknowledged one as exactly its bytes, while segments rotate under them.
  const ackedKeys = new Map<number, number>();
  const readRng = new Rng(seedOf(config.seed, config.round + 0x5eed));
  const firstReadable = wal.firstIndex;
  let writing = true;
  async function reader(): Promise<void> {
    while (writing) {
      const last = wal.lastIndex;
      if (last < firstReadable) {
        await new Promise((r) => setImmediate(r));
        continue;
      }
      const index = readRng.int(firstReadable, last);
      const data = await wal.read(index);
      const verdict = checkSelfDescribing(data, config.seed);
      if ('problem' in verdict) fail(`read(${index}) while appending: ${verdict.problem}`);
      else if (ackedKeys.has(index) && ackedKeys.get(index) !== verdict.key) fail(`read(${index}) returned key ${verdict.key}, acknowledged as key ${ackedKeys.get(index)}`);
    }
  }

  const writers: Promise<void>[] = [];
  if ((config.pipeline ?? 0) > 0) writers.push(pipelined(config.pipeline ?? 0));
  else for (let i = 0; i < config.concurrency; i++) writers.push(writer());
  const readers = [reader(), reader()];
  await Promise.all(writers);
  writing = false;
  await Promise.all(readers);
  const firstIndex = wal.firstIndex;
  const lastIndex = wal.lastIndex;
  await wal.close();
  out(`D ${firstIndex} ${lastIndex}\n`);
}

main().catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  fail(`${e.code ?? 'no code'}: ${e.message ?? String(err)}`);
  process.exitCode = 1;
});
