/**
 * The cluster commands' pure parts: argument and config parsing (every bad value a
 * usage error naming the option), the Prometheus text format, the status table,
 * the JSON log lines; and through the real CLI, that bad arguments exit with 2.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CliUsageError, parseClusterList, parseEndpoint, resolveNodeConfig } from '../lib/cli/cluster-args';
import { jsonLogger } from '../lib/cli/json-log';
import { LatencyHistogram, renderPrometheus } from '../lib/cli/prometheus';
import { formatStatusTable, toNodeView } from '../lib/cli/status-table';
import { runCli } from './cli-run';
import { longestGap, verify, writeGap, type Load } from '../lib/cli/load';

const root = path.join(__dirname, '..');

function cli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
}

const base = ['--id', 'n1', '--dir', '/tmp/x', '--listen', '127.0.0.1:7001'];

describe('cluster CLI arguments', () => {
  it('parses a full node command line', () => {
    const c = resolveNodeConfig([...base, '--peer', 'n2=127.0.0.1:7002', '--peer', 'n3=[::1]:7003', '--cluster-id', 'c9', '--metrics-port', '9100', '--tick-ms', '5']);
    expect(c.id).toBe('n1');
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 7001 });
    expect(c.peers).toEqual([
      { id: 'n2', endpoint: { host: '127.0.0.1', port: 7002 } },
      { id: 'n3', endpoint: { host: '::1', port: 7003 } },
    ]);
    expect(c.clusterId).toBe('c9');
    expect(c.metricsPort).toBe(9100);
    expect(c.tickMs).toBe(5);
    expect(c.electionTimeoutTicks).toBeUndefined();
  });

  it.each([
    [['--dir', '/tmp/x', '--listen', '127.0.0.1:1'], /--id is required/],
    [['--id', 'n1', '--listen', '127.0.0.1:1'], /--dir is required/],
    [['--id', 'n1', '--dir', '/x'], /--listen/],
    [[...base, '--peer', 'n2'], /--peer must be ID=HOST:PORT/],
    [[...base, '--peer', 'n2=host'], /HOST:PORT/],
    [[...base, '--peer', 'n2=h:70000'], /port must be 1-65535/],
    [[...base, '--peer', 'n1=h:7'], /own id/],
    [[...base, '--peer', 'n2=h:7', '--peer', 'n2=h:8'], /given twice/],
    [[...base, '--metrics-port', 'abc'], /--metrics-port must be a whole number/],
    [[...base, '--log-level', 'loud'], /--log-level must be one of/],
    [[...base, '--bogus'], /Unknown option/],
    [['--id', 'bad id!', '--dir', '/x', '--listen', 'h:1'], /--id must be/],
    [[...base, '--tls-cert', 'a.crt'], /go together/],
    [[...base, '--require-client-cert'], /--require-client-cert needs/],
    [[...base, '--max-pending-proposals', '0'], /--max-pending-proposals must be/],
  ])('rejects %j', (args, message) => {
    expect(() => resolveNodeConfig(args)).toThrow(CliUsageError);
    expect(() => resolveNodeConfig(args)).toThrow(message);
  });

  it('reads a config file, with flags winning and dir relative to the file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-cfg-'));
    try {
      const file = path.join(dir, 'n2.json');
      fs.writeFileSync(file, JSON.stringify({ id: 'n2', dir: 'data', listen: '127.0.0.1:7002', peers: { n1: '127.0.0.1:7001' }, heartbeatTicks: 2 }));
      const c = resolveNodeConfig(['--config', file, '--listen', '127.0.0.1:8002']);
      expect(c.id).toBe('n2');
      expect(c.dir).toBe(path.join(dir, 'data'));
      expect(c.listen.port).toBe(8002);
      expect(c.peers).toEqual([{ id: 'n1', endpoint: { host: '127.0.0.1', port: 7001 } }]);
      expect(c.heartbeatTicks).toBe(2);
      fs.writeFileSync(file, JSON.stringify({ id: 'n2', colour: 'red' }));
      expect(() => resolveNodeConfig(['--config', file])).toThrow(/unknown key 'colour'/);
      fs.writeFileSync(file, '{ not json');
      expect(() => resolveNodeConfig(['--config', file])).toThrow(/not valid JSON/);
      expect(() => resolveNodeConfig(['--config', path.join(dir, 'missing.json')])).toThrow(/ENOENT/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('TLS files and admission limits from flags or the config file (paths relative to it)', () => {
    const c = resolveNodeConfig([...base, '--tls-cert', 'n1.crt', '--tls-key', 'n1.key', '--tls-ca', 'ca.crt', '--require-client-cert', '--max-pending-proposals', '64']);
    expect(c.tls).toEqual({ certFile: path.resolve('n1.crt'), keyFile: path.resolve('n1.key'), caFile: path.resolve('ca.crt'), requireClientCert: true });
    expect(c.maxPendingProposals).toBe(64);
    expect(resolveNodeConfig(base).tls).toBeUndefined();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-cfg-'));
    try {
      const file = path.join(dir, 'n1.json');
      fs.writeFileSync(file, JSON.stringify({ tlsCert: 'certs/n1.crt', tlsKey: 'certs/n1.key', tlsCa: 'certs/ca.crt', maxPendingBytes: 1000 }));
      const d = resolveNodeConfig([...base, '--config', file]);
      expect(d.tls).toEqual({ certFile: path.join(dir, 'certs/n1.crt'), keyFile: path.join(dir, 'certs/n1.key'), caFile: path.join(dir, 'certs/ca.crt'), requireClientCert: false });
      expect(d.maxPendingBytes).toBe(1000);
      fs.writeFileSync(file, JSON.stringify({ requireClientCert: 'yes' }));
      expect(() => resolveNodeConfig([...base, '--config', file])).toThrow(/requireClientCert' must be true or false/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('parses cluster lists and endpoints', () => {
    expect(parseClusterList('a:1, b:2')).toEqual([
      { host: 'a', port: 1 },
      { host: 'b', port: 2 },
    ]);
    expect(() => parseClusterList(undefined)).toThrow(/--cluster is required/);
    expect(() => parseEndpoint(':1', '--x')).toThrow(/HOST:PORT/);
  });

  it('bad arguments exit with 2 and a message on stderr', () => {
    for (const args of [['node', '--id', 'n1'], ['kv', 'frob', '--cluster', 'h:1'], ['kv', 'put', 'k', '--cluster', 'h:1'], ['status'], ['demo', '--clients', '0'], ['kv', 'get', 'k', '--cluster', 'h:1', '--tls-cert', 'c.crt'], ['certs', '--dir', '/tmp/x']]) {
      const r = cli(args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/^tidemark: /);
    }
  });
});

describe('Prometheus text format', () => {
  it('renders counters, gauges with escaped labels, and cumulative histograms', () => {
    const h = new LatencyHistogram();
    h.observe(0.04);
    h.observe(3);
    h.observe(20_000);
    const text = renderPrometheus([
      { name: 'tidemark_commits_total', help: 'Entries committed.', type: 'counter', samples: [{ value: 42 }] },
      { name: 'tidemark_peer_lag_entries', help: 'Lag.', type: 'gauge', samples: [{ labels: { peer: 'n"2\\' }, value: 3 }] },
      { name: 'tidemark_sync_seconds', help: 'Sync latency.', type: 'histogram', samples: [h.sample()] },
    ]);
    expect(text).toContain('# TYPE tidemark_commits_total counter\ntidemark_commits_total 42\n');
    expect(text).toContain('tidemark_peer_lag_entries{peer="n\\"2\\\\"} 3');
    expect(text).toContain('tidemark_sync_seconds_bucket{le="0.00005"} 1');
    expect(text).toContain('tidemark_sync_seconds_bucket{le="0.005"} 2');
    expect(text).toContain('tidemark_sync_seconds_bucket{le="10"} 2');
    expect(text).toContain('tidemark_sync_seconds_bucket{le="+Inf"} 3');
    expect(text).toContain('tidemark_sync_seconds_count 3');
    expect(() => renderPrometheus([{ name: 'bad name', help: '', type: 'gauge', samples: [] }])).toThrow(/bad Prometheus metric name/);
  });
});

describe('status table', () => {
  it('shows role, generation, high-water mark, log range and lag per peer', () => {
    const leader = toNodeView({ id: 'n1', role: 'leader', leaderId: 'n1', generation: 3, commit: 120, applied: 120, firstIndex: 51, lastIndex: 121, peers: [{ id: 'n2', match: 121 }, { id: 'n3', match: 100, inflightBytes: 10 }] });
    const follower = toNodeView({ id: 'n2', role: 'follower', leaderId: 'n1', generation: 3, commit: 119, lastIndex: 121, peers: [] });
    const table = formatStatusTable([
      { address: '127.0.0.1:7001', view: leader },
      { address: '127.0.0.1:7002', view: follower },
      { address: '127.0.0.1:7003', error: 'connect ECONNREFUSED' },
    ]);
    const lines = table.split('\n');
    expect(lines[0]).toMatch(/^NODE\s+ADDRESS\s+ROLE\s+GEN\s+HWM\s+APPLIED\s+LOG\s+LAG$/);
    expect(lines[1]).toMatch(/^n1\s+127\.0\.0\.1:7001\s+leader\s+3\s+120\s+120\s+51\.\.121\s+n2:0 n3:21$/);
    expect(lines[2]).toMatch(/follower\s+3\s+119\s+-\s+\.\.121\s+leader n1$/);
    expect(lines[3]).toMatch(/unreachable.*ECONNREFUSED/);
    expect(() => toNodeView({ role: 'leader' })).toThrow(/lacks/);
  });
});

describe('JSON log lines', () => {
  it('writes one pino-shaped object per line, filtered by level, errors serialised', () => {
    const lines: string[] = [];
    const log = jsonLogger({ level: 'info', bindings: { node: 'n1' }, write: (l) => lines.push(l) });
    log.debug({ a: 1 }, 'hidden');
    log.info({ peer: 'n2' }, 'connected');
    log.error({ err: Object.assign(new Error('boom'), { code: 'TM_IO' }) }, 'failed');
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    const a = JSON.parse(lines[0] as string) as Record<string, unknown>;
    expect(a).toMatchObject({ level: 30, node: 'n1', peer: 'n2', msg: 'connected', pid: process.pid });
    expect(typeof a.time).toBe('number');
    const b = JSON.parse(lines[1] as string) as { level: number; err: Record<string, unknown> };
    expect(b.level).toBe(50);
    expect(b.err).toMatchObject({ type: 'Error', message: 'boom', code: 'TM_IO' });
  });
});

describe('tidemark demo (cluster)', () => {
  const run = (args: string[], tmp: string, onStdout?: (all: string, child: ChildProcess) => void) => runCli(args, { env: { ...process.env, TMPDIR: tmp }, timeoutMs: 150_000, ...(onStdout === undefined ? {} : { onStdout }) });

  /** Processes whose command line mentions `dir`. */
  function processesUnder(dir: string): string[] {
    const ps = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' });
    return ps.stdout.split('\n').filter((l) => l.includes(dir) && !l.includes('ps -eo'));
  }

  it('kills the leader, checks every acknowledged write, rejoins, passes every check, cleans up', { timeout: 180_000 }, async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-cdemo-'));
    try {
      const r = await run(['demo', '--seconds', '2', '--clients', '8'], tmp);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/SIGKILL leader n\d/);
      expect(r.stdout).toMatch(/ok {3}new leader elected/);
      expect(r.stdout).toMatch(/ok {3}acknowledged writes readable/);
      expect(r.stdout).toMatch(/ok {3}restarted n\d caught up/);
      expect(r.stdout).toMatch(/checks: (\d+)\/\1 passed/);
      expect(r.stdout).not.toContain('\r'); // not a TTY: plain lines, no progress redraws
      expect(fs.readdirSync(tmp).filter((n) => n.startsWith('tidemark-'))).toEqual([]); // (tsx keeps its cache there too)
      expect(processesUnder(tmp)).toEqual([]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('Ctrl-C stops the nodes and removes the temporary directory', { timeout: 120_000 }, async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-cdemo-'));
    try {
      let sent = false;
      const r = await run(['demo', '--seconds', '30'], tmp, (out, child) => {
        if (!sent && /leader: n\d/.test(out)) {
          sent = true;
          setTimeout(() => child.kill('SIGINT'), 500);
        }
      });
      expect(sent, r.stdout + r.stderr).toBe(true);
      expect(r.code).toBe(130);
      expect(r.stderr).toContain('interrupted');
      expect(fs.readdirSync(tmp).filter((n) => n.startsWith('tidemark-'))).toEqual([]); // (tsx keeps its cache there too)
      expect(processesUnder(tmp)).toEqual([]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

describe('the load checks the demo and the process tests rely on', () => {
  function load(acked: Array<[string, string]>, unknown: Array<[string, string]> = []): Load {
    return { prefix: 'demo', acked: new Map(acked), unknown: new Map(unknown), notApplied: 0, failures: new Map(), ackTimes: [], stop: true, done: Promise.resolve() };
  }

  it('verify reports a lost write, a wrong value and a value never written; accepts unknown outcomes either way', () => {
    const l = load([['demo/a', '1'], ['demo/b', '2']], [['demo/u', '9'], ['demo/v', '8']]);
    expect(verify(new Map([['demo/a', '1'], ['demo/b', '2'], ['demo/u', '9'], ['other/x', 'y']]), l)).toEqual([]);
    expect(verify(new Map([['demo/a', '1']]), l)).toEqual(['demo/b: acknowledged "2", read nothing']);
    expect(verify(new Map([['demo/a', '1'], ['demo/b', '3']]), l)).toEqual(['demo/b: acknowledged "2", read "3"']);
    expect(verify(new Map([['demo/a', '1'], ['demo/b', '2'], ['demo/v', '7'], ['demo/z', '0']]), l)).toEqual(['demo/v: read "7", never written with that value', 'demo/z: read "0", never written with that value']);
  });

  it('writeGap spans the kill up to the first acknowledgement after the election, not the first after the kill', () => {
    // Acks every 10 ms, one stray answer 2 ms after the kill at 100, nothing until 450; elected at 400.
    const times = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 102, 450, 460, 470];
    expect(writeGap(times, 100, 400)).toBe(348);
    expect(writeGap(times, 100, 500)).toBeUndefined();
    expect(longestGap([1, 2, 3], 0, 10)).toBe(7);
  });
});
