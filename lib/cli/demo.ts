/**
 * `tidemark demo wal` (for now also plain `tidemark demo`): append durably, crash, recover,
 * verify, several times over.
 *
 * A child process (this same CLI, hidden `demo-child` command) opens the log and appends
 * records at concurrency 32, printing every acknowledged index on stdout (a pipe: on Linux
 * a write to it is synchronous, so a line printed before the kill reaches the parent).
 * The parent SIGKILLs the child at a random point, reopens the log (recovery), checks that
 * every acknowledged record is there with exactly the bytes that were appended (a record's
 * bytes are a pure function of its index), appends more, and goes again.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Wal } from '../index';
import { isTidemarkError } from '../errors';
import type { Scratch } from './cleanup';

/** `1 crash`, `2 crashes`. */
export function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}

/** An error as one line that keeps its cause: `TM_LOCKED: ...`, `EACCES: ...`. */
export function describeError(err: unknown): string {
  if (isTidemarkError(err)) return err.message.includes(err.code) ? err.message : `${err.code}: ${err.message}`;
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== undefined && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** Names of the files a log directory holds: its segments, the spare segment and the lock file (native/segment.h, native/log.cc). */
export function isLogFileName(name: string): boolean {
  return name === 'LOCK' || name === 'spare.wal.tmp' || name === 'spare.wal.ready' || /^\d{20}\.wal$/.test(name);
}

/** Appends in flight in the child. */
export const demoConcurrency = 32;
/** Default segment size of the demo's log: small, so that a run crosses several rotations. */
export const demoSegmentBytesDefault = 256 * 1024;
/** Records the parent appends itself after each recovery. */
const demoParentAppends = 100;

/** splitmix32-style integer hash; deterministic content and lengths from an index. */
function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * The bytes of the record at `index`: 8-byte little-endian index, then 8..263 bytes from a
 * generator seeded by the index. Any record read back can be checked against this.
 */
export function demoRecord(index: number): Buffer {
  const length = 16 + (mix32(index) % 256);
  const out = Buffer.allocUnsafe(length);
  out.writeBigUInt64LE(BigInt(index), 0);
  let state = mix32(index ^ 0x5bd1e995) || 1;
  for (let i = 8; i < length; i++) {
    // xorshift32
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[i] = state & 0xff;
  }
  return out;
}

/** A small seeded PRNG (mulberry32) for the kill points: the seed is printed, runs replay. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options of the hidden child command. */
export interface DemoChildOptions {
  dir: string;
  segmentBytes: number;
  records: number;
  concurrency: number;
}

/**
 * The child: appends `records` records at `concurrency`, prints `ready <lastIndex>`, then
 * `ack <index> <index> ...` lines, then `done`. Indexes are assigned in call order, so the
 * child knows each record's index (and so its content) before appending; a different
 * returned index is a failure (`error ...`, exit 1).
 */
export async function runDemoChild(options: DemoChildOptions): Promise<number> {
  try {
    return await appendInChild(options);
  } catch (err) {
    // Not a wrong answer but an operating error (a lock, a permission, a full disk): say which.
    process.stdout.write(`fatal ${describeError(err).replace(/\n/g, ' ')}\n`);
    return 1;
  }
}

async function appendInChild(options: DemoChildOptions): Promise<number> {
  const wal = await Wal.open(options.dir, { segmentBytes: options.segmentBytes });
  let next = wal.lastIndex + 1;
  const last = wal.lastIndex + options.records;
  process.stdout.write(`ready ${wal.lastIndex}\n`);
  let acks: number[] = [];
  let flushScheduled = false;
  const flush = (): void => {
    flushScheduled = false;
    if (acks.length === 0) return;
    process.stdout.write(`ack ${acks.join(' ')}\n`);
    acks = [];
  };
  let failure: string | undefined;
  const worker = async (): Promise<void> => {
    while (next <= last && failure === undefined) {
      const expected = next++;
      const index = await wal.append(demoRecord(expected));
      if (index !== expected) {
        failure = `append of record ${expected} returned index ${index}`;
        return;
      }
      acks.push(index);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  flush();
  await wal.close();
  if (failure !== undefined) {
    process.stdout.write(`error ${failure}\n`);
    return 1;
  }
  process.stdout.write('done\n');
  return 0;
}

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Log directory; a fresh temp directory (removed afterwards) when undefined. */
  dir?: string;
  /** Records the child tries to append per round (it is killed part-way). */
  records: number;
  /** Crash rounds. */
  rounds: number;
  /** Segment size of the log (small by default, so that the demo crosses segment rotations). */
  segmentBytes: number;
  /** Simulate a torn write after the kill in odd rounds (default true). */
  tornWrites: boolean;
  /** PRNG seed for the kill points. */
  seed: number;
  /** How to start this CLI again: `[execPath, ...args]` before the subcommand. */
  selfCommand: readonly string[];
  /** Where report lines go. */
  print: (line: string) => void;
  /**
   * The directory holds a log an earlier demo kept: check every record in it first, then
   * continue it. Without it the caller must give an empty or new directory.
   */
  resume?: boolean;
  /** Scratch directories and children, removed and killed if the command is interrupted. */
  scratch?: Scratch;
}

interface RoundResult {
  repair: string;
  acked: number;
  maxAcked: number;
  lastIndexAfter: number;
  unackedDurable: number;
  recoveryMs: number;
  childExit: string;
}

/** Runs the child until it has acknowledged `killAfter` records, then SIGKILLs it. */
function runChildRound(
  options: DemoOptions,
  dir: string,
  killAfter: number,
  acked: Set<number>,
): Promise<{ acked: number; maxAcked: number; childExit: string; killed: boolean; error?: string; fatal?: string }> {
  return new Promise((resolve, reject) => {
    const [command, ...args] = options.selfCommand;
    if (command === undefined) {
      reject(new Error('no command to start the demo child'));
      return;
    }
    const child = spawn(command, [...args, 'demo-child', '--dir', dir, '--records', String(options.records), '--concurrency', String(demoConcurrency), '--segment-bytes', String(options.segmentBytes)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    options.scratch?.child(child);
    let count = 0;
    let maxAcked = 0;
    let killed = false;
    let error: string | undefined;
    let fatal: string | undefined;
    let pending = '';
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < 8192) stderr += chunk;
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.startsWith('ack ')) {
          for (const word of line.slice(4).split(' ')) {
            const index = Number(word);
            acked.add(index);
            count++;
            if (index > maxAcked) maxAcked = index;
          }
          if (!killed && count >= killAfter) {
            killed = true;
            child.kill('SIGKILL');
          }
        } else if (line.startsWith('error ')) {
          error = line.slice(6);
        } else if (line.startsWith('fatal ')) {
          fatal = line.slice(6);
        }
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const childExit = signal !== null ? `killed by ${signal}` : `exited with code ${String(code)}`;
      // A child that died on its own without reporting a wrong answer hit an operating error.
      if (!killed && code !== 0 && error === undefined) fatal ??= `the demo child ${childExit}: ${stderr.trim() || 'no message'}`;
      resolve({ acked: count, maxAcked, childExit, killed, ...(error === undefined ? {} : { error }), ...(fatal === undefined ? {} : { fatal }) });
    });
  });
}

