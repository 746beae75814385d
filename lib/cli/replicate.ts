/**
 * `tidemark bench replicate [--quick] [--contestants LIST] [--json FILE] [--svg FILE] [--dir D]`:
 * tidemark's three-node cluster on loopback against etcd and ZooKeeper, measured in one run
 * on this machine, with one in-process tidemark Wal as the floor (lib/cli/replicate/run.ts).
 * `npm run bench:replicate` in the source repository runs this same command with two hooks:
 * it installs etcd/ZooKeeper with apt-get when missing, and finds their npm clients and
 * hdr-histogram-js in bench/node_modules.
 *
 * The progress line and the per-cell lines go to stderr; the tables (or `--json -` /
 * `--svg -`) to stdout. Ctrl-C kills every benchmark process and removes the scratch
 * directory (exit 130; SIGTERM 143).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { benchDirectory, outputPath } from './fsync';
import { installSignalHandlers } from './replicate/launcher';
import { renderSvg, renderTables, type BenchResult } from './replicate/report';
import { CONTESTANTS, replicateSettings, runReplicateBench, type ContestantName } from './replicate/run';

export { CONTESTANTS, aptCommand, replicateSettings, runReplicateBench, which, type ContestantName, type ReplicateBenchOptions } from './replicate/run';
export { checkTargets, renderSvg, renderTables, type BenchResult, type CellResult, type ContestantInfo, type FailoverSummary, type MemoryResult, type TargetCheck } from './replicate/report';
export { CHART_PERCENTILES, ExactRecorder, FailoverMeter, medianWorst, type FailoverResult, type Recorder } from './replicate/meter';

/** The usage lines of the command (in `tidemark --help` too). */
export const benchReplicateUsage = `  tidemark bench replicate [--quick] [--contestants LIST] [--json FILE] [--svg FILE] [--dir D]
      tidemark's three-node cluster on 127.0.0.1 against a three-member etcd cluster
      and a three-server ZooKeeper ensemble, with one in-process tidemark Wal as the
      floor, equal heartbeat/election timeouts: commits/s, p50/p99/p99.9 and CPU per
      node at 128 B and 4 KiB x 1/16/256 closed-loop clients (interleaved slices);
      SIGKILL of the leader under 16 clients (longest write gap, time to a new leader,
      client errors; 5 times, median and worst); RSS and data size of every node after
      1,000,000 writes. etcd and ZooKeeper run only when installed on this machine
      (Debian etcd-server; zookeeper + default-jre-headless) and their npm clients
      (etcd3, node-zookeeper-client) resolve from the current directory; otherwise
      they are reported as not measured, with the reason. LIST: any of
      ${CONTESTANTS.join(',')} (default all). Full run ~20 min, --quick ~2 min
      (short slices, 1 failover, 20,000-write long run). --json FILE / --svg FILE also
      write every number / charts ('-' for stdout). Data under D (default os.tmpdir()),
      removed at the end. Tuning: --slice-seconds S --slices N --warmup S --failovers N
      --long-commands N --long-clients N --sizes B,B --clients N,N --cpu-prof DIR.
      Ctrl-C stops and cleans up.
`;

/** How the command runs its contestants (the CLI and `npm run bench:replicate` differ here). */
export interface BenchReplicateHooks {
  /** How to run the tidemark CLI for the nodes: `[node, ...flags, main.js]`. */
  readonly tidemarkCommand: readonly string[];
  /** Directories the optional npm packages (etcd3, node-zookeeper-client, hdr-histogram-js) are resolved from. */
  readonly moduleBases: readonly string[];
  /** Installs missing Debian packages (returns undefined) or says why not; default: never installs. */
  readonly install?: (pkgs: readonly string[]) => string | undefined;
  /** The name in messages (default `bench replicate`). */
  readonly command?: string;
}

function positive(value: string | undefined, option: string, usage: (message: string) => Error, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw usage(`${option} must be a ${integer ? 'whole number' : 'number'} above 0, got '${value}'`);
  return n;
}

function list(value: string, option: string, usage: (message: string) => Error): number[] {
  const out = value.split(',').map((v) => positive(v, option, usage, true) as number);
  if (out.length === 0) throw usage(`${option} must not be empty`);
  return out;
}

/**
 * The command. Throws `usageError(message)` for bad arguments (the caller exits 2); resolves
 * with the exit code: 0 done, 1 when the tidemark cluster or the Wal floor (which need
 * nothing outside this package) could not run. SIGINT/SIGTERM exit the process (130/143)
 * after killing every benchmark process and removing the scratch directory.
 */
