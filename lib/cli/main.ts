#!/usr/bin/env node
/**
 * The `tidemark` command line. Exit codes: 0 success, 1 failure (e.g. the demo found
 * lost data, or an operation failed), 2 usage error (unknown command or option).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { demoSegmentBytesDefault, runDemo, runDemoChild } from './demo';
import { SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN } from '../index';
import { formatFsyncReport, runFsyncBench } from './fsync';
import { isTidemarkError } from '../errors';
import { formatWalRepair, repairWal } from './wal-repair';

const ExitCodes = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

const helpText = `tidemark: a durable, replicated write-ahead log for Node.js

Usage:
  tidemark demo [--dir D] [--records N] [--rounds R] [--seed S] [--segment-bytes B] [--no-torn]
      Append durably from a child process at concurrency 32, SIGKILL it at a random
      moment, recover, verify every acknowledged record byte for byte, append more;
      R rounds (default 5), N records per child (default 20000), segments of B bytes
      (default 262144, so the log rotates). In odd rounds a torn write is simulated
      before recovery: the first sectors of a next batch past the log's tail, as a
      power loss in the middle of its write would leave them (--no-torn: never). Default directory: a fresh temp directory, removed
      afterwards (kept if anything was lost).
  tidemark bench fsync [--dir D] [--seconds S] [--json]
      What does this disk really do: write+fdatasync on a growing file, on a
      pre-written file, and O_DSYNC writes, at 512 B, 4 KiB, 64 KiB and 1 MiB;
      S seconds per measurement (default 0.5). Default directory: os.tmpdir().
  tidemark wal repair DIR [--json]
      When a log refuses to open because of damage inside its last batch that
      recovery cannot tell from a torn write: drop that batch and print exactly
      which indexes were dropped. Any other damage still fails, untouched.
  tidemark --help | -h      this text
  tidemark --version | -v   the version

The append benchmark against other stores lives in a source checkout:
  npm run bench:append -- --help
`;

class UsageError extends Error {}

function readVersion(): string {
  // lib/cli/main.ts (tsx) and dist/cli/main.js both sit two levels below the package root.
  const file = path.join(__dirname, '..', '..', 'package.json');
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown };
  return typeof parsed.version === 'string' ? parsed.version : 'unknown';
}

function parse<T extends Record<string, { type: 'string' | 'boolean'; short?: string }>>(args: string[], options: T, command: string) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new UsageError(`${command}: ${message}`);
  }
}

function positiveInteger(value: string | undefined, fallback: number, name: string, max: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw new UsageError(`${name} must be a whole number from 1 to ${max}, got '${value}'`);
  }
  return Number(value);
}

function positiveNumber(value: string | undefined, fallback: number, name: string, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > max) throw new UsageError(`${name} must be a number above 0 and at most ${max}, got '${value}'`);
  return n;
}

/** Segment size for the demo: a multiple of 4 KiB in the Wal's allowed range. */
function segmentBytesOption(value: string | undefined): number {
  const bytes = positiveInteger(value, demoSegmentBytesDefault, '--segment-bytes', SEGMENT_BYTES_MAX);
  if (bytes < SEGMENT_BYTES_MIN || bytes % 4096 !== 0) {
    throw new UsageError(`--segment-bytes must be a multiple of 4096 from ${SEGMENT_BYTES_MIN} to ${SEGMENT_BYTES_MAX}, got '${String(value)}'`);
  }
  return bytes;
}

/** The command line used to start this CLI again (for the demo child). */
function selfCommand(): string[] {
  const script = process.argv[1];
  if (script === undefined) throw new Error('cannot tell which script is running');
  return [process.execPath, ...process.execArgv, path.resolve(script)];
}