/** Records in the batch whose write is torn by {@link simulateTornWrite}. */
const tornBatchRecords = 40;

/**
 * Simulates a torn write, as power loss in the middle of a batch's write would leave it.
 * The next batch is appended for real to a copy of the log (its last segment has the same
 * header, so the batch belongs to the same chain), and only a prefix of its 512-byte sectors
 * is put into the log after its tail: whole sectors as written, the rest still zero (the
 * segment was zero-filled). At least one sector that holds record or padding bytes is
 * missing, so the batch is incomplete and recovery must drop it. Nothing acknowledged is
 * touched. Skipped (undefined) when the batch would not fit in the segment or a torn tail
 * from the kill is already there.
 */
async function simulateTornWrite(
  dir: string,
  file: string,
  segmentBytes: number,
  random: () => number,
  scratch: Scratch | undefined,
): Promise<{ at: number; bytes: number } | undefined> {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-demo-torn-'));
  scratch?.add(copy);
  try {
    for (const name of fs.readdirSync(dir)) if (/^\d{20}\.wal$/.test(name)) fs.copyFileSync(path.join(dir, name), path.join(copy, name));
    const wal = await Wal.open(copy, { segmentBytes });
    const next = wal.lastIndex + 1;
    await wal.appendMany(Array.from({ length: tornBatchRecords }, (_, k) => demoRecord(next + k)));
    await wal.close();
    const before = fs.readFileSync(file);
    const after = fs.readFileSync(path.join(copy, path.basename(file)));
    let first = -1;
    let last = -1;
    for (let i = 0; i < Math.min(before.length, after.length); i++) {
      if (before[i] !== after[i]) {
        if (first < 0) first = i;
        last = i;
      }
    }
    // No change (the batch went to a new segment), or the log already has a torn tail there.
    if (first < 0 || first % 512 !== 0 || before.subarray(first, last + 1).some((b) => b !== 0)) return undefined;
    const sectors = Math.ceil((last + 1 - first) / 512);
    // The first missing sector: one holding bytes, not the batch's last (its padding's trailer).
    const candidates: number[] = [];
    for (let k = 1; k < sectors - 1; k++) if (after.subarray(first + k * 512, first + (k + 1) * 512).some((b) => b !== 0)) candidates.push(k);
    if (candidates.length === 0) return undefined;
    const keep = candidates[Math.floor(random() * candidates.length)] as number;
    const fd = fs.openSync(file, 'r+');
    try {
      fs.writeSync(fd, after, first, keep * 512, first);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return { at: first, bytes: keep * 512 };
  } finally {
    fs.rmSync(copy, { recursive: true, force: true });
    scratch?.forget(copy);
  }
}

/** The active (last) segment: the file with the highest `<first index, 20 digits>.wal` name. */
function lastSegment(dir: string): string | undefined {
  const names = fs.readdirSync(dir).filter((n) => /^\d{20}\.wal$/.test(n)).sort();
  const last = names[names.length - 1];
  return last === undefined ? undefined : path.join(dir, last);
}

/**
 * What recovery changed in the last segment: tidemark zeroes a torn tail durably at open, so
 * comparing the file before and after open shows whether a torn tail was repaired.
 */
function describeRepair(file: string | undefined, before: Buffer | undefined): string {
  if (file === undefined || before === undefined) return 'no segment before recovery';
  if (!fs.existsSync(file)) return `recovery removed ${path.basename(file)}`;
  const after = fs.readFileSync(file);
  let first = -1;
  let last = -1;
  let nonZero = 0;
  const length = Math.max(before.length, after.length);
  for (let i = 0; i < length; i++) {
    if (before[i] !== after[i]) {
      if (first < 0) first = i;
      last = i;
      if ((after[i] ?? 0) !== 0) nonZero++;
    }
  }
  if (first < 0) return 'no torn tail: recovery changed no bytes';
  const span = `${last - first + 1} bytes at offsets ${first}–${last} of ${path.basename(file)}`;
  return nonZero === 0 ? `torn tail repaired (${span} zeroed)` : `recovery rewrote ${span}`;
}

/** Reopens the log and checks every record in it, and that every acknowledged index is there. */
async function recoverAndVerify(dir: string, segmentBytes: number, acked: Set<number>): Promise<{ wal: Wal; recoveryMs: number; problems: string[] }> {
  const start = performance.now();
  const wal = await Wal.open(dir, { segmentBytes });
  const recoveryMs = performance.now() - start;
  const problems: string[] = [];
  let expected = wal.firstIndex;
  for await (const { index, data } of wal.entries({ from: wal.firstIndex, to: wal.lastIndex })) {
    if (index !== expected) {
      problems.push(`entries() gave index ${index} where ${expected} was expected`);
      break;
    }
    if (!demoRecord(index).equals(data)) problems.push(`record ${index} has the wrong bytes (${data.length} B)`);
    expected++;
    if (problems.length > 10) break;
  }
  if (problems.length === 0 && expected !== wal.lastIndex + 1) problems.push(`entries() stopped at ${expected - 1}, lastIndex is ${wal.lastIndex}`);
  const lost: number[] = [];
  for (const index of acked) if (index > wal.lastIndex || index < wal.firstIndex) lost.push(index);
  if (lost.length > 0) {
    lost.sort((a, b) => a - b);
    problems.push(`${plural(lost.length, 'acknowledged record is', 'acknowledged records are')} missing (first ${lost.slice(0, 5).join(', ')}; log is ${wal.firstIndex}..${wal.lastIndex})`);
  }
  // Spot-check random access too.
  if (wal.lastIndex >= wal.firstIndex) {
    for (const index of [wal.firstIndex, wal.lastIndex, Math.floor((wal.firstIndex + wal.lastIndex) / 2)]) {
      const data = await wal.read(index);
      if (!demoRecord(index).equals(data)) problems.push(`read(${index}) returned the wrong bytes`);
    }
  }
  return { wal, recoveryMs, problems };
}

/**
 * Runs the demo; returns the process exit code: 0 nothing acknowledged was lost, 1 a
 * failure. A failure is either a wrong answer (acknowledged data lost or wrong: the log is
 * kept as evidence) or an operating error that stopped the demo (`TM_LOCKED`, `EACCES`,
 * `TM_NOSPC`...), reported with its cause and never as lost data. The directory must be
 * new or empty unless `resume` is set (the caller checks: see lib/cli/main.ts).
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  const print = options.print;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-demo-'));
  if (ownDir) options.scratch?.add(dir);
  const random = seededRandom(options.seed);
  const acked = new Set<number>();
  const started = performance.now();
  const rounds: RoundResult[] = [];
  /** Acknowledged data lost or wrong. */
  let wrong = false;
  /** An operating error stopped the demo. */
  let stoppedBy: string | undefined;
  print(
    `tidemark demo: log in ${dir}; ${plural(options.rounds, 'round')}, up to ${plural(options.records, 'record')} per round at concurrency ${demoConcurrency}, seed ${options.seed}`,
  );
  try {
    if (options.resume === true) {
      // Every record of the kept log must be a demo record with the right bytes before any is added.
      const { wal, problems } = await recoverAndVerify(dir, options.segmentBytes, acked);
      const held = `${wal.firstIndex}..${wal.lastIndex}`;
      for (let i = wal.firstIndex; i <= wal.lastIndex; i++) acked.add(i);
      await wal.close();
      if (problems.length > 0) {
        print(`resume: the kept log (${held}) fails its check: PROBLEMS: ${problems.join('; ')}`);
        wrong = true;
      } else {
        print(`resume: the kept log holds records ${held}, every one verified; continuing it`);
      }
    }
    for (let round = 1; round <= options.rounds && !wrong && stoppedBy === undefined; round++) {
      // Kill somewhere between 20% and 90% of the way through the child's appends.
      const killAfter = Math.max(1, Math.floor(options.records * (0.2 + 0.7 * random())));
      const child = await runChildRound(options, dir, killAfter, acked);
      if (child.error !== undefined) {
        print(`round ${round}: FAILED: ${child.error}`);
        wrong = true;
        break;
      }
      if (child.fatal !== undefined) {
        print(`round ${round}: stopped: ${child.fatal}`);
        stoppedBy = child.fatal;
        break;
      }
      const segment = lastSegment(dir);
      let torn = '';
      if (options.tornWrites && round % 2 === 1 && segment !== undefined) {
        const t = await simulateTornWrite(dir, segment, options.segmentBytes, random, options.scratch);
        torn =
          t === undefined
            ? 'no room to simulate a torn write; '
            : `simulated a torn write (the first ${t.bytes} bytes of a ${tornBatchRecords}-record batch at offset ${t.at} of ${path.basename(segment)}); `;
      }
      const before = segment === undefined ? undefined : fs.readFileSync(segment);
      const { wal, recoveryMs, problems } = await recoverAndVerify(dir, options.segmentBytes, acked);
      const repair = describeRepair(segment, before);
      const previousLast = rounds.length > 0 ? (rounds[rounds.length - 1]?.lastIndexAfter ?? 0) : 0;
      const lastIndexAfter = wal.lastIndex;
      const result: RoundResult = {
        repair,
        acked: child.acked,
        maxAcked: child.maxAcked,
        lastIndexAfter,
        unackedDurable: Math.max(0, lastIndexAfter - Math.max(child.maxAcked, previousLast)),
        recoveryMs,
        childExit: child.childExit,
      };
      print(
        `round ${round}: child ${result.childExit} after ${plural(result.acked, 'ack')} (kill point ${killAfter}); ${torn}` +
          `recovered ${wal.firstIndex}..${lastIndexAfter} in ${recoveryMs.toFixed(1)} ms; ${repair}; ` +
          `${plural(result.unackedDurable, 'unacknowledged record')} also durable; ` +
          (problems.length === 0 ? 'every record verified' : `PROBLEMS: ${problems.join('; ')}`),
      );
      if (problems.length > 0) {
        wrong = true;
        await wal.close();
        break;
      }
      // The log must take appends after recovery: a batch, then a few single appends.
      const batch = Array.from({ length: demoParentAppends - 2 }, (_, i) => demoRecord(lastIndexAfter + 1 + i));
      const batchLast = await wal.appendMany(batch);
      const singles = [await wal.append(demoRecord(batchLast + 1)), await wal.append(demoRecord(batchLast + 2))];
      const appendedLast = singles[1] ?? 0;
      if (batchLast !== lastIndexAfter + batch.length || appendedLast !== lastIndexAfter + demoParentAppends) {
        print(`round ${round}: FAILED: appends after recovery got indexes ${batchLast}, ${singles.join(', ')}`);
        wrong = true;
      }
      for (let i = lastIndexAfter + 1; i <= appendedLast; i++) acked.add(i);
      result.lastIndexAfter = appendedLast;
      rounds.push(result);
      await wal.close();
    }
    if (!wrong && stoppedBy === undefined) {
      const { wal, problems } = await recoverAndVerify(dir, options.segmentBytes, acked);
      const total = wal.lastIndex - wal.firstIndex + 1;
      const segments = wal.stats().segments;
      await wal.close();
      if (problems.length > 0) {
        print(`final check: PROBLEMS: ${problems.join('; ')}`);
        wrong = true;
      } else {
        const seconds = (performance.now() - started) / 1000;
        const recoveries = rounds.map((r) => r.recoveryMs);
        const repaired = rounds.filter((r) => r.repair.startsWith('torn tail repaired')).length;
        print(
          `OK: ${plural(rounds.length, 'crash', 'crashes')} (SIGKILL), ${plural(acked.size, 'acknowledged record')}, all present with exact bytes; ` +
            `log holds ${plural(total, 'record')} in ${plural(segments, 'segment')}; ${plural(repaired, 'torn tail')} repaired; ` +
            (recoveries.length > 0 ? `recovery took ${Math.min(...recoveries).toFixed(1)}–${Math.max(...recoveries).toFixed(1)} ms; ` : '') +
            `${seconds.toFixed(1)} s in all.`,
        );
      }
    }
  } catch (err) {
    stoppedBy = describeError(err);
    print(`stopped by an error: ${stoppedBy}`);
  } finally {
    // Keep the evidence when acknowledged data was lost or wrong; a scratch log is removed otherwise.
    if (ownDir && !wrong) fs.rmSync(dir, { recursive: true, force: true });
    if (ownDir && wrong) options.scratch?.forget(dir);
  }
  if (wrong) {
    print(`FAILED (seed ${options.seed}): acknowledged data was lost or wrong; the log is kept in ${dir}.`);
  } else if (stoppedBy !== undefined) {
    print(
      `FAILED (seed ${options.seed}): the demo could not go on: ${stoppedBy}. ` +
        `Up to there no acknowledged record was lost or wrong${ownDir ? '; its temp directory was removed' : `; the log is in ${dir}`}.`,
    );
  }
  return wrong || stoppedBy !== undefined ? 1 : 0;
}
