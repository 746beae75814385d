/**
 * `--svg`: three charts in one hand-written SVG document (no dependencies):
 * 1. sync latency (p50) by method and write size, pre-written file solid, growing dashed;
 * 2. the Wal's group-commit curve against the disk limit derived from chart 1;
 * 3. the latency distribution of every method at 4 KiB on the pre-written file.
 * Every series is a `<g class="series" data-chart=… data-series=…>`; every point has a
 * `<title>` with its value (a tooltip in a browser).
 */
import { FileKinds, PLAIN_WRITE, SyncMethods, type MethodRow } from './methods';
import { formatBytes, formatCount, formatUs } from './report';
import type { FsyncBenchResult } from './result';
import { histogramBoundsUs } from './stats';

/** The `data-chart` names of the three charts. */
export const SvgCharts = {
  LATENCY_BY_SIZE: 'latency-by-size',
  GROUP_COMMIT: 'group-commit',
  DISTRIBUTION: 'distribution',
} as const;

const methodColors: Record<string, string> = {
  [SyncMethods.WRITE_FDATASYNC]: '#1f77b4',
  [SyncMethods.WRITE_FSYNC]: '#ff7f0e',
  [SyncMethods.DSYNC]: '#2ca02c',
  [SyncMethods.DIRECT_DSYNC]: '#d62728',
  [SyncMethods.URING]: '#9467bd',
  [PLAIN_WRITE]: '#7f7f7f',
};

