/**
 * `tidemark bench fsync [--dir DIR] [--quick] [--json FILE] [--svg FILE]`: what does this
 * disk really do when asked for durability?
 *
 * 1. one write made durable by each sync method (write+fdatasync, write+fsync, O_DSYNC,
 *    O_DIRECT+O_DSYNC, io_uring write→fdatasync), 512 B to 1 MiB, growing and pre-written
 *    file (lib/cli/fsync/methods.ts);
 * 2. the group-commit curve of tidemark's Wal against the limit derived from step 1
 *    (lib/cli/fsync/groupcommit.ts);
 * 3. the honesty check: does a sync here flush anything? (lib/cli/fsync/honesty.ts).
 * A progress line on a terminal, the tables at the end, `--json` and `--svg` files.
 * Ctrl-C stops between two operations and removes the scratch directory.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { formatFsyncReport } from './fsync/report';
import { runFsyncBench } from './fsync/run';
import { renderFsyncSvg } from './fsync/svg';

export { formatBytes, formatFsyncReport, formatGroupTable, formatHonesty, formatMethodsTable, interpretFsync, winnersPerSize } from './fsync/report';
export { fsyncBenchSettings, runFsyncBench, scratchPrefix, type FsyncBenchOptions } from './fsync/run';
export { checkHonesty, doesNotFlushWarning, Verdicts, type HonestyReport, type Verdict } from './fsync/honesty';
export { deriveLimit, syncTimeUs, type GroupRow } from './fsync/groupcommit';
export { FileKinds, PLAIN_WRITE, SyncMethods, type MethodRow, type SyncMethod } from './fsync/methods';
export { renderFsyncSvg, SvgCharts } from './fsync/svg';
export type { FsyncBenchResult } from './fsync/result';

/** The usage lines of the command (in `tidemark --help` too). */
export const benchFsyncUsage = `  tidemark bench fsync [--dir D] [--quick] [--json FILE] [--svg FILE]
      What does this disk really do: one write made durable by write+fdatasync,
      write+fsync, O_DSYNC, O_DIRECT+O_DSYNC and io_uring (linked write+fdatasync)
      at 512 B to 1 MiB on a growing and a pre-written file; tidemark's group-commit
      curve (1 to 1024 writers, 128 B and 4 KiB) against the disk's derived limit;
      an honesty check (does a sync here flush anything?). Full run under 3 minutes,
      --quick under 20 s. --json FILE / --svg FILE also write every number / charts
      ('-' for stdout). Default directory: os.tmpdir(). Ctrl-C stops and cleans up.
`;

/** Exit code after Ctrl-C (128 + SIGINT). */
const exitInterrupted = 130;
/** Exit code after SIGTERM (128 + 15). */
const exitTerminated = 143;

/** A live progress line, only when stdout is a terminal. */
export function progressLine(stream: { isTTY?: boolean; columns?: number; write(text: string): unknown }): { update(done: number, total: number, label: string): void; clear(): void } {
  const start = performance.now();
  if (stream.isTTY !== true) return { update: () => undefined, clear: () => undefined };
  let shown = false;
  return {
    update(done, total, label) {
      const seconds = ((performance.now() - start) / 1000).toFixed(1);
      const line = `[${done}/${total}] ${label}  ${seconds} s`;
      const columns = stream.columns ?? 0;
      stream.write(`\r\x1b[K${line.slice(0, columns > 20 ? columns - 1 : 120)}`);
      shown = true;
    },
    clear() {
      if (shown) stream.write('\r\x1b[K');
    },
  };
}

/** Checks that `file` can be written later: its directory exists ('-': stdout). */
export function outputPath(value: string | undefined, option: string, usage: (message: string) => Error, command = 'bench fsync'): string | undefined {
  if (value === undefined || value === '-') return value;
  const resolved = path.resolve(value);
  const parent = path.dirname(resolved);
  if (!fs.existsSync(parent) || !fs.statSync(parent).isDirectory()) throw usage(`${command}: ${option} ${value}: directory ${parent} does not exist`);
  return resolved;
}

/** A benchmark's `--dir`: an existing writable directory (default os.tmpdir()); else `usageError` (one line). */
export function benchDirectory(value: string | undefined, usageError: (message: string) => Error, command = 'bench fsync'): string {
  const dir = path.resolve(value ?? os.tmpdir());
  if (value !== undefined && value.trim() === '') throw usageError(`${command}: --dir must not be empty`);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw usageError(`${command}: --dir ${dir} is not an existing directory`);
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw usageError(`${command}: --dir ${dir} is not writable: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  return dir;
}

/**
 * The command. Throws `usage(message)` for bad arguments (the caller exits 2); resolves
 * with the exit code: 0 done, 130 interrupted (SIGINT/SIGTERM; the scratch files are gone).
 */
export async function benchFsyncCommand(args: string[], usageError: (message: string) => Error): Promise<number> {
  const usage = (message: string): Error => usageError(`${message}\nUsage:\n${benchFsyncUsage}`);
  let values: { dir?: string; quick?: boolean; json?: string; svg?: string };
  try {
    values = parseArgs({ args, options: { dir: { type: 'string' }, quick: { type: 'boolean' }, json: { type: 'string' }, svg: { type: 'string' } }, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw usage(`bench fsync: ${err instanceof Error ? err.message : String(err)}`);
  }
  // A bad directory is one line (no usage text): the arguments were well formed.
  const dir = benchDirectory(values.dir, usageError);
  const jsonFile = outputPath(values.json, '--json', usage);
  const svgFile = outputPath(values.svg, '--svg', usage);
  if (jsonFile === '-' && svgFile === '-') throw usage('bench fsync: only one of --json and --svg can go to stdout');
  const controller = new AbortController();
  let caught = 'SIGINT' as 'SIGINT' | 'SIGTERM';
  const onSigint = (): void => controller.abort(new Error('interrupted'));
  const onSigterm = (): void => {
    caught = 'SIGTERM';
    controller.abort(new Error('interrupted'));
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  const progress = progressLine(process.stdout);
  try {
    const result = await runFsyncBench({ dir, quick: values.quick === true, signal: controller.signal, onProgress: (p) => progress.update(p.done, p.total, p.label) });
    progress.clear();
    const json = `${JSON.stringify(result, null, 2)}\n`;
    const svg = renderFsyncSvg(result);
    if (jsonFile !== undefined && jsonFile !== '-') fs.writeFileSync(jsonFile, json);
    if (svgFile !== undefined && svgFile !== '-') fs.writeFileSync(svgFile, svg);
    if (jsonFile === '-') process.stdout.write(json);
    else if (svgFile === '-') process.stdout.write(svg);
    else {
      const written = [jsonFile === undefined ? '' : `JSON: ${jsonFile}`, svgFile === undefined ? '' : `SVG: ${svgFile}`].filter((s) => s !== '');
      process.stdout.write(`${formatFsyncReport(result)}\n${written.length > 0 ? `\n${written.join('\n')}\n` : ''}`);
    }
    return 0;
  } catch (err) {
    progress.clear();
    if (controller.signal.aborted) {
      process.stderr.write(`tidemark: bench fsync interrupted (${caught}); its temporary files are removed\n`);
      return caught === 'SIGTERM' ? exitTerminated : exitInterrupted;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }
}
