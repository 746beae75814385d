/**
 * Test helpers shared by the log tests: a temporary directory per test (removed when
 * the test finishes), a child-process harness that runs TypeScript through tsx and
 * reads its stdout line by line, a seeded PRNG, and deterministic record contents
 * that can be regenerated (and so verified byte for byte) from a key and a seed.
 *
 * Nothing here touches the network or a clock other than the harness's timeouts.
 * Child processes import this file too, so it must not import vitest at the top level.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// ---------------------------------------------------------------------------
// Temporary directories
// ---------------------------------------------------------------------------

/**
 * A fresh directory under `os.tmpdir()`, removed when the current test finishes
 * (kept when `TIDEMARK_KEEP_TMP=1`, for a post-mortem). Must be called inside a test.
 */
export async function tmpDir(label = 'test'): Promise<string> {
  // Imported here, not at the top: child processes load this file too, and vitest refuses to load outside a test run.
  const { onTestFinished } = await import('vitest');
  const dir = await mkdtemp(join(tmpdir(), `tidemark-${label}-`));
  onTestFinished(async () => {
    if (process.env.TIDEMARK_KEEP_TMP === '1') return;
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

// ---------------------------------------------------------------------------
// Seeded PRNG
// ---------------------------------------------------------------------------

/** splitmix32 step: a good 32-bit mixer, used to seed and to hash seeds together. */
export function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Combines two non-negative integers (each < 2^53) into one 32-bit seed. */
export function seedOf(a: number, b: number): number {
  const aLo = a >>> 0;
  const aHi = Math.floor(a / 0x100000000) >>> 0;
  const bLo = b >>> 0;
  const bHi = Math.floor(b / 0x100000000) >>> 0;
  return mix32(mix32(mix32(mix32(aLo) ^ aHi) ^ bLo) ^ bHi);
}

/**
 * sfc32 (Chris Doty-Humphrey's small fast counter), seeded through splitmix32.
 * Deterministic from its 32-bit seed; never reads Math.random.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    this.a = mix32(seed);
    this.b = mix32(this.a ^ 0x5bd1e995);
    this.c = mix32(this.b ^ 0x27d4eb2f);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.next32();
  }

  /** Uniform unsigned 32-bit integer. */
  next32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next32() / 0x100000000;
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(0, items.length - 1)];
    if (item === undefined) throw new Error('Rng.pick: empty array');
    return item;
  }

  /** Fills `target` with pseudo-random bytes. */
  fill(target: Uint8Array): void {
    let i = 0;
    for (; i + 4 <= target.length; i += 4) {
      const v = this.next32();
      target[i] = v & 0xff;
      target[i + 1] = (v >>> 8) & 0xff;
      target[i + 2] = (v >>> 16) & 0xff;
      target[i + 3] = v >>> 24;
    }
    if (i < target.length) {
      let v = this.next32();
      for (; i < target.length; i++) {
        target[i] = v & 0xff;
        v >>>= 8;
      }
    }
  }
}

/** A random 32-bit seed for a run, or the one in `env[name]` (decimal or 0x-hex) to replay a run. */
export function runSeed(envName: string): number {
  const fromEnv = process.env[envName];
  if (fromEnv !== undefined && fromEnv !== '') {
    const n = Number(fromEnv);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`${envName} must be a uint32, got ${fromEnv}`);
    return n;
  }
  return (Math.random() * 0x100000000) >>> 0;
}

// ---------------------------------------------------------------------------
// Deterministic, self-describing record contents
// ---------------------------------------------------------------------------

/** Records of at least this many bytes carry a header naming their key, so any record found in a log can be checked. */
export const RECORD_HEADER_BYTES = 16;
const RECORD_MAGIC = 0x4b524d54; // 'TMRK' little endian

/**
 * The bytes of the record with `key` (an index, or any tag < 2^53) and `length`,
 * under `seed`. The same arguments always give the same bytes. When
 * `length >= RECORD_HEADER_BYTES` the record starts with magic, key and length so that
 * {@link describeRecord} can recover them from the bytes alone.
 */
