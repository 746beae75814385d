/**
 * Cross-check of `tidemark bench fsync` against fio (Debian's `fio` package) on the same
 * directory: write + fdatasync of 4 KiB, one at a time, on a pre-written and on a growing
 * file, alternating fio and tidemark's own measuring code (lib/cli/fsync/methods.ts) in
 * `rounds` rounds so that both see the same noise.
 *
 *   npx tsx bench/fsync-fio.ts [--dir D] [--rounds 3] [--seconds 3]
 *
 * fio jobs: `--ioengine=psync --rw=write --bs=4k --fdatasync=1`, time based; pre-written:
 * an existing 64 MiB file zero-filled and fsynced by dd (`conv=fsync`) first; growing: an
 * empty file with `--file_append=1 --fallocate=none`. fio reports the write and the
 * fdatasync latencies apart; "fio p50" is the sum of the two p50s (an approximation of
 * the p50 of their sum); "ops/s" is fio's IOPS (each write followed by its fdatasync).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileKinds, measureOne, SyncMethods, type FileKind } from '../lib/cli/fsync/methods';
import { formatCount, formatUs } from '../lib/cli/fsync/report';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : (process.argv[i + 1] ?? fallback);
}

interface Point {
  opsPerS: number;
  p50Us: number;
  p99Us?: number;
}

interface FioJob {
  write: { iops: number; clat_ns: { percentile: Record<string, number> } };
  sync: { lat_ns: { percentile: Record<string, number> } };
}

function fio(dir: string, kind: FileKind, seconds: number): Point {
  const file = path.join(dir, `fio-${kind}.tmp`);
  if (kind === FileKinds.PREWRITTEN) execFileSync('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', 'count=64', 'conv=fsync', 'status=none']);
  else fs.writeFileSync(file, '');
  const args = ['--name=x', `--filename=${file}`, '--rw=write', '--bs=4k', '--size=64m', '--fdatasync=1', '--ioengine=psync', '--time_based', `--runtime=${seconds}`, '--output-format=json'];
  if (kind === FileKinds.GROWING) args.push('--file_append=1', '--fallocate=none');
  try {
    const out = JSON.parse(execFileSync('fio', args, { encoding: 'utf8' })) as { jobs: FioJob[] };
    const job = out.jobs[0];
    if (job === undefined) throw new Error('fio printed no job');
    const writeP50 = job.write.clat_ns.percentile['50.000000'] ?? Number.NaN;
    const syncP50 = job.sync.lat_ns.percentile['50.000000'] ?? Number.NaN;
    const syncP99 = job.sync.lat_ns.percentile['99.000000'] ?? Number.NaN;
    return { opsPerS: job.write.iops, p50Us: (writeP50 + syncP50) / 1000, p99Us: syncP99 / 1000 };
  } finally {
    fs.rmSync(file, { force: true });
  }
}

async function tidemark(dir: string, kind: FileKind, seconds: number): Promise<Point> {
  const row = await measureOne({ dir, secondsPerRow: seconds, signal: new AbortController().signal }, SyncMethods.WRITE_FDATASYNC, kind, 4096, 64 * 1024 * 1024);
  if (row.latency === undefined) throw new Error(`not measured: ${row.notMeasured ?? '?'}`);
  return { opsPerS: row.latency.opsPerS, p50Us: row.latency.p50Us, p99Us: row.latency.p99Us };
}

async function main(): Promise<void> {
  const base = path.resolve(option('dir', os.tmpdir()));
  const rounds = Number(option('rounds', '3'));
  const seconds = Number(option('seconds', '3'));
  const dir = fs.mkdtempSync(path.join(base, 'tidemark-fsync-fio-'));
  const version = execFileSync('fio', ['--version'], { encoding: 'utf8' }).trim();
  const lines = [
    `fio cross-check in ${base} (${version}), ${rounds} rounds of ${seconds} s per tool and file, ${new Date().toISOString().slice(0, 16)} UTC, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
    '',
    '| round | file | fio ops/s | tidemark ops/s | fio p50 µs (write + sync) | tidemark p50 µs | fio sync p99 µs | tidemark p99 µs |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const kind of [FileKinds.PREWRITTEN, FileKinds.GROWING]) {
        const f = fio(dir, kind, seconds);
        const t = await tidemark(dir, kind, seconds);
        lines.push(`| ${round} | ${kind} | ${formatCount(f.opsPerS)} | ${formatCount(t.opsPerS)} | ${formatUs(f.p50Us)} | ${formatUs(t.p50Us)} | ${formatUs(f.p99Us ?? Number.NaN)} | ${formatUs(t.p99Us ?? Number.NaN)} |`);
        process.stderr.write(`${lines[lines.length - 1] ?? ''}\n`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

void main();
