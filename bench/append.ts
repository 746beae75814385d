/**
 * `npm run bench:append`: tidemark against what a user would pick instead, in the same run,
 * on the same filesystem, with N closed-loop writers per cell. See `--help`.
 *
 * Every contestant really syncs what it claims; each file in bench/compare/ says how.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { CellMeasurement, loopDelayResolutionMs, type BenchStore, type CellResult, type Contestant } from './harness';
import { bandwidthProbeBytes, bestPoints, cellCeiling, type DurableWritePoint, DurableWriteProbe, roundUpToPage, type CellCeiling } from './ceiling';
import { rawFs } from './compare/raw-fs';
import { instant } from './compare/instant';
import { jsGroupCommit } from './compare/js-group-commit';
import { sqliteBatched, sqliteOnePerTxn } from './compare/sqlite';
import { lmdbContestant } from './compare/lmdb';
import { levelContestant } from './compare/level';
import { measureAppendMany, tidemark, tidemarkDirect, tidemarkDsync, tidemarkPoll, tidemarkUring } from './compare/tidemark';
import { describeFilesystem, formatFilesystem } from '../lib/cli/fsinfo';

const allContestants: readonly Contestant[] = [tidemark, tidemarkDsync, tidemarkDirect, tidemarkPoll, tidemarkUring, rawFs, jsGroupCommit, sqliteOnePerTxn, sqliteBatched, lmdbContestant, levelContestant, instant];
const defaultContestants = ['tidemark', 'fs', 'jsgc', 'sqlite', 'sqlite-batched', 'lmdb', 'level'];
/** Short names accepted by --only. */
const aliases: Record<string, Contestant> = {
  tidemark,
  'tidemark-dsync': tidemarkDsync,
  'tidemark-direct': tidemarkDirect,
  'tidemark-poll': tidemarkPoll,
  'tidemark-uring': tidemarkUring,
  fs: rawFs,
  jsgc: jsGroupCommit,
  sqlite: sqliteOnePerTxn,
  'sqlite-batched': sqliteBatched,
  lmdb: lmdbContestant,
  level: levelContestant,
  instant,
};

const help = `Usage: npm run bench:append -- [options]

  --seconds S         measured seconds per cell and contestant (default 3)
  --slices K          split them into K slices, interleaved between contestants (default 6)
  --warmup S          unmeasured seconds per store before its first slice (default 0.3)
  --sizes A,B         record sizes in bytes (default 128,4096)
  --writers A,B,C     closed-loop writer counts (default 1,16,256)
  --only X,Y          contestants (default ${defaultContestants.join(',')});
                      also: tidemark-dsync, tidemark-direct, tidemark-poll, tidemark-uring,
                      instant (the harness ceiling: a store that settles at once)
  --runs R            repeat the grid R times (contestant order rotated each run),
                      report the median run per cell and contestant (default 1)
  --dir PATH          parent directory for the temp dirs (default os.tmpdir())
  --json FILE         also write all results as JSON
  --many-seconds S    seconds for each appendMany line (default 2; 0 skips them)
  --ceiling-seconds S seconds per batch size for the disk ceiling (default 0.3)
  --segment-bytes B   tidemark contestants' segmentBytes (default the Wal's, 64 MiB);
                      smaller segments rotate more often inside the measured window
  --help              this text
`;

interface Options {
  seconds: number;
  warmup: number;
  sizes: number[];
  writers: number[];
  only: Contestant[];
  runs: number;
  slices: number;
  dir: string;
  json?: string;
  manySeconds: number;
  ceilingSeconds: number;
  segmentBytes?: number;
}

class UsageError extends Error {}

function numberList(value: string, name: string): number[] {
  const out = value.split(',').map((s) => Number(s.trim()));
  if (out.length === 0 || out.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError(`${name} wants positive integers separated by commas, got '${value}'`);
  return out;
}

function seconds(value: string | undefined, fallback: number, name: string, allowZero = false): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) throw new UsageError(`${name} wants a number of seconds${allowZero ? ' (0 or more)' : ' above 0'}, got '${value}'`);
  return n;
}