export function recordBytes(key: number, length: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  const rng = new Rng(seedOf(key, seed ^ mix32(length)));
  rng.fill(out);
  if (length >= RECORD_HEADER_BYTES) {
    out.writeUInt32LE(RECORD_MAGIC, 0);
    out.writeUInt32LE(key >>> 0, 4);
    out.writeUInt32LE(Math.floor(key / 0x100000000) >>> 0, 8);
    out.writeUInt32LE(length >>> 0, 12);
  }
  return out;
}

/**
 * Reads the key and length a record claims in its header, or undefined when it has no
 * valid header (too short, wrong magic, or a length that disagrees with its size).
 */
export function describeRecord(data: Uint8Array): { key: number; length: number } | undefined {
  if (data.length < RECORD_HEADER_BYTES) return undefined;
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.readUInt32LE(0) !== RECORD_MAGIC) return undefined;
  const key = b.readUInt32LE(4) + b.readUInt32LE(8) * 0x100000000;
  const length = b.readUInt32LE(12);
  if (length !== data.length) return undefined;
  return { key, length };
}

/**
 * Checks that `data` is exactly a record some writer produced with {@link recordBytes}
 * under `seed`; returns its key, or a description of what is wrong.
 */
export function checkSelfDescribing(data: Uint8Array, seed: number): { key: number } | { problem: string } {
  const d = describeRecord(data);
  if (d === undefined) return { problem: `no valid record header (length ${data.length}, first bytes ${hexHead(data)})` };
  const expected = recordBytes(d.key, d.length, seed);
  if (!expected.equals(data)) return { problem: `header says key ${d.key} length ${d.length} but the bytes differ at offset ${firstDiff(expected, data)}` };
  return { key: d.key };
}

