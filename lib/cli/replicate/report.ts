/**
 * The replication benchmark's result document (`--json`), its terminal tables and its
 * charts (`--svg`, hand-written SVG: throughput vs clients, latency distribution, the
 * write-rate timeline around a leader kill). Pure functions of the result; node:* only.
 */
import { CHART_PERCENTILES, type FailoverResult } from './meter';

export interface CellResult {
  readonly contestant: string;
  readonly valueBytes: number;
  readonly clients: number;
  readonly slices: number;
  readonly seconds: number;
  readonly commits: number;
  readonly commitsPerS: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly p999Us: number;
  /** [percentile, µs] at {@link CHART_PERCENTILES}. */
  readonly percentiles: readonly (readonly [number, number])[];
  readonly clientCpuPct: number;
  readonly nodeCpuPct: Readonly<Record<string, number>>;
  readonly errors: number;
}

export interface FailoverSummary {
  readonly contestant: string;
  readonly runs: readonly FailoverResult[];
  readonly writeGapMs: { readonly median: number; readonly worst: number };
  readonly electedAfterMs: { readonly median: number; readonly worst: number };
  readonly errors: { readonly median: number; readonly worst: number };
}

export interface MemoryResult {
  readonly contestant: string;
  readonly commands: number;
  readonly seconds: number;
  readonly rssBeforeMb: Readonly<Record<string, number>>;
  readonly rssAfterMb: Readonly<Record<string, number>>;
  readonly dataBytes: Readonly<Record<string, number>>;
}

export interface ContestantInfo {
  readonly name: string;
  readonly measured: boolean;
  /** Why it was not measured. */
  readonly reason?: string;
  readonly description: string;
  readonly version?: string;
  /** Heartbeat / election settings, as passed. */
  readonly timeouts: string;
}

export interface TargetCheck {
  readonly target: string;
  readonly value: string;
  readonly met: boolean | null;
}

export interface BenchResult {
  readonly version: 1;
  readonly mode: 'quick' | 'full';
  readonly machine: Readonly<Record<string, unknown>>;
  readonly histogram: string;
  readonly contestants: readonly ContestantInfo[];
  readonly cells: readonly CellResult[];
  readonly failover: readonly FailoverSummary[];
  readonly memory: readonly MemoryResult[];
  readonly targets: readonly TargetCheck[];
}

const ms = (us: number) => (Number.isNaN(us) ? '-' : (us / 1000).toFixed(us < 10_000 ? 2 : 1));
const pad = (s: string, n: number) => s.padStart(n);
const mb = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(0));

/** Best commits/s among the anchors (etcd, ZooKeeper) in a cell, or NaN. */
function anchorBest(r: BenchResult, valueBytes: number, clients: number): { name: string; value: number } {
  let best = { name: '-', value: NaN };
  for (const c of r.cells) {
    if (c.valueBytes !== valueBytes || c.clients !== clients || !(c.contestant === 'etcd' || c.contestant === 'zookeeper')) continue;
    if (Number.isNaN(best.value) || c.commitsPerS > best.value) best = { name: c.contestant, value: c.commitsPerS };
  }
  return best;
}

/** Checks the issue's targets against a result. */
export function checkTargets(r: Omit<BenchResult, 'targets'>): TargetCheck[] {
  const out: TargetCheck[] = [];
  const full = { ...r, targets: [] } as BenchResult;
  const cell = (name: string, b: number, c: number) => r.cells.find((x) => x.contestant === name && x.valueBytes === b && x.clients === c);
  for (const b of [...new Set(r.cells.map((c) => c.valueBytes))]) {
    for (const c of [16, 256]) {
      const t = cell('tidemark', b, c);
      const a = anchorBest(full, b, c);
      if (t === undefined) continue;
      const ratio = t.commitsPerS / a.value;
      out.push({ target: `tidemark >= 5x best anchor, ${b} B x ${c}`, value: Number.isNaN(ratio) ? 'no anchor measured' : `${ratio.toFixed(2)}x ${a.name}`, met: Number.isNaN(ratio) ? null : ratio >= 5 });
    }
  }
  const one = cell('tidemark', 128, 1);
  if (one !== undefined) out.push({ target: 'tidemark p50 < 0.5 ms at 1 client (128 B)', value: `${ms(one.p50Us)} ms`, met: one.p50Us < 500 });
  const fo = r.failover.find((f) => f.contestant === 'tidemark');
  if (fo !== undefined) {
    out.push({ target: 'tidemark failover gap < 250 ms (median)', value: `${fo.writeGapMs.median} ms (worst ${fo.writeGapMs.worst})`, met: fo.writeGapMs.median < 250 });
    const anchors = r.failover.filter((f) => f.contestant !== 'tidemark' && !Number.isNaN(f.writeGapMs.median));
    if (anchors.length > 0) {
      const best = anchors.reduce((a, b) => (a.writeGapMs.median <= b.writeGapMs.median ? a : b));
      out.push({ target: 'tidemark failover gap < half the best anchor', value: `${fo.writeGapMs.median} vs ${best.contestant} ${best.writeGapMs.median} ms`, met: fo.writeGapMs.median < best.writeGapMs.median / 2 });
    }
  }
  const mem = r.memory.find((m) => m.contestant === 'tidemark');
  if (mem !== undefined) {
    const after = Object.values(mem.rssAfterMb);
    const grew = Object.keys(mem.rssAfterMb).map((k) => (mem.rssAfterMb[k] ?? NaN) - (mem.rssBeforeMb[k] ?? NaN));
    out.push({ target: 'tidemark node RSS < 100 MB after the long run', value: `${Math.max(...after).toFixed(0)} MB max (grew ${Math.max(...grew).toFixed(0)} MB)`, met: Math.max(...after) < 100 });
  }
  return out;
}

