#!/usr/bin/env node
/**
 * The `tidemark` command line. Exit codes: 0 success, 1 failure (e.g. the demo found
 * lost data, or an operation failed: one line with its cause), 2 usage error (unknown
 * command or option, a bad --dir), 130/143 interrupted by SIGINT/SIGTERM (scratch removed).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { demoSegmentBytesDefault, describeError, isLogFileName, plural, runDemo, runDemoChild } from './demo';
import { SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN, Wal } from '../index';
import { benchFsyncCommand, benchFsyncUsage } from './fsync';
import { benchReplicateCommand, benchReplicateUsage } from './replicate';
import { isTidemarkError } from '../errors';
import { buildFromSource } from './build';
import { Scratch, cleanUpOnSignal } from './cleanup';
import { makeDirectories } from '../log/mkdirp';
import { runWal, walHelpText } from './wal-tools';
import { clusterHelpText, runClusterCli } from './cluster-main';
import { formatWalRepair, repairWal } from './wal-repair';

const ExitCodes = { OK: 0, FAILURE: 1, USAGE: 2 } as const;

const helpText = `tidemark: a durable, replicated write-ahead log for Node.js

Usage:
${clusterHelpText}  tidemark demo wal [--dir D] [--records N] [--rounds R] [--seed S] [--segment-bytes B] [--no-torn] [--resume]
      The single-process WAL demo. Append durably from a child process at concurrency
      32, SIGKILL it at a random moment, recover, verify every acknowledged record byte
      for byte, append more; R rounds (default 5), N records per child (default 20000),
      segments of B bytes (default 262144, so the log rotates). In odd rounds a torn
      write is simulated before recovery: the first sectors of a next batch past the
      log's tail, as a power loss in the middle of its write would leave them (--no-torn:
      never). Default directory: a fresh temp directory, removed afterwards (kept if
      anything was lost). --dir must be new or empty: the demo writes records of its
      own (--resume: check every record of a log an earlier demo kept, then go on).
      Ctrl-C removes the temp directory and the scratch copies.
${benchFsyncUsage}${benchReplicateUsage}${walHelpText}  tidemark wal repair DIR [--json]
      When a log refuses to open because of damage inside its last batch that
      recovery cannot tell from a torn write: drop that batch and print exactly
      which indexes were dropped. Any other damage still fails, untouched.
  tidemark build-from-source
      Compile the native addon inside this installed package (build/Release/tidemark.node)
      for a platform it ships no prebuilt binary for. Needs a C++17 compiler, python3
      and make; run it as \`npx tidemark build-from-source\` in your project.
  tidemark --help | -h      this text
  tidemark --version | -v   the version

Exit codes: 0 success, 1 failure, 2 usage error (unknown command, bad option or --dir),
130/143 interrupted (SIGINT/SIGTERM).
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

/**
 * The demo's `--dir`: an existing empty directory, or one it can create, that it may write
 * in; or, with `--resume`, a log an earlier demo kept. Anything else is a usage error (one
 * line, exit 2); a log another process holds is an operating error (TM_LOCKED, exit 1).
 */
async function demoDirectory(value: string, resume: boolean, segmentBytes: number): Promise<string> {
  if (value.trim() === '') throw new UsageError('demo: --dir must not be empty');
  const dir = path.resolve(value);
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UsageError(`demo: --dir ${dir}: ${describeError(err)}`);
  }
  if (stat === undefined) {
    if (resume) throw new UsageError(`demo: --resume needs an existing log, and ${dir} does not exist`);
    try {
      await makeDirectories(dir);
    } catch (err) {
      throw new UsageError(`demo: cannot create --dir ${dir}: ${describeError(err)}`);
    }
  } else if (!stat.isDirectory()) {
    throw new UsageError(`demo: --dir ${dir} is not a directory`);
  }
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw new UsageError(`demo: --dir ${dir} is not writable: ${describeError(err)}`);
  }
  const entries = fs.readdirSync(dir);
  if (entries.length === 0) {
    if (resume) throw new UsageError(`demo: --resume needs an existing log, and ${dir} is empty`);
    return dir;
  }
  if (!entries.every(isLogFileName) || !entries.some((n) => n.endsWith('.wal'))) {
    throw new UsageError(
      `demo: --dir ${dir} is not empty and holds no tidemark log (${plural(entries.length, 'entry', 'entries')}); the demo writes records of its own: give it a new or empty directory`,
    );
  }
  // A log: how many records? (A log another process holds fails here with TM_LOCKED.)
  const wal = await Wal.open(dir, { segmentBytes });
  const records = wal.lastIndex - wal.firstIndex + 1;
  await wal.close();
  if (records > 0 && !resume) {
    throw new UsageError(
      `demo: --dir ${dir} holds a log with ${plural(records, 'record')}; the demo appends records of its own, so it runs only on a new or empty directory ` +
        '(--resume: check every record of a log an earlier demo kept, then continue it)',
    );
  }
  return dir;
}