/** Index of the first differing byte, or -1 when equal. */
export function firstDiff(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** First bytes of a buffer in hex, for messages. */
export function hexHead(data: Uint8Array, n = 16): string {
  return Buffer.from(data.buffer, data.byteOffset, Math.min(n, data.byteLength)).toString('hex');
}

// ---------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------

/** How a child ended. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * A TypeScript child process (run through tsx) whose stdout is read as lines. Only complete
 * lines count: a line cut off by a kill is dropped. stderr is collected for error messages.
 */
export class TsChild {
  readonly proc: ChildProcess;
  /** Every complete stdout line so far. */
  readonly lines: string[] = [];
  /** Resolves when the process has exited (and its stdout has been read to the end). */
  readonly exited: Promise<ChildExit>;
  private stdoutTail = '';
  private stderrText = '';
  private readonly listeners = new Set<(line: string) => void>();
  private exitInfo: ChildExit | undefined;

  constructor(script: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: options.env ?? process.env,
      cwd: options.cwd ?? process.cwd(),
    });
    const stdout = this.proc.stdout;
    const stderr = this.proc.stderr;
    if (stdout === null || stderr === null) throw new Error('child stdio was not piped');
    stdout.setEncoding('utf8');
    stdout.on('data', (chunk: string) => {
      const text = this.stdoutTail + chunk;
      const parts = text.split('\n');
      this.stdoutTail = parts.pop() ?? '';
      for (const line of parts) {
        this.lines.push(line);
        for (const listener of [...this.listeners]) listener(line);
      }
    });
    stderr.setEncoding('utf8');
    stderr.on('data', (chunk: string) => {
      if (this.stderrText.length < 64 * 1024) this.stderrText += chunk;
    });
    this.proc.stdin?.on('error', () => {
      /* the child may be gone; writes to it are best effort */
    });
    this.exited = new Promise<ChildExit>((resolve, reject) => {
      this.proc.once('error', reject);
      // 'close' fires after the stdio streams are drained, so `lines` is complete by then.
      this.proc.once('close', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
  }

  /** What the child wrote to stderr (first 64 KiB). */
  get stderr(): string {
    return this.stderrText;
  }

  /** The exit, once it happened. */
  get exit(): ChildExit | undefined {
    return this.exitInfo;
  }

  /** Calls `listener` for each complete line from now on; returns a function that stops it. */
  onLine(listener: (line: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Writes one line to the child's stdin. */
  send(line: string): void {
    this.proc.stdin?.write(`${line}\n`);
  }

  /** SIGKILLs the child (no-op if it is already gone). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.exitInfo === undefined) this.proc.kill(signal);
  }

  /**
   * The first line (already received, at position >= `from`, or arriving later) for which
   * `match` returns true. Rejects if the child exits first or after `timeoutMs`, with the
   * child's stderr in the message.
   */
  waitFor(match: (line: string) => boolean, timeoutMs = 30_000, from = 0): Promise<string> {
    for (let i = from; i < this.lines.length; i++) {
      const line = this.lines[i];
      if (line !== undefined && match(line)) return Promise.resolve(line);
    }
    return new Promise<string>((resolve, reject) => {
      const stop = this.onLine((line) => {
        if (match(line)) {
          cleanup();
          resolve(line);
        }
      });
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a line from the child; last lines: ${this.lastLines()}; stderr: ${this.stderrText}`));
      }, timeoutMs);
      const onExit = (e: ChildExit): void => {
        cleanup();
        reject(new Error(`child exited (code ${e.code}, signal ${e.signal}) before the awaited line; last lines: ${this.lastLines()}; stderr: ${this.stderrText}`));
      };
      void this.exited.then(onExit, () => undefined);
      let done = false;
      const cleanup = (): void => {
        if (done) return;
        done = true;
        stop();
        clearTimeout(timer);
      };
    });
  }

  /** The last few stdout lines, for messages. */
  lastLines(n = 5): string {
    return JSON.stringify(this.lines.slice(-n));
  }
}

/** Starts `script` (a .ts file) in a child Node process with tsx; see {@link TsChild}. */
export function spawnTs(script: string, args: readonly string[] = [], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): TsChild {
  return new TsChild(script, args, options);
}

/** Runs a child to completion and returns its stdout lines and exit; throws with stderr if it times out. */
export async function runTs(script: string, args: readonly string[] = [], timeoutMs = 60_000): Promise<{ lines: string[]; exit: ChildExit; stderr: string }> {
  const child = spawnTs(script, args);
  const timer = setTimeout(() => child.kill(), timeoutMs);
  try {
    const exit = await child.exited;
    return { lines: child.lines, exit, stderr: child.stderr };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts `script` (a .ts file) in a worker thread. Workers do not inherit the `--import tsx`
 * loader (Node 20), so the worker registers tsx's CommonJS hook itself before loading it.
 */
export function tsWorker(script: string, workerData?: unknown): Worker {
  const tsxApi = require.resolve('tsx/cjs/api');
  const source = `require(${JSON.stringify(tsxApi)}).register();\nrequire(${JSON.stringify(script)});\n`;
  return new Worker(source, { eval: true, workerData });
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** The `code` of a thrown value, if it has a string one. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** Awaits `p` (or calls it and awaits the result), expecting it to reject; returns the rejection (fails if it resolves or throws synchronously). */
export async function rejectionOf(p: Promise<unknown> | (() => Promise<unknown>)): Promise<Error & { code?: string; path?: string; offset?: number; errno?: string }> {
  let promise: Promise<unknown>;
  try {
    promise = typeof p === 'function' ? p() : p;
  } catch (err) {
    // A Promise-returning API must report errors by rejecting: `wal.append(x).catch(f)` would miss a synchronous throw.
    throw new Error(`expected a rejected promise, but the call threw synchronously: ${String(err)}`);
  }
  try {
    const value = await promise;
    throw new ExpectedRejection(value);
  } catch (err) {
    if (err instanceof ExpectedRejection) throw new Error(`expected a rejection, but it resolved with ${String(err.value)}`);
    return err as Error & { code?: string };
  }
}

class ExpectedRejection {
  constructor(readonly value: unknown) {}
}
