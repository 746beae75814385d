/**
 * Prometheus text exposition format (version 0.0.4), written by hand: the node's
 * metrics are a handful of counters, gauges and histograms, so a dependency
 * (prom-client) would buy nothing here. {@link renderPrometheus} formats metric
 * families; {@link serveMetrics} serves them on `GET /metrics`.
 *
 * @packageDocumentation
 */
import * as http from 'node:http';

/** One sample's labels. */
export type Labels = Readonly<Record<string, string>>;

/** A histogram sample: cumulative counts per upper bound (`le`), as Prometheus wants them. */
export interface HistogramSample {
  readonly labels?: Labels;
  /** Upper bounds in ascending order and the count of observations ≤ each (cumulative). */
  readonly buckets: ReadonlyArray<{ readonly le: number; readonly count: number }>;
  readonly count: number;
  readonly sum: number;
}

/** One metric family. */
export type MetricFamily =
  | { readonly name: string; readonly help: string; readonly type: 'counter' | 'gauge'; readonly samples: ReadonlyArray<{ readonly labels?: Labels; readonly value: number }> }
  | { readonly name: string; readonly help: string; readonly type: 'histogram'; readonly samples: readonly HistogramSample[] };

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function formatLabels(labels: Labels | undefined, extra?: [string, string]): string {
  const pairs = Object.entries(labels ?? {});
  if (extra !== undefined) pairs.push(extra);
  if (pairs.length === 0) return '';
  for (const [k] of pairs) if (!LABEL_RE.test(k)) throw new Error(`bad Prometheus label name '${k}'`);
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
}

/** The text exposition of `families` (ends with a newline). */
export function renderPrometheus(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    if (!NAME_RE.test(f.name)) throw new Error(`bad Prometheus metric name '${f.name}'`);
    out.push(`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`);
    out.push(`# TYPE ${f.name} ${f.type}`);
    if (f.type === 'histogram') {
      for (const s of f.samples) {
        for (const b of s.buckets) out.push(`${f.name}_bucket${formatLabels(s.labels, ['le', formatValue(b.le)])} ${formatValue(b.count)}`);
        const last = s.buckets[s.buckets.length - 1];
        if (last === undefined || last.le !== Infinity) out.push(`${f.name}_bucket${formatLabels(s.labels, ['le', '+Inf'])} ${formatValue(s.count)}`);
        out.push(`${f.name}_sum${formatLabels(s.labels)} ${formatValue(s.sum)}`);
        out.push(`${f.name}_count${formatLabels(s.labels)} ${formatValue(s.count)}`);
      }
    } else {
      for (const s of f.samples) out.push(`${f.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
    }
  }
  return out.join('\n') + '\n';
}

/**
 * A fixed-bucket latency histogram (seconds) to feed {@link HistogramSample}s from
 * observations in milliseconds. Bounded memory: one counter per bucket.
 */
export class LatencyHistogram {
  /** Upper bounds in seconds: 50 µs .. 10 s. */
  static readonly BOUNDS_S = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  private readonly counts = new Array<number>(LatencyHistogram.BOUNDS_S.length).fill(0);
  private n = 0;
  private total = 0;

  /** Records one observation of `ms` milliseconds. */
  observe(ms: number): void {
    const s = ms / 1000;
    this.n++;
    this.total += s;
    const i = LatencyHistogram.BOUNDS_S.findIndex((b) => s <= b);
    if (i >= 0) this.counts[i] = (this.counts[i] ?? 0) + 1;
  }

  /** The cumulative sample. */
  sample(labels?: Labels): HistogramSample {
    let acc = 0;
    const buckets = LatencyHistogram.BOUNDS_S.map((le, i) => ({ le, count: (acc += this.counts[i] ?? 0) }));
    return { ...(labels === undefined ? {} : { labels }), buckets, count: this.n, sum: this.total };
  }
}

/** Serves `render()` on `GET /metrics` (and `/`) at `host:port`; resolves once listening. */
export async function serveMetrics(host: string, port: number, render: () => string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /metrics\n');
      return;
    }
    let body: string;
    try {
      body = render();
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err instanceof Error ? err.message : String(err)}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/**
 * The value of one sample in Prometheus text (`name` or `name{labels}` exactly as
 * rendered, e.g. `tidemark_role{role="leader"}`), or undefined when absent.
 */
export function sampleValue(text: string, sample: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(sample + ' ')) return Number(line.slice(sample.length + 1));
  }
  return undefined;
}