/** The terminal report. */
export function renderTables(r: BenchResult): string {
  const lines: string[] = [];
  const m = r.machine;
  lines.push(`machine: ${String(m.cpus)} x ${String(m.model)}, ${String(m.memGb)} GB, ${String(m.kernel)}, node ${String(m.node)}; load average at start ${JSON.stringify(m.loadavgStart)}, at end ${JSON.stringify(m.loadavgEnd)}`);
  lines.push(`mode ${r.mode}; latencies: ${r.histogram}`);
  lines.push('');
  lines.push('contestants (heartbeat / election settings):');
  for (const c of r.contestants) lines.push(`  ${c.name.padEnd(10)} ${c.measured ? '' : `NOT MEASURED (${c.reason ?? '?'}) `}${c.description}${c.version === undefined ? '' : ` [${c.version}]`}; ${c.timeouts}`);
  lines.push('');
  lines.push(`${'contestant'.padEnd(10)} ${pad('bytes', 5)} ${pad('cl', 3)} ${pad('commits/s', 10)} ${pad('p50 ms', 7)} ${pad('p99 ms', 7)} ${pad('p99.9', 7)} ${pad('cli%', 5)}  nodes CPU %`);
  for (const c of r.cells) {
    lines.push(`${c.contestant.padEnd(10)} ${pad(String(c.valueBytes), 5)} ${pad(String(c.clients), 3)} ${pad(String(c.commitsPerS), 10)} ${pad(ms(c.p50Us), 7)} ${pad(ms(c.p99Us), 7)} ${pad(ms(c.p999Us), 7)} ${pad(String(c.clientCpuPct), 5)}  ${Object.entries(c.nodeCpuPct).map(([k, v]) => `${k} ${v}`).join(' ')}${c.errors > 0 ? `  errors ${c.errors}` : ''}`);
  }
  if (r.failover.length > 0) {
    lines.push('');
    lines.push(`failover (16 clients, SIGKILL the leader): ${'gap median/worst ms'.padStart(20)} ${'new leader median/worst ms'.padStart(27)} ${'errors med/worst'.padStart(17)}  runs`);
    for (const f of r.failover) {
      lines.push(`  ${f.contestant.padEnd(40)} ${pad(`${f.writeGapMs.median} / ${f.writeGapMs.worst}`, 20)} ${pad(`${f.electedAfterMs.median} / ${f.electedAfterMs.worst}`, 27)} ${pad(`${f.errors.median} / ${f.errors.worst}`, 17)}  ${f.runs.length}`);
    }
  }
  if (r.memory.length > 0) {
    lines.push('');
    lines.push('memory and disk after the long run (128 B writes):');
    for (const x of r.memory) {
      const ids = Object.keys(x.rssAfterMb);
      lines.push(`  ${x.contestant.padEnd(10)} ${x.commands} commands in ${x.seconds} s: RSS ${ids.map((id) => `${id} ${mb(x.rssBeforeMb[id] ?? NaN)}->${mb(x.rssAfterMb[id] ?? NaN)} MB`).join(', ')}; data ${ids.map((id) => `${id} ${((x.dataBytes[id] ?? 0) / 1048576).toFixed(1)} MB`).join(', ')}`);
    }
  }
  if (r.targets.length > 0) {
    lines.push('');
    lines.push('targets:');
    for (const t of r.targets) lines.push(`  [${t.met === null ? ' ? ' : t.met ? 'met' : 'MISSED'}] ${t.target}: ${t.value}`);
  }
  return lines.join('\n') + '\n';
}

// ---- SVG ----

