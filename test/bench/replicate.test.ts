// The replication benchmark's pieces (lib/cli/replicate/*): the etcd launcher (against a fake
// etcd, test/fixtures/fake-etcd.cjs: free ports, health wait, leader, cleanup — also on
// SIGINT; and against Debian's etcd when it is on PATH), the failover meter on synthetic
// acknowledgement times, the JSON/SVG/table report, `tidemark bench replicate`'s arguments
// and Ctrl-C, and a --quick run of the tidemark contestant alone through bench/replicate.ts
// (test/package.test.ts runs the command from the packed package).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EtcdCluster } from '../../lib/cli/replicate/etcd';
import { dirBytes, waitFor } from '../../lib/cli/replicate/launcher';
import { ExactRecorder, FailoverMeter, medianWorst, CHART_PERCENTILES, type FailoverResult } from '../../lib/cli/replicate/meter';
import { checkTargets, renderSvg, renderTables, type BenchResult, type CellResult } from '../../lib/cli/replicate/report';
import { zooCfg } from '../../lib/cli/replicate/zookeeper';
import { which } from '../../lib/cli/replicate/run';

const root = path.join(__dirname, '..', '..');
const fakeEtcd = path.join(root, 'test', 'fixtures', 'fake-etcd.cjs');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), p));