async function demo(args: string[]): Promise<number> {
  // `tidemark demo wal` (plain `tidemark demo` is the cluster demo, lib/cli/cluster-main.ts).
  const command = args[0] === 'wal' ? 'demo wal' : 'demo';
  const rest = args[0] === 'wal' ? args.slice(1) : args;
  const values = parse(
    rest,
    {
      dir: { type: 'string' },
      records: { type: 'string' },
      rounds: { type: 'string' },
      seed: { type: 'string' },
      'segment-bytes': { type: 'string' },
      'no-torn': { type: 'boolean' },
      resume: { type: 'boolean' },
    },
    command,
  );
  const records = positiveInteger(values.records, 20_000, '--records', 100_000_000);
  const rounds = positiveInteger(values.rounds, 5, '--rounds', 10_000);
  const seed = values.seed === undefined ? Math.floor(Math.random() * 0x7fffffff) : positiveInteger(values.seed, 1, '--seed', 0x7fffffff);
  const segmentBytes = segmentBytesOption(values['segment-bytes']);
  const resume = values.resume === true;
  if (resume && values.dir === undefined) throw new UsageError(`${command}: --resume needs --dir`);
  const dir = values.dir === undefined ? undefined : await demoDirectory(values.dir, resume, segmentBytes);
  const scratch = new Scratch();
  const stop = cleanUpOnSignal(scratch);
  try {
    return await runDemo({
      ...(dir === undefined ? {} : { dir }),
      records,
      rounds,
      seed,
      segmentBytes,
      tornWrites: values['no-torn'] !== true,
      resume,
      scratch,
      selfCommand: selfCommand(),
      print: (line) => console.log(line),
    });
  } finally {
    stop();
  }
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

/** One line to stdout, waiting when its buffer is full (long dumps). */
function writeLine(line: string): Promise<void> | void {
  if (process.stdout.write(`${line}\n`)) return;
  return new Promise((resolve) => process.stdout.once('drain', () => resolve()));
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== undefined && command !== 'demo-child' && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(helpText);
    return ExitCodes.OK;
  }
  const cluster = runClusterCli(command, rest, selfCommand);
  if (cluster !== undefined) return cluster;
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
    case 'build-from-source':
      parse(rest, {}, 'build-from-source');
      return buildFromSource({ packageRoot: path.join(__dirname, '..', '..'), print: (line) => console.log(line) });
    case 'wal': {
      if (rest[0] !== 'repair') return runWal(rest, { out: writeLine, err: (line) => process.stderr.write(`${line}\n`) });
      const [, dir, ...walArgs] = rest;
      if (dir === undefined || dir.startsWith('-')) throw new UsageError('usage: tidemark wal repair DIR [--json]');
      const values = parse(walArgs, { json: { type: 'boolean' } }, 'wal repair');
      const result = await repairWal(dir);
      console.log(values.json === true ? JSON.stringify(result, null, 2) : formatWalRepair(result));
      return ExitCodes.OK;
    }
    case 'bench': {
      const [what, ...benchArgs] = rest;
      if (what === 'fsync') return benchFsyncCommand(benchArgs, (message) => new UsageError(message));
      if (what === 'replicate') {
        // The nodes run this same CLI; etcd's and ZooKeeper's npm clients (optional) come
        // from the user's project or from wherever this package is installed.
        const packageRoot = path.join(__dirname, '..', '..');
        return benchReplicateCommand(benchArgs, (message) => new UsageError(message), { tidemarkCommand: selfCommand(), moduleBases: [process.cwd(), packageRoot] });
      }
      if (what === 'append') throw new UsageError('bench append is not part of the package: it compares tidemark against other stores, and lives in the source repository (bench/README.md)');
      throw new UsageError(`bench: unknown benchmark '${what ?? ''}'; available: fsync, replicate`);
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
      process.stderr.write(`tidemark: ${describeError(err)}\n`);
      process.exitCode = ExitCodes.FAILURE;
    } else if (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string') {
      // A system error (EACCES, ENOSPC...): one line with its code, no stack.
      process.stderr.write(`tidemark: ${describeError(err)}\n`);
      process.exitCode = ExitCodes.FAILURE;
    } else {
      // A bug: the stack helps.
      process.stderr.write(`tidemark: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = ExitCodes.FAILURE;
    }
  },
);