const width = 1040;
const panelHeight = 340;
const margin = { left: 70, right: 320, top: 44, bottom: 52 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function num(x: number): string {
  return (Math.round(x * 10) / 10).toString();
}

interface Series {
  name: string;
  color: string;
  dashed?: boolean;
  /** x in data units (an index for categorical axes), y in data units, and the tooltip. */
  points: Array<{ x: number; y: number; label: string }>;
  /** Draw as a step line without markers (histograms). */
  steps?: boolean;
  /** The legend's text, when not the name. */
  legend?: string;
}

interface Axis {
  kind: 'log' | 'linear' | 'category';
  min: number;
  max: number;
  ticks: Array<{ at: number; label: string }>;
  title: string;
}

function scale(axis: Axis, from: number, to: number): (v: number) => number {
  if (axis.kind === 'log') {
    const a = Math.log10(axis.min);
    const b = Math.log10(axis.max);
    return (v) => from + ((Math.log10(Math.max(v, axis.min)) - a) / (b - a || 1)) * (to - from);
  }
  return (v) => from + ((v - axis.min) / (axis.max - axis.min || 1)) * (to - from);
}

/** Powers of ten covering [min, max] (at least one decade), labelled with `format`. */
function logAxis(values: number[], title: string, format: (v: number) => string): Axis {
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  const lo = finite.length > 0 ? Math.min(...finite) : 1;
  const hi = finite.length > 0 ? Math.max(...finite) : 10;
  const min = 10 ** Math.floor(Math.log10(lo));
  const max = Math.max(min * 10, 10 ** Math.ceil(Math.log10(hi)));
  const ticks: Axis['ticks'] = [];
  for (let v = min; v <= max * 1.0001; v *= 10) ticks.push({ at: v, label: format(v) });
  return { kind: 'log', min, max, ticks, title };
}

function shortCount(v: number): string {
  if (v >= 1e6) return `${v / 1e6}M`;
  if (v >= 1e3) return `${v / 1e3}k`;
  return String(v);
}

function shortUs(v: number): string {
  if (v >= 1e6) return `${v / 1e6} s`;
  if (v >= 1e3) return `${v / 1e3} ms`;
  return `${v} µs`;
}

function panel(top: number, title: string, subtitle: string, chart: string, xAxis: Axis, yAxis: Axis, series: Series[]): string {
  const x0 = margin.left;
  const x1 = width - margin.right;
  const y0 = top + panelHeight - margin.bottom;
  const y1 = top + margin.top;
  const sx = scale(xAxis, x0, x1);
  const sy = scale(yAxis, y0, y1);
  const out: string[] = [`<g class="chart" data-chart="${chart}">`];
  out.push(`<text x="${x0}" y="${top + 20}" class="title">${esc(title)}</text>`);
  out.push(`<text x="${x0}" y="${top + 36}" class="subtitle">${esc(subtitle)}</text>`);
  out.push(`<rect x="${x0}" y="${y1}" width="${x1 - x0}" height="${y0 - y1}" class="plot"/>`);
  for (const t of yAxis.ticks) {
    const y = num(sy(t.at));
    out.push(`<line x1="${x0}" x2="${x1}" y1="${y}" y2="${y}" class="grid"/><text x="${x0 - 6}" y="${y}" class="ytick">${esc(t.label)}</text>`);
  }
  for (const t of xAxis.ticks) {
    const x = num(sx(t.at));
    out.push(`<line x1="${x}" x2="${x}" y1="${y1}" y2="${y0}" class="grid"/><text x="${x}" y="${y0 + 16}" class="xtick">${esc(t.label)}</text>`);
  }
  out.push(`<text x="${(x0 + x1) / 2}" y="${y0 + 38}" class="xtitle">${esc(xAxis.title)}</text>`);
  out.push(`<text transform="translate(${x0 - 54} ${(y0 + y1) / 2}) rotate(-90)" class="ytitle">${esc(yAxis.title)}</text>`);
  series.forEach((s, i) => {
    const dash = s.dashed === true ? ' stroke-dasharray="6 4"' : '';
    out.push(`<g class="series" data-chart="${chart}" data-series="${esc(s.name)}">`);
    const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (s.steps === true) {
      const d = pts.map((p, j) => `${j === 0 ? 'M' : 'L'}${num(sx(p.x))},${num(sy(p.y))}`).join(' ');
      if (d !== '') out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"${dash}><title>${esc(s.name)}</title></path>`);
    } else {
      if (pts.length > 1) out.push(`<polyline points="${pts.map((p) => `${num(sx(p.x))},${num(sy(p.y))}`).join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
      for (const p of pts) out.push(`<circle cx="${num(sx(p.x))}" cy="${num(sy(p.y))}" r="3.2" fill="${s.dashed === true ? '#fff' : s.color}" stroke="${s.color}" stroke-width="1.5"><title>${esc(`${s.name}: ${p.label}`)}</title></circle>`);
    }
    out.push('</g>');
    const ly = y1 + 8 + i * 18;
    out.push(
      `<line x1="${x1 + 16}" x2="${x1 + 44}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2.5"${dash}/><text x="${x1 + 50}" y="${ly}" class="legend">${esc(s.legend ?? s.name)}</text>`,
    );
  });
  out.push('</g>');
  return out.join('\n');
}

function latencyBySize(result: FsyncBenchResult, top: number): string {
  const sizes = result.settings.sizesBytes;
  const series: Series[] = [];
  const all: number[] = [];
  for (const file of [FileKinds.PREWRITTEN, FileKinds.GROWING]) {
    for (const method of [...Object.values(SyncMethods), ...(file === FileKinds.PREWRITTEN ? [PLAIN_WRITE] : [])]) {
      const rows = sizes.map((b) => result.methods.rows.find((r) => r.method === method && r.file === file && r.bytes === b));
      const points = rows.flatMap((r, i) => (r?.latency === undefined ? [] : [{ x: i, y: r.latency.p50Us, label: `${formatBytes(r.bytes)} p50 ${formatUs(r.latency.p50Us)} µs, p99 ${formatUs(r.latency.p99Us)} µs, ${formatCount(r.latency.opsPerS)} ops/s` }]));
      if (points.length === 0) continue;
      all.push(...points.map((p) => p.y));
      series.push({ name: `${method} · ${file}`, color: methodColors[method] ?? '#000', dashed: file === FileKinds.GROWING, points });
    }
  }
  const xAxis: Axis = { kind: 'linear', min: -0.3, max: sizes.length - 0.7, ticks: sizes.map((b, i) => ({ at: i, label: formatBytes(b) })), title: 'bytes per write' };
  return panel(top, 'Sync latency by method and write size (p50)', 'one write made durable; solid: pre-written file, dashed: growing file, grey: plain write without a sync', SvgCharts.LATENCY_BY_SIZE, xAxis, logAxis(all, 'p50 latency (log)', shortUs), series);
}

function groupCommit(result: FsyncBenchResult, top: number): string {
  const writers = result.settings.writerCounts;
  const series: Series[] = [];
  const all: number[] = [];
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
  result.settings.recordBytes.forEach((bytes, k) => {
    const cells = writers.map((w) => result.groupCommit.find((g) => g.writers === w && g.recordBytes === bytes));
    const color = colors[k % colors.length] ?? '#000';
    const wal = cells.flatMap((g, i) => (g === undefined ? [] : [{ x: i, y: g.appendsPerS, label: `${g.writers} writers: ${formatCount(g.appendsPerS)} appends/s, batch ${g.averageBatch.toFixed(1)}, p99 ${formatUs(g.latency.p99Us)} µs` }]));
    const limit = cells.flatMap((g, i) => (g?.limit === undefined ? [] : [{ x: i, y: g.limit.appendsPerS, label: `${g.writers} writers: limit ${formatCount(g.limit.appendsPerS)}/s${g.limit.extrapolated ? ' (extrapolated)' : ''}, reached ${((g.fractionOfLimit ?? 0) * 100).toFixed(0)} %` }]));
    all.push(...wal.map((p) => p.y), ...limit.map((p) => p.y));
    series.push({ name: `tidemark Wal · ${formatBytes(bytes)}`, color, points: wal });
    series.push({ name: `disk limit · ${formatBytes(bytes)}`, color, dashed: true, points: limit });
  });
  const xAxis: Axis = { kind: 'linear', min: -0.3, max: writers.length - 0.7, ticks: writers.map((w, i) => ({ at: i, label: String(w) })), title: 'concurrent writers (each awaits its append)' };
  return panel(top, 'Group commit: durable appends/s against the disk limit', 'dashed: avg batch ÷ mean write+fdatasync time of one batch\'s bytes (step 1, pre-written; beyond 1 MiB at the best synced bandwidth)', SvgCharts.GROUP_COMMIT, xAxis, logAxis(all, 'durable appends/s (log)', shortCount), series);
}

function distribution(result: FsyncBenchResult, top: number): string {
  const bytes = result.settings.sizesBytes.includes(4096) ? 4096 : (result.settings.sizesBytes[0] ?? 4096);
  const rows = result.methods.rows.filter((r): r is MethodRow & { latency: NonNullable<MethodRow['latency']> } => r.method !== PLAIN_WRITE && r.file === FileKinds.PREWRITTEN && r.bytes === bytes && r.latency !== undefined);
  const series: Series[] = [];
  const xs: number[] = [];
  let yMax = 0;
  for (const r of rows) {
    const total = r.latency.count;
    const points: Series['points'] = [];
    r.latency.histogram.forEach((count, i) => {
      const lo = histogramBoundsUs[i] ?? 1;
      const hi = histogramBoundsUs[i + 1] ?? lo * 2 ** 0.25;
      const share = (100 * count) / total;
      yMax = Math.max(yMax, share);
      if (count > 0) xs.push(lo, hi);
      points.push({ x: lo, y: share, label: '' }, { x: hi, y: share, label: '' });
    });
    // Start and end on the axis so each distribution reads as a closed outline.
    const first = points[0];
    const last = points[points.length - 1];
    if (first !== undefined && last !== undefined) points.unshift({ x: first.x, y: 0, label: '' }), points.push({ x: last.x, y: 0, label: '' });
    const trimmed = points.filter((p, i) => p.y > 0 || (points[i - 1]?.y ?? 0) > 0 || (points[i + 1]?.y ?? 0) > 0);
    series.push({ name: r.method, legend: `${r.method} · p50 ${formatUs(r.latency.p50Us)} µs`, color: methodColors[r.method] ?? '#000', points: trimmed, steps: true });
  }
  const xAxis = logAxis(xs, 'latency per operation (log)', shortUs);
  const step = yMax > 40 ? 20 : yMax > 20 ? 10 : yMax > 8 ? 5 : 2;
  const yTop = Math.max(step, Math.ceil(yMax / step) * step);
  const yAxis: Axis = { kind: 'linear', min: 0, max: yTop, ticks: Array.from({ length: yTop / step + 1 }, (_, i) => ({ at: i * step, label: `${i * step} %` })), title: 'share of operations' };
  return panel(top, `Latency distribution at ${formatBytes(bytes)}, pre-written file`, 'share of timed operations per latency bucket (4 buckets per doubling of latency), every sync method', SvgCharts.DISTRIBUTION, xAxis, yAxis, series);
}

/** The SVG document. */
export function renderFsyncSvg(result: FsyncBenchResult): string {
  const height = 3 * panelHeight + 56;
  const header = `tidemark bench fsync${result.settings.quick ? ' --quick' : ''} · ${result.fs.fsType ?? '?'} on ${result.fs.source ?? '?'}${result.fs.writeCache === undefined ? '' : ` (${result.fs.writeCache} cache)`} · ${result.startedAt.slice(0, 16).replace('T', ' ')} UTC · honesty check: ${result.honesty.verdict}`;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`,
    '<style>.title{font-size:16px;font-weight:bold}.subtitle{font-size:11.5px;fill:#555}.plot{fill:#fcfcfc;stroke:#999}.grid{stroke:#e3e3e3}.xtick{font-size:11px;text-anchor:middle}.ytick{font-size:11px;text-anchor:end;dominant-baseline:middle}.xtitle,.ytitle{font-size:12px;text-anchor:middle;fill:#333}.legend{font-size:11.5px;dominant-baseline:middle}.header{font-size:12px;fill:#333}</style>',
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${margin.left}" y="24" class="header">${esc(header)}</text>`,
    latencyBySize(result, 40),
    groupCommit(result, 40 + panelHeight),
    distribution(result, 40 + 2 * panelHeight),
    '</svg>',
    '',
  ].join('\n');
}