describe('etcd launcher (fake etcd)', () => {
  it('starts three members on distinct free ports, waits for health, finds the leader, cleans up', async () => {
    const baseDir = tmp('tm-fake-etcd-');
    const c = await EtcdCluster.start({ bin: fakeEtcd, baseDir, heartbeatMs: 100, electionMs: 1000 });
    let pids: number[] = [];
    try {
      const urls = c.urls();
      expect(urls).toHaveLength(3);
      expect(new Set(urls).size).toBe(3);
      // Health was waited for: the fake reports unhealthy for its first 300 ms.
      for (const u of urls) expect(await (await fetch(`${u}/health`)).json()).toEqual({ health: 'true' });
      expect(await c.waitForLeader(5000)).toBe('e1');
      pids = c.ids().map((id) => c.pid(id) as number);
      for (const p of pids) expect(alive(p)).toBe(true);
      for (const id of c.ids()) expect(fs.existsSync(c.dataDir(id))).toBe(true);
      await c.kill('e2');
      expect(c.pid('e2')).toBeUndefined();
      expect(alive(pids[1] as number)).toBe(false);
      await c.restart('e2', 10_000);
      expect(c.pid('e2')).toBeGreaterThan(0);
      pids.push(c.pid('e2') as number);
    } finally {
      await c.cleanup();
    }
    for (const p of pids) expect(alive(p)).toBe(false);
    expect(fs.existsSync(baseDir)).toBe(false);
    for (const u of c.urls()) expect(await portFree(Number(new URL(u).port))).toBe(true);
  });

  it('a member that exits fails the start at once and everything is cleaned up', async () => {
    const baseDir = tmp('tm-fake-etcd-exit-');
    process.env.FAKE_ETCD_EXIT = 'e3';
    try {
      await expect(EtcdCluster.start({ bin: fakeEtcd, baseDir, heartbeatMs: 100, electionMs: 1000, healthTimeoutMs: 20_000 })).rejects.toThrow(/etcd e3 health: the process exited/);
    } finally {
      delete process.env.FAKE_ETCD_EXIT;
    }
    expect(fs.existsSync(baseDir)).toBe(false);
  });

  it('never passes --unsafe-no-fsync and passes the timeouts', () => {
    const args = EtcdCluster.memberArgs('e1', '/d', { client: 1, peer: 2 }, 'e1=http://127.0.0.1:2', { heartbeatMs: 100, electionMs: 1000 });
    expect(args).not.toContain('--unsafe-no-fsync');
    expect(args.join(' ')).toContain('--heartbeat-interval 100 --election-timeout 1000');
  });

  it('Ctrl-C (SIGINT) kills the members and removes the directory', async () => {
    const child = spawn(tsx, [path.join(root, 'test', 'fixtures', 'etcd-launcher-child.ts')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await waitFor('child started', async () => out.includes('\n'), 40_000, 50, () => child.exitCode === null);
    const info = JSON.parse(out.split('\n')[0] as string) as { baseDir: string; pids: number[] };
    expect(info.pids).toHaveLength(3);
    for (const p of info.pids) expect(alive(p)).toBe(true);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(err).toContain('SIGINT');
    await waitFor('members gone', async () => info.pids.every((p) => !alive(p)), 10_000, 50);
    expect(fs.existsSync(info.baseDir)).toBe(false);
  });
});

// The same launcher against Debian's etcd-server when it is installed (bench/deps.sh and
// `npm run bench:replicate` install it; CI need not have it).
const etcdBin = which('etcd');
describe.skipIf(etcdBin === undefined)('etcd launcher (real etcd; skipped when etcd is not on PATH)', () => {
  it('three members on free ports, healthy, a leader they agree on; SIGKILL of the leader elects another; restart; cleanup', async () => {
    const baseDir = tmp('tm-real-etcd-');
    const c = await EtcdCluster.start({ bin: etcdBin as string, baseDir, heartbeatMs: 100, electionMs: 1000, healthTimeoutMs: 60_000 });
    const pids: number[] = [];
    try {
      expect(new Set(c.urls()).size).toBe(3);
      for (const u of c.urls()) expect(((await (await fetch(`${u}/health`)).json()) as { health: string }).health).toBe('true');
      pids.push(...c.ids().map((id) => c.pid(id) as number));
      const leader = await c.waitForLeader(30_000);
      expect(c.ids()).toContain(leader);
      await c.kill(leader);
      expect(alive(pids[c.ids().indexOf(leader)] as number)).toBe(false);
      const next = await c.waitForLeader(30_000, [leader]);
      expect(next).not.toBe(leader);
      await c.restart(leader, 60_000);
      pids.push(c.pid(leader) as number);
      expect(await c.waitForLeader(30_000)).toBe(next);
    } finally {
      await c.cleanup();
    }
    for (const p of pids) expect(alive(p)).toBe(false);
    expect(fs.existsSync(baseDir)).toBe(false);
    for (const u of c.urls()) expect(await portFree(Number(new URL(u).port))).toBe(true);
  }, 150_000);
});

describe('zookeeper config', () => {
  it('has forceSync on, the timing and the three servers', () => {
    const cfg = zooCfg('/d', 2181, [1, 2, 3].map((id) => ({ id, quorum: 3000 + id, election: 4000 + id })), { tickTimeMs: 200, syncLimit: 5, initLimit: 10 });
    expect(cfg).toMatch(/^forceSync=yes$/m);
    expect(cfg).toMatch(/^tickTime=200$/m);
    expect(cfg).toMatch(/^syncLimit=5$/m);
    expect(cfg).toMatch(/^server\.3=127\.0\.0\.1:3003:4003$/m);
  });
});

describe('failover meter', () => {
  // Acks every 2 ms over [0, 3000) except none in [1000, 1300): a 300 ms hole.
  const acks = (skip: (t: number) => boolean) => Array.from({ length: 1500 }, (_, i) => i * 2).filter((t) => !skip(t));

  it('measures a synthetic gap, the election time, errors and the timeline', () => {
    const m = new FailoverMeter();
    const kill = 1000;
    for (const t of acks((t) => t >= 1000 && t < 1300)) m.ack(t);
    m.error(500); // before the kill: not counted
    m.error(1100);
    m.error(1150);
    m.killed(kill);
    m.elected(1200);
    expect(m.resumed()).toBe(true);
    const r = m.result('n1', 'n2', 50, -1000, 2000);
    expect(r.writeGapMs).toBe(300);
    expect(r.firstGapMs).toBe(300);
    expect(r.electedAfterMs).toBe(200);
    expect(r.errors).toBe(2);
    expect(r.timeline.rates).toHaveLength(60);
    // 2 ms spacing = 500 writes/s; the six 50 ms buckets of the hole are empty.
    expect(r.timeline.rates[0]).toBe(500);
    expect(r.timeline.rates.slice(20, 26)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(r.timeline.rates[26]).toBe(500);
  });

  it('does not end the gap at a late answer of the dead leader', () => {
    // The old leader's answer arriving just after the kill (1050), then nothing until 1400.
    const all = [...acks((t) => t >= 1000), 1050, ...acks((t) => t < 1400)];
    const m = new FailoverMeter();
    for (const t of all) m.ack(t);
    m.killed(1000);
    m.elected(1300);
    expect(m.result('a', 'b').writeGapMs).toBe(350);
  });

  it('counts a second stall after the election', () => {
    const m = new FailoverMeter();
    for (const t of acks((t) => (t >= 1000 && t < 1200) || (t >= 1600 && t < 2100))) m.ack(t);
    m.killed(1000);
    m.elected(1150);
    const r = m.result('a', 'b');
    expect(r.firstGapMs).toBe(200);
    expect(r.writeGapMs).toBe(502); // last ack before the stall at 1598, next at 2100
  });

  it('ignores late acknowledgements after the load stopped', () => {
    const m = new FailoverMeter();
    for (const t of acks((t) => t >= 1000 && t < 1100)) m.ack(t);
    m.ack(7000); // a write stuck on the dead node, answered long after the load stopped
    m.killed(1000);
    m.elected(1050);
    m.stopped(3000);
    expect(m.result('a', 'b').writeGapMs).toBe(100);
  });

  it('reports NaN when writes never resumed, and median/worst', () => {
    const m = new FailoverMeter();
    for (const t of acks((t) => t >= 1000)) m.ack(t);
    m.killed(1000);
    m.elected(1500);
    expect(m.resumed()).toBe(false);
    expect(Number.isNaN(m.result('a', 'b').writeGapMs)).toBe(true);
    expect(medianWorst([300, 100, 200, 900, 250])).toEqual({ median: 250, worst: 900 });
    expect(medianWorst([1, 2])).toEqual({ median: 1.5, worst: 2 });
  });

  it('exact recorder percentiles', () => {
    const r = new ExactRecorder();
    for (let i = 1; i <= 1000; i++) r.record(i);
    expect(r.percentile(50)).toBe(500);
    expect(r.percentile(99.9)).toBe(999);
    expect(r.percentile(100)).toBe(1000);
  });
});

/** Checks that every tag is closed in order (enough to catch broken hand-written SVG). */
function assertWellFormed(xml: string): void {
  const stack: string[] = [];
  const body = xml.replace(/^<\?xml[^>]*\?>\s*/, '');
  for (const m of body.matchAll(/<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>/g)) {
    const [, close, name, , self] = m;
    if (self === '/') continue;
    if (close === '/') expect(stack.pop()).toBe(name);
    else stack.push(name as string);
  }
  expect(stack).toEqual([]);
  // No stray '<' outside tags (an unescaped label would show up here).
  expect(body.replace(/<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>/g, '')).not.toMatch(/[<>]/);
}

function seriesOf(svg: string, chartId: string): Map<string, [number, number][]> {
  const start = svg.indexOf(`<g id="${chartId}"`);
  expect(start).toBeGreaterThanOrEqual(0);
  const g = svg.slice(start, svg.indexOf('</g>', start));
  const out = new Map<string, [number, number][]>();
  const unq = (s: string) => s.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  for (const m of g.matchAll(/data-series="([^"]*)" data-points="([^"]*)"/g)) out.set(unq(m[1] as string), JSON.parse(unq(m[2] as string)) as [number, number][]);
  return out;
}

function syntheticResult(): BenchResult {
  const names = ['tidemark', 'etcd', 'zookeeper', 'wal-floor'];
  const rate: Record<string, number> = { tidemark: 20_000, etcd: 3000, zookeeper: 5000, 'wal-floor': 60_000 };
  const cells: CellResult[] = [];
  for (const b of [128, 4096])
    for (const c of [1, 16, 256])
      for (const n of names) {
        const perS = Math.round(((rate[n] as number) * Math.sqrt(c)) / (b === 4096 ? 2 : 1));
        cells.push({ contestant: n, valueBytes: b, clients: c, slices: 3, seconds: 6, commits: perS * 6, commitsPerS: perS, p50Us: 400, p99Us: 900, p999Us: 2000, percentiles: CHART_PERCENTILES.map((p) => [p, 300 + p * 10] as const), clientCpuPct: 50, nodeCpuPct: { n1: 80, n2: 30, n3: 30 }, errors: 0 });
      }
  const run = (gap: number): FailoverResult => ({ killed: 'n1', newLeader: 'n2', electedAfterMs: gap + 50, writeGapMs: gap, firstGapMs: gap, errors: 3, timeline: { bucketMs: 50, fromMs: -1000, rates: Array.from({ length: 80 }, (_, i) => (i >= 20 && i < 20 + gap / 50 ? 0 : 1000)) } });
  const failover = [
    { contestant: 'tidemark', runs: [run(150), run(200), run(100)], writeGapMs: { median: 150, worst: 200 }, electedAfterMs: { median: 200, worst: 250 }, errors: { median: 3, worst: 3 } },
    { contestant: 'etcd', runs: [run(1200)], writeGapMs: { median: 1200, worst: 1200 }, electedAfterMs: { median: 1250, worst: 1250 }, errors: { median: 3, worst: 3 } },
  ];
  const memory = [{ contestant: 'tidemark', commands: 1_000_000, seconds: 60, rssBeforeMb: { n1: 90, n2: 85, n3: 85 }, rssAfterMb: { n1: 95, n2: 88, n3: 87 }, dataBytes: { n1: 5e7, n2: 5e7, n3: 5e7 } }];
  const partial = { version: 1 as const, mode: 'full' as const, machine: { cpus: 2, model: 'test cpu', loadavgStart: [1, 2, 3], loadavgEnd: [1, 1, 1], date: 'now' }, histogram: 'exact', contestants: names.map((n) => ({ name: n, measured: true, description: `${n} <desc>`, timeouts: 'heartbeat 100 ms' })), cells, failover, memory };
  return { ...partial, targets: checkTargets(partial) };
}

describe('report', () => {
  it('targets: ratios against the better anchor, p50, failover, RSS', () => {
    const r = syntheticResult();
    const t = (s: string) => r.targets.find((x) => x.target.startsWith(s));
    expect(t('tidemark >= 5x best anchor, 128 B x 16')?.value).toBe('4.00x zookeeper');
    expect(t('tidemark >= 5x best anchor, 128 B x 16')?.met).toBe(false);
    expect(t('tidemark p50 < 0.5 ms')?.met).toBe(true);
    expect(t('tidemark failover gap < half')?.met).toBe(true);
    expect(t('tidemark node RSS')?.value).toBe('95 MB max (grew 5 MB)');
  });

  it('SVG is well formed and holds throughput, latency and failover series', () => {
    const r = syntheticResult();
    const svg = renderSvg(r);
    assertWellFormed(svg);
    for (const b of [128, 4096]) {
      const s = seriesOf(svg, `throughput-${b}`);
      expect([...s.keys()].sort()).toEqual(['etcd', 'tidemark', 'wal-floor', 'zookeeper']);
      expect(s.get('tidemark')?.map((p) => p[1])).toEqual([1, 16, 256].map((c) => r.cells.find((x) => x.contestant === 'tidemark' && x.valueBytes === b && x.clients === c)?.commitsPerS));
    }
    const lat = seriesOf(svg, 'latency-128-1');
    expect(lat.get('etcd')?.length).toBe(CHART_PERCENTILES.length);
    const fo = seriesOf(svg, 'failover');
    expect([...fo.keys()]).toEqual(['tidemark (gap 150 ms)', 'etcd (gap 1200 ms)']);
    expect(fo.get('etcd (gap 1200 ms)')?.length).toBe(80);
  });

  it('JSON round-trips and the tables name every contestant', () => {
    const r = syntheticResult();
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
    const text = renderTables(r);
    for (const n of ['tidemark', 'etcd', 'zookeeper', 'wal-floor']) expect(text).toContain(n);
    expect(text).toContain('load average at start [1,2,3]');
    expect(text).toMatch(/\[MISSED\] tidemark >= 5x best anchor, 128 B x 16: 4\.00x zookeeper/);
  });

  it('a contestant that could not run is reported as not measured, with the reason', () => {
    const r = syntheticResult();
    const text = renderTables({ ...r, contestants: [...r.contestants.filter((c) => c.name !== 'zookeeper'), { name: 'zookeeper', measured: false, reason: 'no java on PATH', description: '', timeouts: '' }] });
    expect(text).toMatch(/zookeeper +NOT MEASURED \(no java on PATH\)/);
  });

  it('dirBytes sums files recursively', () => {
    const d = tmp('tm-dirbytes-');
    try {
      fs.mkdirSync(path.join(d, 'a'));
      fs.writeFileSync(path.join(d, 'x'), Buffer.alloc(100));
      fs.writeFileSync(path.join(d, 'a', 'y'), Buffer.alloc(23));
      expect(dirBytes(d)).toBe(123);
      expect(dirBytes(path.join(d, 'missing'))).toBe(0);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});

// The built CLI (like the --quick run below, which needs it for the nodes): fast to start.
const cli = (args: string[]) => {
  const r = spawnSync(process.execPath, [path.join(root, 'dist', 'cli', 'main.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

describe('tidemark bench replicate arguments', () => {
  it('bad arguments print one cause and the usage, exit 2, and start nothing', () => {
    const d = tmp('tm-bench-args-');
    try {
      const cases: [string[], RegExp][] = [
        [['--contestants', 'tidemark,raft'], /unknown contestant 'raft'/],
        [['--contestants', ','], /--contestants must name at least one/],
        [['--slices', '0'], /--slices must be a whole number above 0, got '0'/],
        [['--slice-seconds', 'x'], /--slice-seconds must be a number above 0/],
        [['--clients', '1,,16'], /--clients must be a whole number above 0/],
        [['--json', path.join(d, 'missing', 'r.json')], /--json .*does not exist/],
        [['--json', '-', '--svg', '-'], /only one of --json and --svg/],
        [['--frobnicate'], /Unknown option '--frobnicate'/],
      ];
      for (const [args, cause] of cases) {
        const r = cli(['bench', 'replicate', ...args]);
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(cause);
        expect(r.stderr).toContain('tidemark bench replicate [--quick]');
        expect(r.stdout).toBe('');
      }
      const dir = cli(['bench', 'replicate', '--dir', path.join(d, 'nope')]);
      expect(dir.code).toBe(2);
      expect(dir.stderr.trim()).toBe(`tidemark: bench replicate: --dir ${path.join(d, 'nope')} is not an existing directory`);
      expect(fs.readdirSync(d)).toEqual([]);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  }, 120_000);

  it('is in tidemark --help and in the list of benchmarks', () => {
    const help = cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('tidemark bench replicate [--quick] [--contestants LIST] [--json FILE] [--svg FILE] [--dir D]');
    const unknown = cli(['bench', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('available: fsync, replicate');
  }, 60_000);
});

/** Pids of processes whose command line mentions `text` (the nodes carry their --dir). */
function pidsMentioning(text: string): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(text)) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

describe.skipIf(process.platform !== 'linux')('tidemark bench replicate and Ctrl-C', () => {
  it('SIGINT once the cluster runs kills the three nodes, removes the data and exits 130', async () => {
    const d = tmp('tm-bench-int-');
    const child = spawn(process.execPath, [path.join(root, 'dist', 'cli', 'main.js'), 'bench', 'replicate', '--contestants', 'tidemark', '--dir', d], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await waitFor('tidemark started', async () => err.includes('started tidemark'), 60_000, 50, () => child.exitCode === null);
      const nodes = pidsMentioning(d).filter((p) => p !== child.pid);
      expect(nodes).toHaveLength(3);
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      expect(err).toContain('SIGINT: killed every benchmark process');
      await waitFor('nodes gone', async () => nodes.every((p) => !alive(p)), 10_000, 50);
      expect(fs.readdirSync(d)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      for (const p of pidsMentioning(d)) process.kill(p, 'SIGKILL');
      fs.rmSync(d, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('bench/replicate.ts --quick, tidemark alone', () => {
  it('runs the cells, a failover and a short long-run, and writes JSON and SVG', () => {
    const d = tmp('tm-bench-quick-');
    try {
      const json = path.join(d, 'r.json');
      const svg = path.join(d, 'r.svg');
      const r = spawnSync(tsx, [path.join(root, 'bench', 'replicate.ts'), '--quick', '--contestants', 'tidemark', '--slice-seconds', '0.3', '--long-commands', '3000', '--json', json, '--svg', svg], { encoding: 'utf8', timeout: 110_000 });
      expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
      const res = JSON.parse(fs.readFileSync(json, 'utf8')) as BenchResult;
      expect(res.mode).toBe('quick');
      expect(res.contestants.map((c) => c.name)).toEqual(['tidemark']);
      expect(res.cells).toHaveLength(6);
      for (const c of res.cells) {
        expect(c.commits).toBeGreaterThan(0);
        expect(c.p50Us).toBeGreaterThan(0);
        expect(c.p999Us).toBeGreaterThanOrEqual(c.p50Us);
        expect(Object.keys(c.nodeCpuPct).sort()).toEqual(['n1', 'n2', 'n3']);
      }
      expect(res.failover[0]?.runs).toHaveLength(1);
      expect(res.failover[0]?.runs[0]?.writeGapMs).toBeGreaterThan(0);
      expect(res.memory[0]?.commands).toBe(3000);
      expect(Object.keys(res.memory[0]?.rssAfterMb ?? {})).toHaveLength(3);
      expect(Array.isArray(res.machine.loadavgStart)).toBe(true);
      const text = fs.readFileSync(svg, 'utf8');
      assertWellFormed(text);
      expect(seriesOf(text, 'throughput-128').get('tidemark')).toHaveLength(3);
      expect(r.stdout).toContain('targets:');
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  }, 120_000);
});
