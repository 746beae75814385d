/**
 * `tidemark bench fsync`: the --quick run end to end (JSON and SVG parsed and checked
 * against each other), the honesty check on tmpfs, usage errors, and Ctrl-C cleanup; plus
 * the pure parts (honesty rules, derived limit, reading, progress line) on made-up rows.
 * No timing assertions: only structure, consistency and cleanup.
 */
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runTs, spawnTs } from './helpers';
import {
  checkHonesty,
  deriveLimit,
  doesNotFlushWarning,
  FileKinds,
  interpretFsync,
  PLAIN_WRITE,
  progressLine,
  scratchPrefix,
  SvgCharts,
  SyncMethods,
  syncTimeUs,
  Verdicts,
  type FsyncBenchResult,
  type MethodRow,
} from '../lib/cli/fsync';
import type { LatencySummary } from '../lib/cli/fsync/stats';

const main = path.join(__dirname, '..', 'lib', 'cli', 'main.ts');
const sizes = [512, 4096, 16384, 65536, 1048576];

function tempDir(base = os.tmpdir()): string {
  return fs.mkdtempSync(path.join(base, 'tidemark-fsync-test-'));
}

// ---------------------------------------------------------------------------
// A small XML well-formedness parser (the SVG must open in a browser).
// ---------------------------------------------------------------------------

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
}

const badEntity = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/;

/** Parses `text` as XML and returns the root element; throws on anything malformed. */
function parseXml(text: string): XmlElement {
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const fail = (what: string): never => {
    throw new Error(`malformed XML at ${i}: ${what}: ${JSON.stringify(text.slice(i, i + 60))}`);
  };
  if (text.startsWith('<?xml')) {
    i = text.indexOf('?>');
    if (i < 0) fail('unterminated prolog');
    i += 2;
  }
  while (i < text.length) {
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i);
      if (end < 0) fail('unterminated comment');
      i = end + 3;
    } else if (text.startsWith('</', i)) {
      const m = /^<\/([A-Za-z_][\w.:-]*)\s*>/.exec(text.slice(i));
      if (m === null) fail('bad end tag');
      const open = stack.pop();
      if (open === undefined || open.name !== m?.[1]) fail(`end tag ${m?.[1]} does not close ${open?.name}`);
      i += m?.[0].length ?? 0;
    } else if (text[i] === '<') {
      const nameMatch = /^<([A-Za-z_][\w.:-]*)/.exec(text.slice(i));
      if (nameMatch === null) fail('bad start tag');
      const el: XmlElement = { name: nameMatch?.[1] ?? '', attrs: {}, children: [] };
      i += nameMatch?.[0].length ?? 0;
      const attr = /\s+([A-Za-z_][\w.:-]*)\s*=\s*"([^"<]*)"/y;
      for (;;) {
        attr.lastIndex = i;
        const a = attr.exec(text);
        if (a === null) break;
        const [, key = '', value = ''] = a;
        if (key in el.attrs) fail(`duplicate attribute ${key}`);
        if (badEntity.test(value)) fail('bad entity in attribute');
        el.attrs[key] = value;
        i = attr.lastIndex;
      }
      const close = /\s*(\/?)>/y;
      close.lastIndex = i;
      const c = close.exec(text);
      if (c === null) fail('unterminated start tag');
      i = close.lastIndex;
      const parent = stack[stack.length - 1];
      if (parent !== undefined) parent.children.push(el);
      else if (root === undefined) root = el;
      else fail('second root element');
      if (c?.[1] !== '/') stack.push(el);
    } else {
      const end = text.indexOf('<', i);
      const chunk = text.slice(i, end < 0 ? text.length : end);
      if (badEntity.test(chunk)) fail('bad entity in text');
      if (stack.length === 0 && chunk.trim() !== '') fail('text outside the root');
      i = end < 0 ? text.length : end;
    }
  }
  if (stack.length > 0) fail(`unclosed ${stack.map((e) => e.name).join(' > ')}`);
  if (root === undefined) return fail('no root element');
  return root;
}

function* walk(el: XmlElement): Generator<XmlElement> {
  yield el;
  for (const c of el.children) yield* walk(c);
}

