/**
 * The human-readable report of `tidemark bench fsync`: markdown tables (they paste into a
 * README as they are) and a plain-language reading of the numbers.
 */
import { formatFilesystem } from '../fsinfo';
import { FileKinds, PLAIN_WRITE, SyncMethods, type MethodRow } from './methods';
import { Verdicts } from './honesty';
import type { FsyncBenchResult } from './result';

/** `512 B`, `4 KiB`, `1 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1048576 && bytes % 1048576 === 0) return `${bytes / 1048576} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

/** A count or rate with thousands separators; `n/a` when not finite. */
export function formatCount(x: number): string {
  return Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a';
}

/** Microseconds: one decimal below 100, whole numbers above. */
export function formatUs(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  return x < 100 ? x.toFixed(1) : Math.round(x).toLocaleString('en-US');
}

function methodTable(rows: readonly MethodRow[]): string {
  const lines = ['| size | file | method | ops/s | p50 µs | p99 µs | p99.9 µs | syncs | dev flushes |', '| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |'];
  for (const r of rows) {
    const method = r.winner ? `**${r.method}** ★` : r.method;
    const l = r.latency;
    const flushes = r.deviceFlushes === undefined ? 'n/a' : String(r.deviceFlushes);
    if (l === undefined) lines.push(`| ${formatBytes(r.bytes)} | ${r.file} | ${method} | not measured (${r.notMeasured ?? 'unknown'}) | | | | ${r.syncsIssued} | ${flushes} |`);
    else lines.push(`| ${formatBytes(r.bytes)} | ${r.file} | ${method} | ${formatCount(l.opsPerS)} | ${formatUs(l.p50Us)} | ${formatUs(l.p99Us)} | ${formatUs(l.p999Us)} | ${r.syncsIssued} | ${flushes} |`);
  }
  return lines.join('\n');
}

/** Step 1's table (every row, the winner per size and file in bold with ★). */
export function formatMethodsTable(result: FsyncBenchResult): string {
  return methodTable(result.methods.rows);
}

/** The fastest sync per size, over both file kinds. */
export function winnersPerSize(rows: readonly MethodRow[]): MethodRow[] {
  const best = new Map<number, MethodRow>();
  for (const r of rows) {
    if (r.method === PLAIN_WRITE || r.latency === undefined) continue;
    const current = best.get(r.bytes);
    if (current?.latency === undefined || r.latency.opsPerS > current.latency.opsPerS) best.set(r.bytes, r);
  }
  return [...best.values()].sort((a, b) => a.bytes - b.bytes);
}

/** Step 2's table. */
export function formatGroupTable(result: FsyncBenchResult): string {
  const lines = [
    '| record | writers | appends/s | MB/s | avg batch | syncs | p50 µs | p99 µs | disk limit/s | reached |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const g of result.groupCommit) {
    const limit = g.limit === undefined ? 'n/a' : `${formatCount(g.limit.appendsPerS)}${g.limit.extrapolated ? ' ¹' : ''}`;
    const reached = g.fractionOfLimit === undefined ? 'n/a' : `${(g.fractionOfLimit * 100).toFixed(0)} %`;
    lines.push(
      `| ${formatBytes(g.recordBytes)} | ${g.writers} | ${formatCount(g.appendsPerS)} | ${g.mbPerS.toFixed(1)} | ${g.averageBatch.toFixed(1)} | ${g.syncs} | ${formatUs(g.latency.p50Us)} | ${formatUs(g.latency.p99Us)} | ${limit} | ${reached} |`,
    );
  }
  if (result.groupCommit.some((g) => g.limit?.extrapolated === true)) lines.push('', "¹ the batch is larger than step 1's largest write: its sync time is extended at the best synced bandwidth.");
  return lines.join('\n');
}

/** Step 3 in lines. */
export function formatHonesty(result: FsyncBenchResult): string {
  const h = result.honesty;
  const lines = [`Verdict: ${h.verdict}.`];
  for (const f of h.findings) lines.push(`- ${f}`);
  let syncs = `Syncs issued: ${h.syncsIssued.total.toLocaleString('en-US')} (${h.syncsIssued.methods.toLocaleString('en-US')} in step 1, ${h.syncsIssued.wal.toLocaleString('en-US')} by the Wal in step 2)`;
  if (h.device !== undefined) {
    syncs += `; device ${h.device.name} completed ${h.device.writes.toLocaleString('en-US')} writes`;
    syncs += h.device.flushes === undefined ? ' (this kernel does not count flushes)' : ` and ${h.device.flushes.toLocaleString('en-US')} flush requests meanwhile (all processes)`;
  }
  lines.push(`${syncs}.`);
  const sw = h.syncVsWrite.map((s) => `${formatBytes(s.bytes)} ${formatUs(s.plainWriteP50Us)} → ${formatUs(s.syncP50Us)} µs`).join(', ');
  if (sw !== '') lines.push(`Plain write → write+fdatasync, p50: ${sw}.`);
  return lines.join('\n');
}

function row(result: FsyncBenchResult, method: string, file: string, bytes: number): MethodRow | undefined {
  return result.methods.rows.find((r) => r.method === method && r.file === file && r.bytes === bytes && r.latency !== undefined);
}