export async function benchReplicateCommand(args: string[], usageError: (message: string) => Error, hooks: BenchReplicateHooks): Promise<number> {
  const command = hooks.command ?? 'bench replicate';
  const usage = (message: string): Error => usageError(`${command}: ${message}\nUsage:\n${benchReplicateUsage}`);
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args,
      options: {
        quick: { type: 'boolean' },
        contestants: { type: 'string' },
        json: { type: 'string' },
        svg: { type: 'string' },
        dir: { type: 'string' },
        sizes: { type: 'string' },
        clients: { type: 'string' },
        'slice-seconds': { type: 'string' },
        slices: { type: 'string' },
        warmup: { type: 'string' },
        failovers: { type: 'string' },
        'long-commands': { type: 'string' },
        'long-clients': { type: 'string' },
        'cpu-prof': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw usage(err instanceof Error ? err.message : String(err));
  }
  const str = (k: string): string | undefined => values[k] as string | undefined;
  const quick = values.quick === true;
  const contestants = (str('contestants') ?? CONTESTANTS.join(',')).split(',').filter((s) => s !== '');
  for (const c of contestants) if (!(CONTESTANTS as readonly string[]).includes(c)) throw usage(`unknown contestant '${c}' (${CONTESTANTS.join(', ')})`);
  if (contestants.length === 0) throw usage('--contestants must name at least one');
  const settings = replicateSettings(quick, {
    sliceSeconds: positive(str('slice-seconds'), '--slice-seconds', usage, false),
    slices: positive(str('slices'), '--slices', usage, true),
    warmupSeconds: positive(str('warmup'), '--warmup', usage, false),
    failovers: positive(str('failovers'), '--failovers', usage, true),
    longCommands: positive(str('long-commands'), '--long-commands', usage, true),
  });
  const dir = benchDirectory(str('dir'), usageError, command);
  const jsonFile = outputPath(str('json'), '--json', usage, command);
  const svgFile = outputPath(str('svg'), '--svg', usage, command);
  if (jsonFile === '-' && svgFile === '-') throw usage('only one of --json and --svg can go to stdout');
  const cpuProf = str('cpu-prof');
  const sizes = list(str('sizes') ?? '128,4096', '--sizes', usage);
  const clientCounts = list(str('clients') ?? '1,16,256', '--clients', usage);
  const longClients = positive(str('long-clients'), '--long-clients', usage, true) ?? 256;

  const tty = process.stderr.isTTY === true;
  installSignalHandlers();
  const result: BenchResult = await runReplicateBench({
    quick,
    contestants: contestants as ContestantName[],
    sizes,
    clientCounts,
    ...settings,
    longClients,
    dir,
    tidemarkCommand: hooks.tidemarkCommand,
    ...(cpuProf === undefined ? {} : { cpuProfDir: path.resolve(cpuProf) }),
    moduleBases: hooks.moduleBases,
    ...(hooks.install === undefined ? {} : { install: hooks.install }),
    progress: (text) => {
      if (tty) process.stderr.write(`\r\x1b[K${text.slice(0, (process.stderr.columns ?? 100) - 1)}`);
    },
    say: (text) => {
      if (tty) process.stderr.write('\r\x1b[K');
      process.stderr.write(`${text}\n`);
    },
    onCheckpoint: (partial) => {
      if (jsonFile !== undefined && jsonFile !== '-') fs.writeFileSync(jsonFile, `${JSON.stringify(partial, null, 2)}\n`);
    },
  });
  if (tty) process.stderr.write('\r\x1b[K');
  const json = `${JSON.stringify(result, null, 2)}\n`;
  if (jsonFile !== undefined && jsonFile !== '-') fs.writeFileSync(jsonFile, json);
  if (svgFile !== undefined && svgFile !== '-') fs.writeFileSync(svgFile, renderSvg(result));
  if (jsonFile === '-') process.stdout.write(json);
  else if (svgFile === '-') process.stdout.write(renderSvg(result));
  else {
    const written = [jsonFile === undefined ? '' : `JSON: ${jsonFile}`, svgFile === undefined ? '' : `SVG: ${svgFile}`].filter((s) => s !== '');
    process.stdout.write(`${renderTables(result)}${written.length > 0 ? `\n${written.join('\n')}\n` : ''}`);
  }
  const failed = result.contestants.filter((c) => !c.measured && (c.name === 'tidemark' || c.name === 'wal-floor'));
  for (const c of failed) process.stderr.write(`tidemark: ${command}: ${c.name} could not run: ${c.reason ?? '?'}\n`);
  return failed.length > 0 ? 1 : 0;
}