export const COLORS: Readonly<Record<string, string>> = { tidemark: '#1f77b4', etcd: '#d62728', zookeeper: '#2ca02c', 'wal-floor': '#7f7f7f' };
const color = (name: string) => COLORS[name] ?? '#9467bd';
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

interface Series {
  readonly name: string;
  readonly color: string;
  readonly dashed?: boolean;
  readonly points: readonly (readonly [number, number])[];
}

interface ChartSpec {
  readonly id: string;
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  /** Ticks in data units with labels; the x scale is linear between the first and last tick. */
  readonly xTicks: readonly (readonly [number, string])[];
  readonly yLog: boolean;
  readonly series: readonly Series[];
  readonly marks?: readonly (readonly [number, string])[];
  readonly legendWidth?: number;
}

function fmtNum(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(2));
}

function chart(s: ChartSpec): string {
  const L = 70;
  const R = s.legendWidth ?? 150;
  const T = 30;
  const B = 45;
  const pw = s.w - L - R;
  const ph = s.h - T - B;
  const x0 = s.xTicks[0]?.[0] ?? 0;
  const x1 = s.xTicks[s.xTicks.length - 1]?.[0] ?? 1;
  const sx = (v: number) => L + ((v - x0) / (x1 - x0 || 1)) * pw;
  const ys = s.series.flatMap((se) => se.points.map((p) => p[1])).filter((v) => Number.isFinite(v) && (!s.yLog || v > 0));
  let yTicks: number[];
  let sy: (v: number) => number;
  if (s.yLog) {
    const lo = Math.floor(Math.log10(Math.min(...ys, 1e9) || 1));
    const hi = Math.ceil(Math.log10(Math.max(...ys, 1e-9) || 10));
    const a = Number.isFinite(lo) ? lo : 0;
    const b = Number.isFinite(hi) && hi > a ? hi : a + 1;
    yTicks = Array.from({ length: b - a + 1 }, (_, i) => 10 ** (a + i));
    sy = (v: number) => T + ph - ((Math.log10(Math.max(v, 10 ** a)) - a) / (b - a)) * ph;
  } else {
    const max = Math.max(...ys, 1);
    const step = 10 ** Math.floor(Math.log10(max));
    const top = Math.ceil(max / step) * step;
    yTicks = Array.from({ length: Math.round(top / step) + 1 }, (_, i) => i * step);
    sy = (v: number) => T + ph - (v / top) * ph;
  }
  const out: string[] = [`<g id="${esc(s.id)}" transform="translate(${s.x},${s.y})">`];
  out.push(`<text x="${L}" y="18" font-size="15" font-weight="bold">${esc(s.title)}</text>`);
  out.push(`<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="#fafafa" stroke="#999"/>`);
  for (const t of yTicks) {
    const y = sy(t).toFixed(1);
    out.push(`<line x1="${L}" x2="${L + pw}" y1="${y}" y2="${y}" stroke="#e3e3e3"/><text x="${L - 6}" y="${y}" font-size="11" text-anchor="end" dominant-baseline="middle">${fmtNum(t)}</text>`);
  }
  for (const [v, label] of s.xTicks) {
    const x = sx(v).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${T}" y2="${T + ph}" stroke="#e3e3e3"/><text x="${x}" y="${T + ph + 15}" font-size="11" text-anchor="middle">${esc(label)}</text>`);
  }
  for (const [v, label] of s.marks ?? []) {
    const x = sx(v).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${T}" y2="${T + ph}" stroke="#000" stroke-dasharray="4 3"/><text x="${+x + 4}" y="${T + 12}" font-size="11">${esc(label)}</text>`);
  }
  out.push(`<text x="${L + pw / 2}" y="${s.h - 6}" font-size="12" text-anchor="middle">${esc(s.xLabel)}</text>`);
  out.push(`<text transform="translate(16,${T + ph / 2}) rotate(-90)" font-size="12" text-anchor="middle">${esc(s.yLabel)}</text>`);
  s.series.forEach((se, i) => {
    const pts = se.points.filter((p) => Number.isFinite(p[1]) && (!s.yLog || p[1] > 0));
    if (pts.length > 0) {
      const d = pts.map((p, j) => `${j === 0 ? 'M' : 'L'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ');
      out.push(`<path class="series" data-series="${esc(se.name)}" data-points="${esc(JSON.stringify(pts))}" d="${d}" fill="none" stroke="${se.color}" stroke-width="2"${se.dashed === true ? ' stroke-dasharray="6 4"' : ''}/>`);
      if (pts.length <= 12) for (const p of pts) out.push(`<circle cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="3" fill="${se.color}"/>`);
    }
    const ly = T + 10 + i * 18;
    out.push(`<line x1="${L + pw + 10}" x2="${L + pw + 30}" y1="${ly}" y2="${ly}" stroke="${se.color}" stroke-width="2"${se.dashed === true ? ' stroke-dasharray="6 4"' : ''}/><text x="${L + pw + 35}" y="${ly}" font-size="11" dominant-baseline="middle">${esc(se.name)}</text>`);
  });
  out.push('</g>');
  return out.join('\n');
}

const nines = (p: number) => (p >= 100 ? 5 : -Math.log10(1 - p / 100));

/** The three charts as one SVG document. */
export function renderSvg(r: BenchResult): string {
  const W = 1200;
  const parts: string[] = [];
  const names = [...new Set(r.cells.map((c) => c.contestant))];
  const sizes = [...new Set(r.cells.map((c) => c.valueBytes))].sort((a, b) => a - b);
  const clients = [...new Set(r.cells.map((c) => c.clients))].sort((a, b) => a - b);
  let y = 60;
  const cw = W / 2;
  sizes.forEach((b, i) => {
    parts.push(
      chart({
        id: `throughput-${b}`,
        x: i * cw,
        y,
        w: cw,
        h: 340,
        title: `Throughput vs clients, ${b} B commands`,
        xLabel: 'concurrent closed-loop clients',
        yLabel: 'commits/s (log)',
        xTicks: clients.map((c, j) => [j, String(c)] as const),
        yLog: true,
        series: names.map((n) => ({ name: n, color: color(n), dashed: n === 'wal-floor', points: clients.map((c, j) => [j, r.cells.find((x) => x.contestant === n && x.valueBytes === b && x.clients === c)?.commitsPerS ?? NaN] as const) })),
      }),
    );
  });
  y += 370;
  const latClients = clients.filter((c) => c === 1 || c === 16);
  const latCharts = sizes.flatMap((b) => latClients.map((c) => [b, c] as const)).slice(0, 4);
  latCharts.forEach(([b, c], i) => {
    parts.push(
      chart({
        id: `latency-${b}-${c}`,
        x: (i % 2) * cw,
        y: y + Math.floor(i / 2) * 340,
        w: cw,
        h: 320,
        title: `Latency distribution, ${b} B x ${c} client${c === 1 ? '' : 's'}`,
        xLabel: 'percentile',
        yLabel: 'latency ms (log)',
        xTicks: [[0, '0'], [1, '90'], [2, '99'], [3, '99.9'], [4, '99.99']],
        yLog: true,
        series: names.map((n) => {
          const cell = r.cells.find((x) => x.contestant === n && x.valueBytes === b && x.clients === c);
          return { name: n, color: color(n), dashed: n === 'wal-floor', points: (cell?.percentiles ?? []).filter(([p]) => CHART_PERCENTILES.includes(p as never)).map(([p, us]) => [nines(p), us / 1000] as const) };
        }),
      }),
    );
  });
  y += Math.ceil(latCharts.length / 2) * 340 + 20;
  if (r.failover.length > 0) {
    const series: Series[] = r.failover.map((f) => {
      const sorted = [...f.runs].sort((a, b) => a.writeGapMs - b.writeGapMs);
      const run = sorted[sorted.length >> 1];
      const t = run?.timeline;
      return { name: `${f.contestant} (gap ${run?.writeGapMs ?? '-'} ms)`, color: color(f.contestant), points: t === undefined ? [] : t.rates.map((v, i) => [t.fromMs + (i + 0.5) * t.bucketMs, v] as const) };
    });
    const t0 = r.failover[0]?.runs[0]?.timeline;
    const from = t0?.fromMs ?? -1000;
    const to = from + (t0?.rates.length ?? 80) * (t0?.bucketMs ?? 50);
    const ticks: [number, string][] = [];
    for (let v = from; v <= to; v += 500) ticks.push([v, `${v}`]);
    parts.push(chart({ id: 'failover', x: 0, y, w: W, h: 380, title: 'Write rate around a SIGKILL of the leader (16 clients, median-gap run, 50 ms buckets)', xLabel: 'ms relative to the kill', yLabel: 'acknowledged writes/s', xTicks: ticks, yLog: false, series, marks: [[0, 'SIGKILL leader']], legendWidth: 230 }));
    y += 400;
  }
  const m = r.machine;
  const head = `<text x="20" y="28" font-size="20" font-weight="bold">tidemark replication benchmark (${r.mode})</text><text x="20" y="48" font-size="12">${esc(`${String(m.cpus)} x ${String(m.model)}, load average ${JSON.stringify(m.loadavgStart)} at start; ${String(m.date)}`)}</text>`;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="#fff"/>\n${head}\n${parts.join('\n')}\n</svg>\n`;
}