/** A plain-language reading: what wins, what the growing file costs, how close the Wal gets. */
export function interpretFsync(result: FsyncBenchResult): string {
  const s: string[] = [];
  if (result.honesty.verdict === Verdicts.DOES_NOT_FLUSH) {
    s.push('The honesty check says this storage does not flush, so none of these numbers say anything about durability.');
  }
  const winners = winnersPerSize(result.methods.rows);
  if (winners.length > 0) {
    s.push(`Fastest durable write per size: ${winners.map((w) => `${formatBytes(w.bytes)} ${w.method} on a ${w.file} file (${formatCount(w.latency?.opsPerS ?? Number.NaN)}/s)`).join('; ')}.`);
  }
  const pre = row(result, SyncMethods.WRITE_FDATASYNC, FileKinds.PREWRITTEN, 4096);
  const grow = row(result, SyncMethods.WRITE_FDATASYNC, FileKinds.GROWING, 4096);
  if (pre?.latency !== undefined && grow?.latency !== undefined && pre.latency.p50Us > 0) {
    const ratio = grow.latency.p50Us / pre.latency.p50Us;
    const both = `(${formatUs(grow.latency.p50Us)} vs ${formatUs(pre.latency.p50Us)} µs p50)`;
    if (ratio >= 1.3) s.push(`At 4 KiB, a sync on a growing file costs ${ratio.toFixed(1)}× one on a pre-written file ${both}: it must also persist the new size and block allocation, which is why tidemark zero-fills its segments ahead of use.`);
    else if (ratio > 1 / 1.3) s.push(`At 4 KiB, a sync on a growing file costs about the same as on a pre-written one here ${both}.`);
    else s.push(`At 4 KiB, a sync on a growing file came out cheaper than on a pre-written one ${both}, which no filesystem does by design: read it as noise from other work on the device.`);
  }
  if (pre?.latency !== undefined && pre.latency.p999Us > 10 * pre.latency.p50Us) {
    s.push(`The 4 KiB p99.9 is ${(pre.latency.p999Us / pre.latency.p50Us).toFixed(0)}× the p50: something else is using this device (or the host behind it), and a log's tail latency will show it.`);
  }
  const cells = result.groupCommit.filter((g) => g.fractionOfLimit !== undefined);
  const best = cells.reduce<(typeof cells)[number] | undefined>((b, g) => (b === undefined || g.appendsPerS > b.appendsPerS ? g : b), undefined);
  const one = result.groupCommit.find((g) => g.writers === 1 && g.recordBytes === 128);
  if (one !== undefined && best !== undefined && one.appendsPerS > 0) {
    s.push(
      `The Wal turns ${one.writers} writer's ${formatCount(one.appendsPerS)} appends/s into ${formatCount(best.appendsPerS)}/s with ${best.writers} writers at ${formatBytes(best.recordBytes)} ` +
        `(${best.averageBatch.toFixed(0)} appends per sync, ${((best.fractionOfLimit ?? 0) * 100).toFixed(0)} % of what the disk allows for such batches).`,
    );
  }
  const above = result.groupCommit.filter((g) => (g.fractionOfLimit ?? 0) > 1.2);
  if (above.length > 0) {
    s.push(`${above.length} group-commit cell${above.length === 1 ? '' : 's'} beat the derived limit by more than 20 %: the device was busier while step 1 ran than then (the limit is only as good as step 1's numbers), or the batch's bytes sync faster than one write of that size did.`);
  }
  return s.join(' ');
}

/** The full text report printed at the end. */
export function formatFsyncReport(result: FsyncBenchResult): string {
  const m = result.machine;
  return [
    `tidemark bench fsync${result.settings.quick ? ' --quick' : ''}: ${result.durationSeconds.toFixed(1)} s, ${result.startedAt}`,
    `Filesystem: ${formatFilesystem(result.fs)}`,
    `Machine: ${m.cpus} × ${m.cpuModel}, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, Linux ${m.kernel}, Node ${m.node}, load ${m.loadAverageStart.map((x) => x.toFixed(2)).join(' ')} → ${m.loadAverageEnd.map((x) => x.toFixed(2)).join(' ')}`,
    result.methods.uringUnavailable === undefined ? '' : `io_uring: not measured (${result.methods.uringUnavailable}).`,
    '',
    `1. One durable write (${result.settings.secondsPerRow} s per row${result.settings.passes > 1 ? ` in ${result.settings.passes} interleaved passes` : ''}; ★ = fastest at that size and file; ${formatBytes(result.methods.prewrittenFileBytes)} pre-written file, zero-filled in ${result.methods.prewriteSeconds.toFixed(2)} s)`,
    '',
    formatMethodsTable(result),
    '',
    `2. Group commit: tidemark Wal (sync: 'fdatasync'), closed-loop writers, ${result.settings.secondsPerCell} s per cell; disk limit = avg batch ÷ mean write+fdatasync time of one batch's bytes (step 1, pre-written; beyond 1 MiB at the best synced bandwidth)`,
    '',
    formatGroupTable(result),
    '',
    '3. Honesty check',
    '',
    formatHonesty(result),
    '',
    interpretFsync(result),
  ]
    .filter((line, i, all) => !(line === '' && all[i - 1] === ''))
    .join('\n');
}