/** data-chart → data-series → the series element. */
function seriesOf(svg: XmlElement): Map<string, Map<string, XmlElement>> {
  const charts = new Map<string, Map<string, XmlElement>>();
  for (const el of walk(svg)) {
    if (el.attrs.class !== 'series') continue;
    const chart = el.attrs['data-chart'] ?? '';
    const name = el.attrs['data-series'] ?? '';
    const byName = charts.get(chart) ?? new Map<string, XmlElement>();
    expect(byName.has(name), `series ${name} twice in ${chart}`).toBe(false);
    byName.set(name, el);
    charts.set(chart, byName);
  }
  return charts;
}

/** `&amp;` and friends back to text (the parser keeps attribute values escaped). */
function unescape(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
}

// ---------------------------------------------------------------------------
// Checks of a result
// ---------------------------------------------------------------------------

function checkLatency(l: LatencySummary, what: string): void {
  expect(l.count, what).toBeGreaterThanOrEqual(5);
  expect(l.minUs, what).toBeGreaterThan(0);
  expect(l.minUs, what).toBeLessThanOrEqual(l.p50Us);
  expect(l.p50Us, what).toBeLessThanOrEqual(l.p99Us);
  expect(l.p99Us, what).toBeLessThanOrEqual(l.p999Us);
  expect(l.p999Us, what).toBeLessThanOrEqual(l.maxUs);
  expect(l.opsPerS, what).toBeCloseTo(1e6 / l.meanUs, 3);
  expect(l.histogram.reduce((a, b) => a + b, 0), what).toBe(l.count);
}

function checkResult(r: FsyncBenchResult): void {
  expect(r.tool).toBe('tidemark bench fsync');
  expect(r.settings.quick).toBe(true);
  expect(r.machine.kernel.length).toBeGreaterThan(0);
  expect(r.machine.cpus).toBeGreaterThan(0);
  expect(r.fs.fsType).toMatch(/^[a-z0-9.]+$/);
  const rows = r.methods.rows;
  for (const bytes of sizes) {
    const plain = rows.filter((x) => x.method === PLAIN_WRITE && x.bytes === bytes);
    expect(plain.length).toBe(1);
    expect(plain[0]?.syncsIssued).toBe(0);
    for (const file of Object.values(FileKinds)) {
      const here = rows.filter((x) => x.bytes === bytes && x.file === file && x.method !== PLAIN_WRITE);
      expect(here.map((x) => x.method).sort()).toEqual(Object.values(SyncMethods).sort());
      for (const row of here) {
        const what = `${row.method} ${row.file} ${row.bytes}`;
        if (row.latency === undefined) {
          expect(row.notMeasured, what).toMatch(/\S/);
          expect(row.winner, what).toBe(false);
        } else {
          checkLatency(row.latency, what);
          // Every timed operation issued exactly one sync, plus the untimed warm-ups of each pass.
          expect(row.syncsIssued, what).toBe(row.latency.count + r.settings.passes * r.settings.warmupPerPass);
        }
      }
      // write+fdatasync is measurable everywhere.
      expect(here.find((x) => x.method === SyncMethods.WRITE_FDATASYNC)?.latency, `write+fdatasync ${file} ${bytes}`).toBeDefined();
      const winners = here.filter((x) => x.winner);
      expect(winners.length).toBe(1);
      const best = Math.max(...here.map((x) => x.latency?.opsPerS ?? 0));
      expect(winners[0]?.latency?.opsPerS).toBe(best);
    }
  }
  expect(r.groupCommit.length).toBe(12);
  for (const bytes of [128, 4096]) {
    for (const writers of [1, 4, 16, 64, 256, 1024]) {
      const g = r.groupCommit.find((x) => x.recordBytes === bytes && x.writers === writers);
      const what = `${bytes} B × ${writers}`;
      expect(g, what).toBeDefined();
      if (g === undefined) continue;
      expect(g.appends, what).toBeGreaterThan(0);
      expect(g.syncs, what).toBeGreaterThan(0);
      expect(g.syncs, what).toBeLessThanOrEqual(g.appends);
      // Closed-loop writers: a batch holds at most one append per writer.
      expect(g.averageBatch, what).toBeGreaterThanOrEqual(1);
      expect(g.averageBatch, what).toBeLessThanOrEqual(writers);
      expect(g.bytesPerBatch, what).toBeGreaterThanOrEqual(g.averageBatch * bytes);
      expect(g.appendsPerS, what).toBeCloseTo(g.appends / g.seconds, 6);
      expect(g.latency.count, what).toBe(g.appends);
      expect(g.limit?.appendsPerS, what).toBeGreaterThan(0);
      expect(g.fractionOfLimit, what).toBeCloseTo(g.appendsPerS / (g.limit?.appendsPerS ?? Number.NaN), 6);
    }
  }
  const h = r.honesty;
  expect(Object.values(Verdicts)).toContain(h.verdict);
  expect(h.syncsIssued.methods).toBe(rows.reduce((n, x) => n + x.syncsIssued, 0));
  expect(h.syncsIssued.wal).toBe(r.groupCommit.reduce((n, g) => n + g.syncs, 0));
  expect(h.syncsIssued.total).toBe(h.syncsIssued.methods + h.syncsIssued.wal);
  expect(h.syncVsWrite.length).toBe(sizes.length);
  if (r.fs.blockDevice !== undefined && h.device?.flushes !== undefined) {
    for (const row of rows) expect(row.deviceFlushes, `${row.method} ${row.file} ${row.bytes}`).toBeGreaterThanOrEqual(0);
  }
}