function parseOptions(argv: string[]): Options | undefined {
  let values;
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        seconds: { type: 'string' },
        slices: { type: 'string' },
        warmup: { type: 'string' },
        sizes: { type: 'string' },
        writers: { type: 'string' },
        only: { type: 'string' },
        runs: { type: 'string' },
        dir: { type: 'string' },
        json: { type: 'string' },
        'many-seconds': { type: 'string' },
        'ceiling-seconds': { type: 'string' },
        'segment-bytes': { type: 'string' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  if (values.help === true) return undefined;
  const only = (values.only ?? defaultContestants.join(',')).split(',').map((name) => {
    const c = aliases[name.trim()];
    if (c === undefined) throw new UsageError(`--only: unknown contestant '${name}'; known: ${Object.keys(aliases).join(', ')}`);
    return c;
  });
  const slices = Number(values.slices ?? '6');
  if (!Number.isInteger(slices) || slices < 1 || slices > 1000) throw new UsageError(`--slices wants a whole number from 1 to 1000, got '${values.slices ?? ''}'`);
  const runs = Number(values.runs ?? '1');
  if (!Number.isInteger(runs) || runs < 1 || runs > 100) throw new UsageError(`--runs wants a whole number from 1 to 100, got '${values.runs ?? ''}'`);
  const options: Options = {
    seconds: seconds(values.seconds, 3, '--seconds'),
    warmup: seconds(values.warmup, 0.3, '--warmup', true),
    sizes: numberList(values.sizes ?? '128,4096', '--sizes'),
    writers: numberList(values.writers ?? '1,16,256', '--writers'),
    only: [...new Set(only)],
    runs,
    slices,
    dir: path.resolve(values.dir ?? os.tmpdir()),
    manySeconds: seconds(values['many-seconds'], 2, '--many-seconds', true),
    ceilingSeconds: seconds(values['ceiling-seconds'], 0.3, '--ceiling-seconds'),
  };
  if (values.json !== undefined) options.json = path.resolve(values.json);
  if (values['segment-bytes'] !== undefined) {
    const b = Number(values['segment-bytes']);
    if (!Number.isInteger(b) || b < 1) throw new UsageError(`--segment-bytes wants a whole number of bytes, got '${values['segment-bytes']}'`);
    options.segmentBytes = b;
  }
  return options;
}

function fmtInt(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? 'n/a' : Math.round(x).toLocaleString('en-US');
}
function fmt(x: number | undefined, digits: number): string {
  return x === undefined || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits);
}
function sizeLabel(bytes: number): string {
  return bytes >= 1024 && bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} B`;
}
function cellLabel(recordBytes: number, writers: number): string {
  return `${sizeLabel(recordBytes)} × ${writers}`;
}

interface Row {
  cell: string;
  recordBytes: number;
  writers: number;
  contestant: string;
  result?: CellResult;
  /** All runs' appends/s, for the record. */
  runsAppendsPerS: number[];
  error?: string;
  fractionOfCeiling?: number;
}

/**
 * Measures one cell for every contestant: all stores open side by side (each in its own
 * directory), each warmed up, then `slices` measured slices per contestant, interleaved in
 * rotating order (A B C, B C A, C A B, ...), so that they all share the machine's noise.
 */
async function measureCell(
  contestants: readonly Contestant[],
  parent: string,
  recordBytes: number,
  writers: number,
  options: Options,
  run: number,
  log: (line: string) => void,
): Promise<Map<Contestant, CellResult | Error>> {
  const out = new Map<Contestant, CellResult | Error>();
  const open: { contestant: Contestant; store: BenchStore; dir: string; m: CellMeasurement }[] = [];
  const label = `run ${run}/${options.runs} ${cellLabel(recordBytes, writers)}`;
  try {
    for (const contestant of contestants) {
      const dir = fs.mkdtempSync(path.join(parent, `${contestant.name.replace(/[^a-z0-9]+/gi, '-')}-`));
      try {
        const store = await contestant.open(dir, recordBytes, options.segmentBytes === undefined ? {} : { segmentBytes: options.segmentBytes });
        const m = new CellMeasurement(store, recordBytes, writers);
        open.push({ contestant, store, dir, m });
        await m.warmup(options.warmup);
      } catch (err) {
        out.set(contestant, err instanceof Error ? err : new Error(String(err)));
        log(`${label} ${contestant.name}: error: ${String(err)}`);
      }
    }
    const failed = new Set<Contestant>();
    for (let slice = 0; slice < options.slices; slice++) {
      const shift = (slice + run - 1) % Math.max(1, open.length);
      for (const entry of [...open.slice(shift), ...open.slice(0, shift)]) {
        if (failed.has(entry.contestant)) continue;
        try {
          await entry.m.slice(options.seconds / options.slices);
        } catch (err) {
          failed.add(entry.contestant);
          out.set(entry.contestant, err instanceof Error ? err : new Error(String(err)));
          log(`${label} ${entry.contestant.name}: error: ${String(err)}`);
        }
      }
    }
    for (const entry of open) {
      if (failed.has(entry.contestant)) continue;
      const result = entry.m.result();
      out.set(entry.contestant, result);
      log(
        `${label} ${entry.contestant.name}: ${fmtInt(result.appendsPerS)}/s, p99 ${fmtInt(result.p99Us)} µs, p99.9 ${fmtInt(result.p999Us)} µs, ` +
          `loop delay p50/p99/max ${fmtInt(result.loopDelayP50Us)}/${fmtInt(result.loopDelayP99Us)}/${fmtInt(result.loopDelayMaxUs)} µs`,
      );
    }
  } finally {
    for (const entry of open) {
      entry.m.destroy();
      try {
        await entry.store.close();
      } catch (err) {
        log(`${label} ${entry.contestant.name}: close failed: ${String(err)}`);
      }
      fs.rmSync(entry.dir, { recursive: true, force: true });
    }
  }
  return out;
}

async function main(): Promise<number> {
  let options: Options | undefined;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bench:append: ${err.message}\n\n${help}`);
      return 2;
    }
    throw err;
  }
  if (options === undefined) {
    process.stdout.write(help);
    return 0;
  }
  const o = options;
  const contestants = o.only;
  fs.mkdirSync(o.dir, { recursive: true });
  const parent = fs.mkdtempSync(path.join(o.dir, 'tidemark-bench-'));
  const say = (line = ''): void => console.log(line);
  try {
    const fsInfo = describeFilesystem(parent);
    const cpus = os.cpus();
    say(`# tidemark append benchmark`);
    say();
    say(`${new Date().toISOString()} · node ${process.version} · ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown cpu'} · load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    say(`Filesystem: ${formatFilesystem(fsInfo)}`);
    say(
      `Cells: ${o.seconds} s measured per contestant in ${o.slices} interleaved slices, after ${o.warmup} s warm-up; ${o.runs} run(s)` +
        `${o.runs > 1 ? ' (median run shown)' : ''}; contestants: ${contestants.map((c) => c.name).join(', ')}`,
    );
    say();

    // The disk ceiling: probed before the grid (all sizes), after each cell (its batch size)
    // and after the grid (all sizes); per size the best median is used.
    const batchSizes = [...new Set(o.sizes.flatMap((r) => o.writers.map((w) => roundUpToPage(r * w))))].sort((a, b) => a - b);
    const ceilingSizes = [...new Set([...batchSizes, bandwidthProbeBytes])].sort((a, b) => a - b);
    const probe = new DurableWriteProbe(parent, Math.max(...ceilingSizes));
    const probes: DurableWritePoint[][] = [];
    const before = probe.measure(ceilingSizes, o.ceilingSeconds);
    probes.push(before);

    const rows: Row[] = [];
    const byKey = new Map<string, Row>();
    const runResults = new Map<string, CellResult[]>();
    for (let run = 1; run <= o.runs; run++) {
      for (const recordBytes of o.sizes) {
        for (const writers of o.writers) {
          const results = await measureCell(contestants, parent, recordBytes, writers, o, run, (line) => process.stderr.write(`${line}\n`));
          for (const contestant of contestants) {
            const key = `${recordBytes}/${writers}/${contestant.name}`;
            let row = byKey.get(key);
            if (row === undefined) {
              row = { cell: cellLabel(recordBytes, writers), recordBytes, writers, contestant: contestant.name, runsAppendsPerS: [] };
              byKey.set(key, row);
              rows.push(row);
            }
            const result = results.get(contestant);
            if (result instanceof Error) {
              row.error ??= result.message;
            } else if (result !== undefined) {
              const list = runResults.get(key) ?? [];
              list.push(result);
              runResults.set(key, list);
              row.runsAppendsPerS.push(result.appendsPerS);
            }
          }
          probes.push(probe.measure([roundUpToPage(recordBytes * writers)], o.ceilingSeconds / 2));
        }
      }
    }
    const after = probe.measure(ceilingSizes, o.ceilingSeconds);
    probes.push(after);
    probe.close();
    const points = bestPoints(probes);

    // Median run per row.
    for (const [key, list] of runResults) {
      const row = byKey.get(key);
      if (row === undefined || list.length === 0) continue;
      const sorted = [...list].sort((a, b) => a.appendsPerS - b.appendsPerS);
      row.result = sorted[Math.floor((sorted.length - 1) / 2)];
    }

    say(`## Disk ceiling: O_DSYNC pwrite on a pre-written file (median µs before the grid, after it, and the best of all probes, which is used)`);
    say();
    say('| write | before µs | after µs | probes | best µs | MB/s at best |');
    say('| ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const p of points) {
      const b = before.find((x) => x.bytes === p.bytes);
      const a = after.find((x) => x.bytes === p.bytes);
      const count = probes.filter((list) => list.some((x) => x.bytes === p.bytes)).length;
      say(`| ${sizeLabel(p.bytes)} | ${fmt(b?.medianUs, 0)} | ${fmt(a?.medianUs, 0)} | ${count} | ${fmt(p.medianUs, 0)} | ${fmtInt(p.bytes / p.medianUs)} |`);
    }
    say();

    const ceilings = new Map<string, CellCeiling>();
    for (const r of o.sizes) for (const w of o.writers) ceilings.set(cellLabel(r, w), cellCeiling(points, r, w));
    for (const row of rows) {
      const c = ceilings.get(row.cell);
      if (row.result !== undefined && c !== undefined) row.fractionOfCeiling = row.result.appendsPerS / c.appendsPerS;
    }

    say('## Results');
    say();
    say('| cell (record × writers) | contestant | appends/s | MB/s | p50 µs | p99 µs | p99.9 µs | loop delay p50 / p99 / max µs | syncs/1k | % of ceiling |');
    say('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of o.sizes) {
      for (const w of o.writers) {
        const cell = cellLabel(r, w);
        const c = ceilings.get(cell);
        say(`| **${cell}** | *disk ceiling* | ${fmtInt(c?.appendsPerS)} | ${fmt(c === undefined ? undefined : (c.appendsPerS * r) / 1e6, 1)} | ${fmt(c?.batchMedianUs, 0)} | | | | | 100% |`);
        for (const row of rows.filter((x) => x.cell === cell)) {
          if (row.error !== undefined) {
            say(`| ${cell} | ${row.contestant} | error: ${row.error} | | | | | | | |`);
            continue;
          }
          const x = row.result;
          if (x === undefined) continue;
          say(
            `| ${cell} | ${row.contestant} | ${fmtInt(x.appendsPerS)} | ${fmt(x.mbPerS, 1)} | ${fmtInt(x.p50Us)} | ${fmtInt(x.p99Us)} | ${fmtInt(x.p999Us)} | ${fmtInt(x.loopDelayP50Us)} / ${fmtInt(x.loopDelayP99Us)} / ${fmtInt(x.loopDelayMaxUs)} | ${x.syncsPer1k === undefined ? 'n/a' : fmt(x.syncsPer1k, 1)} | ${fmt((row.fractionOfCeiling ?? Number.NaN) * 100, 0)}% |`,
          );
        }
      }
    }
    say();
    say(`Loop delay: perf_hooks.monitorEventLoopDelay (sampled every ${loopDelayResolutionMs} ms, the interval subtracted) while that contestant's measured slices ran; a store that blocks the JS thread on the disk shows it there (one whose appends settle synchronously never lets closed-loop writers yield: its max is the whole slice, its p50 latency is how long each commit holds the thread).`);
    say('Ceiling per cell = min(N ÷ median O_DSYNC write of N × record rounded up to 4 KiB, best synced bandwidth ÷ record); its p50 column is that write\'s median µs.');
    if (rows.some((r) => (r.fractionOfCeiling ?? 0) > 1)) {
      say('**Some contestant beat the measured ceiling**: the disk was busier during every probe of that size than during that cell; treat those ceilings as lower bounds.');
    }
    say();

    const summary: { cell: string; tidemark?: CellResult; bestPeer?: string; bestPeerResult?: CellResult; ratio?: number; p99NoWorse?: boolean; ceiling?: number; target?: number; met?: boolean }[] = [];
    const tidemarkIn = contestants.includes(tidemark);
    if (tidemarkIn) {
      say('## tidemark against the best peer per cell');
      say();
      say('| cell | tidemark appends/s | best peer | its appends/s | ratio | tidemark p99 µs | peer p99 µs | p99 no worse | target (min of 2× peer, 90% ceiling) | met |');
      say('| --- | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | --- |');
    }
    for (const r of o.sizes) {
      for (const w of o.writers) {
        const cell = cellLabel(r, w);
        const cellRows = rows.filter((x) => x.cell === cell && x.result !== undefined);
        const t = cellRows.find((x) => x.contestant === tidemark.name)?.result;
        let best: Row | undefined;
        for (const x of cellRows) {
          if (x.contestant.startsWith('tidemark') || x.contestant === instant.name) continue;
          if (best?.result === undefined || (x.result?.appendsPerS ?? 0) > best.result.appendsPerS) best = x;
        }
        const ceiling = ceilings.get(cell)?.appendsPerS;
        const entry: (typeof summary)[number] = { cell };
        if (t !== undefined) entry.tidemark = t;
        if (best?.result !== undefined) {
          entry.bestPeer = best.contestant;
          entry.bestPeerResult = best.result;
        }
        if (ceiling !== undefined) entry.ceiling = ceiling;
        if (t !== undefined && best?.result !== undefined) {
          entry.ratio = t.appendsPerS / best.result.appendsPerS;
          entry.p99NoWorse = t.p99Us <= best.result.p99Us;
          entry.target = Math.min(2 * best.result.appendsPerS, ceiling === undefined ? Number.POSITIVE_INFINITY : 0.9 * ceiling);
          entry.met = t.appendsPerS >= entry.target && entry.p99NoWorse;
          say(
            `| ${cell} | ${fmtInt(t.appendsPerS)} | ${best.contestant} | ${fmtInt(best.result.appendsPerS)} | ${fmt(entry.ratio, 2)}× | ${fmtInt(t.p99Us)} | ${fmtInt(best.result.p99Us)} | ${entry.p99NoWorse ? 'yes' : 'NO'} | ${fmtInt(entry.target)} | ${entry.met ? 'yes' : 'no'} |`,
          );
        }
        summary.push(entry);
      }
    }
    if (tidemarkIn) say();
    if (tidemarkIn && contestants.includes(instant)) {
      // Issue 10's 128 B × 256 target is also a fraction (0.6×) of this ceiling.
      const parts: string[] = [];
      for (const e of summary) {
        const h = rows.find((x) => x.cell === e.cell && x.contestant === instant.name)?.result;
        if (e.tidemark !== undefined && h !== undefined) parts.push(`${e.cell} ${fmt(e.tidemark.appendsPerS / h.appendsPerS, 2)}× (of ${fmtInt(h.appendsPerS)}/s)`);
      }
      say(`tidemark ÷ harness ceiling (a store that settles at once, same run): ${parts.join('; ')}`);
      say();
    }

    const many: Awaited<ReturnType<typeof measureAppendMany>>[] = [];
    if (tidemarkIn && o.manySeconds > 0) {
      // The target line is 1 caller awaiting each call; the pipelined line is the same caller
      // issuing the next call before awaiting the previous one (2 in flight).
      for (const [callers, inflight] of [
        [1, 1],
        [1, 2],
        [4, 1],
      ] as const) {
        const dir = fs.mkdtempSync(path.join(parent, 'tidemark-many-'));
        try {
          const m = await measureAppendMany(dir, callers, 1000, 128, o.manySeconds, inflight);
          many.push(m);
          const who = inflight > 1 ? `${callers} caller with ${inflight} calls in flight` : `${callers} closed-loop caller${callers > 1 ? 's' : ''}`;
          say(
            `appendMany, 1,000 × 128 B per call, ${who}, sync fdatasync: ${fmtInt(m.recordsPerS)} records/s (${fmt((m.recordsPerS * 128) / 1e6, 1)} MB/s; ` +
              `per call p50 ${fmtInt(m.callP50Us)} µs, p99 ${fmtInt(m.callP99Us)} µs; ${fmt((m.syncs / m.records) * 1000, 2)} syncs/1k records; ${inflight > 1 ? 'pipelined: not the target line' : `target ≥ 3,000,000: ${m.recordsPerS >= 3e6 ? 'met' : 'NOT met'}`})`,
          );
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }
      say();
    }

    say('What each contestant awaits (how it syncs):');
    for (const c of contestants) say(`- ${c.name}: ${c.durability}`);
    say();
    say(`Command: npm run bench:append -- ${process.argv.slice(2).join(' ')}`.trimEnd());

    if (o.json !== undefined) {
      const json = {
        date: new Date().toISOString(),
        node: process.version,
        cpus: cpus.length,
        loadavg: os.loadavg(),
        filesystem: fsInfo,
        options: { ...o, only: contestants.map((c) => c.name) },
        durableWrites: { before, after, probes, used: points },
        ceilings: Object.fromEntries(ceilings),
        rows,
        summary,
        appendMany: many,
      };
      fs.writeFileSync(o.json, `${JSON.stringify(json, null, 2)}\n`);
      console.log(`JSON written to ${o.json}`);
    }
  } finally {
    fs.rmSync(parent, { recursive: true, force: true });
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