async function demo(args: string[]): Promise<number> {
  const values = parse(args, { dir: { type: 'string' }, records: { type: 'string' }, rounds: { type: 'string' }, seed: { type: 'string' }, 'segment-bytes': { type: 'string' }, 'no-torn': { type: 'boolean' } }, 'demo');
  const records = positiveInteger(values.records, 20_000, '--records', 100_000_000);
  const rounds = positiveInteger(values.rounds, 5, '--rounds', 10_000);
  const seed = values.seed === undefined ? Math.floor(Math.random() * 0x7fffffff) : positiveInteger(values.seed, 1, '--seed', 0x7fffffff);
  return runDemo({
    ...(values.dir === undefined ? {} : { dir: path.resolve(values.dir) }),
    records,
    rounds,
    seed,
    segmentBytes: segmentBytesOption(values['segment-bytes']),
    tornWrites: values['no-torn'] !== true,
    selfCommand: selfCommand(),
    print: (line) => console.log(line),
  });
}

async function demoChild(args: string[]): Promise<number> {
  const values = parse(args, { dir: { type: 'string' }, records: { type: 'string' }, concurrency: { type: 'string' }, 'segment-bytes': { type: 'string' } }, 'demo-child');
  if (values.dir === undefined) throw new UsageError('demo-child: --dir is required');
  return runDemoChild({
    dir: values.dir,
    records: positiveInteger(values.records, 20_000, '--records', 100_000_000),
    concurrency: positiveInteger(values.concurrency, 32, '--concurrency', 4096),
    segmentBytes: segmentBytesOption(values['segment-bytes']),
  });
}

function benchFsync(args: string[]): number {
  const values = parse(args, { dir: { type: 'string' }, seconds: { type: 'string' }, json: { type: 'boolean' } }, 'bench fsync');
  const seconds = positiveNumber(values.seconds, 0.5, '--seconds', 3600);
  let dir: string;
  let ownDir = false;
  if (values.dir !== undefined) {
    dir = path.resolve(values.dir);
    if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UsageError(`bench fsync: --dir ${dir} is not an existing directory`);
  } else {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-fsync-'));
    ownDir = true;
  }
  try {
    const result = runFsyncBench({ dir, seconds });
    console.log(values.json === true ? JSON.stringify(result, null, 2) : formatFsyncReport(result));
  } finally {
    if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
  }
  return ExitCodes.OK;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== undefined && command !== 'demo-child' && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(helpText);
    return ExitCodes.OK;
  }
  switch (command) {
    case undefined:
      process.stderr.write(helpText);
      return ExitCodes.USAGE;
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(helpText);
      return ExitCodes.OK;
    case '--version':
    case '-v':
      console.log(readVersion());
      return ExitCodes.OK;
    case 'demo':
      return demo(rest);
    case 'demo-child':
      return demoChild(rest);
    case 'bench': {
      const [what, ...benchArgs] = rest;
      if (what === 'fsync') return benchFsync(benchArgs);
      if (what === 'append') throw new UsageError("bench append needs the dev dependencies it compares against: run 'npm run bench:append' in a source checkout");
      throw new UsageError(`bench: unknown benchmark '${what ?? ''}'; available: fsync`);
    }
    case 'wal': {
      const [what, dir, ...walArgs] = rest;
      if (what !== 'repair' || dir === undefined || dir.startsWith('-')) throw new UsageError('usage: tidemark wal repair DIR [--json]');
      const values = parse(walArgs, { json: { type: 'boolean' } }, 'wal repair');
      const result = await repairWal(dir);
      console.log(values.json === true ? JSON.stringify(result, null, 2) : formatWalRepair(result));
      return ExitCodes.OK;
    }
    default:
      throw new UsageError(`unknown command '${command}'; run 'tidemark --help' for the list`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`tidemark: ${err.message}\n`);
      process.exitCode = ExitCodes.USAGE;
    } else if (isTidemarkError(err)) {
      // An operating error (I/O, corruption, lock...): its message says what and where.
      process.stderr.write(`tidemark: ${err.message}\n`);
      process.exitCode = ExitCodes.FAILURE;
    } else {
      process.stderr.write(`tidemark: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = ExitCodes.FAILURE;
    }
  },
);