describe('tidemark bench fsync --quick', () => {
  it.concurrent('writes valid JSON and an SVG whose series match it, prints the tables, and leaves nothing behind', async () => {
    const dir = tempDir();
    const out = tempDir();
    try {
      const jsonFile = path.join(out, 'r.json');
      const svgFile = path.join(out, 'r.svg');
      const run = await runTs(main, ['bench', 'fsync', '--quick', '--dir', dir, '--json', jsonFile, '--svg', svgFile], 150_000);
      expect(run.stderr).toBe('');
      expect(run.exit.code).toBe(0);
      const stdout = run.lines.join('\n');
      expect(stdout).not.toContain('\x1b['); // no progress line when stdout is not a terminal
      expect(stdout).toContain('| size | file | method | ops/s | p50 µs | p99 µs | p99.9 µs | syncs | dev flushes |');
      expect(stdout).toContain('| record | writers | appends/s |');
      expect(stdout).toMatch(/^Verdict: /m);
      expect(fs.readdirSync(dir)).toEqual([]);

      const result = JSON.parse(fs.readFileSync(jsonFile, 'utf8')) as FsyncBenchResult;
      checkResult(result);
      // The table shows the same numbers as the JSON.
      const one = result.groupCommit.find((g) => g.writers === 1 && g.recordBytes === 128);
      expect(stdout).toContain(`| 128 B | 1 | ${Math.round(one?.appendsPerS ?? 0).toLocaleString('en-US')} |`);

      const svg = parseXml(fs.readFileSync(svgFile, 'utf8'));
      expect(svg.name).toBe('svg');
      const charts = seriesOf(svg);
      expect([...charts.keys()].sort()).toEqual(Object.values(SvgCharts).sort());
      const measured = new Set(result.methods.rows.filter((x) => x.latency !== undefined).map((x) => `${x.method} · ${x.file}`));
      expect([...(charts.get(SvgCharts.LATENCY_BY_SIZE)?.keys() ?? [])].map(unescape).sort()).toEqual([...measured].sort());
      expect(measured).toContain(`${SyncMethods.WRITE_FDATASYNC} · ${FileKinds.PREWRITTEN}`);
      const group = charts.get(SvgCharts.GROUP_COMMIT);
      expect([...(group?.keys() ?? [])].sort()).toEqual(['disk limit · 128 B', 'disk limit · 4 KiB', 'tidemark Wal · 128 B', 'tidemark Wal · 4 KiB']);
      for (const series of group?.values() ?? []) expect(series.children.filter((c) => c.name === 'circle').length).toBe(6);
      const at4k = result.methods.rows.filter((x) => x.bytes === 4096 && x.file === FileKinds.PREWRITTEN && x.method !== PLAIN_WRITE && x.latency !== undefined).map((x) => x.method);
      expect([...(charts.get(SvgCharts.DISTRIBUTION)?.keys() ?? [])].map(unescape).sort()).toEqual([...at4k].sort());
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(out, { recursive: true, force: true });
    }
  }, 180_000);

  const shm = '/dev/shm';
  const shmIsTmpfs = process.platform === 'linux' && fs.existsSync(shm) && fs.readFileSync('/proc/self/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === shm && l.split(' ')[2] === 'tmpfs');
  it.skipIf(!shmIsTmpfs).concurrent('flags tmpfs (/dev/shm) as not flushing', async () => {
    const dir = tempDir(shm);
    try {
      const run = await runTs(main, ['bench', 'fsync', '--quick', '--dir', dir, '--json', '-'], 150_000);
      expect(run.stderr).toBe('');
      expect(run.exit.code).toBe(0);
      const result = JSON.parse(run.lines.join('\n')) as FsyncBenchResult;
      checkResult(result);
      expect(result.fs.fsType).toBe('tmpfs');
      expect(result.honesty.verdict).toBe(Verdicts.DOES_NOT_FLUSH);
      expect(result.honesty.findings[0]).toContain(doesNotFlushWarning);
      expect(result.honesty.findings.join(' ')).toContain('is on tmpfs');
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

describe('tidemark bench fsync arguments', () => {
  it('bad arguments print the usage and exit 2', async () => {
    const dir = tempDir();
    try {
      const cases: Array<[string[], string]> = [
        [['--bogus'], "Unknown option '--bogus'"],
        [['--dir', path.join(dir, 'missing')], 'is not an existing directory'],
        [['--json'], "Option '--json <value>' argument missing"],
        [['--quick', 'now'], 'now'],
        [['--svg', path.join(dir, 'no', 'such', 'dir', 'x.svg')], 'does not exist'],
        [['--json', '-', '--svg', '-'], 'only one of --json and --svg'],
      ];
      const runs = await Promise.all(cases.map(([args]) => runTs(main, ['bench', 'fsync', ...args])));
      for (const [k, [args, message]] of cases.entries()) {
        const run = runs[k];
        if (run === undefined) throw new Error('missing run');
        expect(run.exit.code, args.join(' ')).toBe(2);
        expect(run.stderr, args.join(' ')).toContain(message);
        // A directory that is not there is one line, like every --dir error of the CLI; malformed arguments add the usage.
        if (args[0] === '--dir') expect(run.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
        else expect(run.stderr, args.join(' ')).toContain('Usage:\n  tidemark bench fsync [--dir D] [--quick] [--json FILE] [--svg FILE]');
        expect(run.lines.join(''), args.join(' ')).toBe('');
      }
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tidemark bench fsync and Ctrl-C', () => {
  /** Starts a quick run, waits until `ready(scratch)` holds, sends SIGINT; checks exit 130 and an empty directory. */
  async function interrupt(ready: (scratch: string) => boolean): Promise<void> {
    const dir = tempDir();
    const child = spawnTs(main, ['bench', 'fsync', '--quick', '--dir', dir]);
    try {
      let scratch: string | undefined;
      for (let i = 0; i < 1200 && child.exit === undefined; i++) {
        const entry = fs.readdirSync(dir).find((e) => e.startsWith(scratchPrefix));
        scratch = entry === undefined ? undefined : path.join(dir, entry);
        if (scratch !== undefined && ready(scratch)) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(child.exit, `the run ended before the awaited stage: ${child.stderr}`).toBeUndefined();
      expect(scratch).toBeDefined();
      child.kill('SIGINT');
      const exit = await child.exited;
      expect(exit.code, child.stderr).toBe(130);
      expect(child.stderr).toContain('interrupted (SIGINT); its temporary files are removed');
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      child.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  it.concurrent('while timing single writes: exits 130 and removes every temporary file', async () => {
    await interrupt((scratch) => fs.existsSync(path.join(scratch, 'growing.tmp')));
  }, 120_000);

  it.concurrent('while the Wal runs its group-commit cells: exits 130 and removes the log', async () => {
    await interrupt((scratch) => fs.existsSync(path.join(scratch, 'wal')) && fs.readdirSync(path.join(scratch, 'wal')).some((f) => f.endsWith('.wal')));
  }, 120_000);
});

// ---------------------------------------------------------------------------
// The pure parts, on made-up rows
// ---------------------------------------------------------------------------

function latency(p50Us: number, p999Us = p50Us * 2): LatencySummary {
  return { count: 100, opsPerS: 1e6 / p50Us, meanUs: p50Us * 1.1, minUs: p50Us / 2, p50Us, p99Us: p50Us * 1.5, p999Us, maxUs: p999Us, histogram: [100] };
}

function methodRow(method: MethodRow['method'], file: MethodRow['file'], bytes: number, p50Us: number): MethodRow {
  return { method, file, bytes, latency: latency(p50Us), syncsIssued: method === PLAIN_WRITE ? 0 : 102, winner: false };
}

/** Rows where a plain write takes `plainUs` and write+fdatasync `syncUs` at every size. */
function rowsOf(plainUs: number, syncUs: number, growingUs = syncUs): MethodRow[] {
  return sizes.flatMap((b) => [
    methodRow(PLAIN_WRITE, FileKinds.PREWRITTEN, b, plainUs),
    methodRow(SyncMethods.WRITE_FDATASYNC, FileKinds.PREWRITTEN, b, syncUs * (b <= 4096 ? 1 : b / 4096)),
    methodRow(SyncMethods.WRITE_FDATASYNC, FileKinds.GROWING, b, growingUs * (b <= 4096 ? 1 : b / 4096)),
  ]);
}

describe('honesty check rules', () => {
  const ext4 = { dir: '/x', deviceNumber: '254:0', fsType: 'ext4', blockDevice: 'vdz', writeCache: 'write back', options: 'rw,relatime' };

  it('passes a disk whose syncs cost far more than writes and reach the device', () => {
    const h = checkHonesty(ext4, rowsOf(5, 300), 500, { writes: 2000, flushes: 1600 });
    expect(h.verdict).toBe(Verdicts.FLUSHES);
    expect(h.syncsIssued).toEqual({ methods: 10 * 102, wal: 500, total: 1520 });
    expect(h.device).toEqual({ name: 'vdz', writes: 2000, flushes: 1600 });
  });

  it('flags tmpfs, syncs as cheap as writes, sub-20 µs syncs on a volatile cache, and flushes that never reach the device', () => {
    const tmpfs = checkHonesty({ dir: '/dev/shm/x', deviceNumber: '0:25', fsType: 'tmpfs' }, rowsOf(3, 4), 0, undefined);
    expect(tmpfs.verdict).toBe(Verdicts.DOES_NOT_FLUSH);
    expect(tmpfs.findings[0]).toContain(doesNotFlushWarning);
    expect(tmpfs.findings.join(' ')).toContain('on tmpfs');
    expect(tmpfs.findings.join(' ')).toContain('costs no more than a plain write');
    const fastCache = checkHonesty({ ...ext4, writeCache: 'write back' }, rowsOf(3, 15), 0, undefined);
    expect(fastCache.verdict).toBe(Verdicts.DOES_NOT_FLUSH);
    expect(fastCache.findings.join(' ')).toContain('no cache flush is that fast');
    const noFlushes = checkHonesty(ext4, rowsOf(5, 300), 500, { writes: 2000, flushes: 0 });
    expect(noFlushes.verdict).toBe(Verdicts.DOES_NOT_FLUSH);
    expect(noFlushes.findings.join(' ')).toContain('completed no flush request');
    const barrierOff = checkHonesty({ ...ext4, options: 'rw,nobarrier' }, rowsOf(5, 300), 0, undefined);
    expect(barrierOff.verdict).toBe(Verdicts.SUSPICIOUS);
  });

  it('says when other processes flushed the device meanwhile, without changing the verdict', () => {
    const busy = rowsOf(5, 300).map((r) => ({ ...r, deviceFlushes: 3 * r.syncsIssued + 10 }));
    const h = checkHonesty(ext4, busy, 0, { writes: 9000, flushes: 4000 });
    expect(h.verdict).toBe(Verdicts.FLUSHES);
    expect(h.step1DeviceFlushes).toBe(busy.reduce((n, r) => n + (r.deviceFlushes ?? 0), 0));
    expect(h.findings.join(' ')).toContain('other processes were syncing too');
    const alone = rowsOf(5, 300).map((r) => ({ ...r, deviceFlushes: r.syncsIssued }));
    expect(checkHonesty(ext4, alone, 0, { writes: 9000, flushes: 1100 }).findings.join(' ')).not.toContain('other processes');
  });

  it('calls a write-through device honest but says what that rests on', () => {
    const h = checkHonesty({ ...ext4, writeCache: 'write through' }, rowsOf(5, 300), 0, { writes: 10, flushes: 0 });
    expect(h.verdict).toBe(Verdicts.FLUSHES);
    expect(h.findings.join(' ')).toContain('write through');
  });
});

describe('derived disk limit', () => {
  const rows = [4096, 65536, 1048576].map((b, i) => methodRow(SyncMethods.WRITE_FDATASYNC, FileKinds.PREWRITTEN, b, [100, 400, 4000][i] ?? 0));

  it('interpolates the mean sync time log-log between sizes, and beyond the largest adds bytes at the best bandwidth', () => {
    expect(syncTimeUs(rows, 512)).toBeCloseTo(110, 6);
    expect(syncTimeUs(rows, 65536)).toBeCloseTo(440, 6);
    expect(syncTimeUs(rows, 16384)).toBeCloseTo(220, 6); // halfway in log size: geometric mean
    // Best bandwidth: 1 MiB in 4400 µs = 238.3 B/µs; one more MiB costs 4400 µs more.
    expect(syncTimeUs(rows, 2 * 1048576)).toBeCloseTo(8800, 6);
    expect(syncTimeUs([], 4096)).toBeUndefined();
  });

  it('is batch ÷ sync time of the batch, and says when it is extrapolated', () => {
    const small = deriveLimit(rows, 10, 4096);
    expect(small?.appendsPerS).toBeCloseTo(10 / 110e-6, 3);
    expect(small?.extrapolated).toBe(false);
    const big = deriveLimit(rows, 512, 2 * 1048576);
    expect(big?.appendsPerS).toBeCloseTo(512 / 8800e-6, 0);
    expect(big?.extrapolated).toBe(true);
    // Never above what the best synced bandwidth carries.
    const bandwidth = 1048576 / 4400;
    for (const w of [4096, 40000, 65536, 300000, 1048576, 5e6]) expect((w / (syncTimeUs(rows, w) ?? 0)) * (1 + 1e-9)).toBeLessThanOrEqual(bandwidth * (1 + 1e-6));
  });
});

describe('reading and progress', () => {
  const result = (growingUs: number, p999Us?: number): FsyncBenchResult => {
    const rows = rowsOf(5, 120, growingUs);
    const pre = rows.find((r) => r.method === SyncMethods.WRITE_FDATASYNC && r.file === FileKinds.PREWRITTEN && r.bytes === 4096);
    if (pre?.latency !== undefined && p999Us !== undefined) pre.latency.p999Us = p999Us;
    return {
      tool: 'tidemark bench fsync',
      startedAt: '2026-01-01T00:00:00.000Z',
      durationSeconds: 1,
      settings: { quick: true, secondsPerRow: 0.1, passes: 1, warmupPerPass: 2, secondsPerCell: 0.1, sizesBytes: sizes, prewrittenFileBytes: 1 << 24, writerCounts: [1], recordBytes: [128] },
      machine: { hostname: 'h', platform: 'linux', arch: 'x64', kernel: '6', cpuModel: 'c', cpus: 2, memoryBytes: 1, node: 'v20', loadAverageStart: [0, 0, 0], loadAverageEnd: [0, 0, 0] },
      fs: { dir: '/x', deviceNumber: '1:2', fsType: 'ext4' },
      methods: { rows, prewrittenFileBytes: 1 << 24, prewriteSeconds: 0.1 },
      groupCommit: [],
      honesty: checkHonesty({ dir: '/x', deviceNumber: '1:2', fsType: 'ext4' }, rows, 0, undefined),
    };
  };

  it('says what a growing file costs and when the tail is long', () => {
    expect(interpretFsync(result(250))).toMatch(/growing file costs 2\.1×/);
    expect(interpretFsync(result(125))).toContain('about the same');
    expect(interpretFsync(result(40))).toContain('read it as noise');
    expect(interpretFsync(result(125, 5000))).toContain('something else is using this device');
    expect(interpretFsync(result(125))).not.toContain('something else');
  });

  it('draws a progress line only on a terminal', () => {
    const written: string[] = [];
    const tty = progressLine({ isTTY: true, columns: 80, write: (s: string) => written.push(s) > 0 });
    tty.update(3, 10, 'O_DSYNC · pre-written · 4096 B');
    tty.clear();
    expect(written[0]).toMatch(/^\r\x1b\[K\[3\/10\] O_DSYNC · pre-written · 4096 B {2}\d+\.\d s$/);
    expect(written[1]).toBe('\r\x1b[K');
    const plain: string[] = [];
    const pipe = progressLine({ isTTY: false, columns: 80, write: (s: string) => plain.push(s) > 0 });
    pipe.update(1, 2, 'x');
    pipe.clear();
    expect(plain).toEqual([]);
  });
});
