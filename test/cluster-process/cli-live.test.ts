/**
 * The user-facing commands against three live `tidemark node` processes: `kv put/get/
 * del/cas/range` (exit codes and output), `get --follower` on one node, `status` as a
 * table and as JSON, and the Prometheus text a node serves on `--metrics-port`.
 */
import { describe, expect, it } from 'vitest';
import { sampleValue } from '../../lib/cli/prometheus';
import { formatEndpoint } from '../../lib/cli/cluster-args';
import { testCluster } from './harness';
import { runCli } from '../cli-run';

const cli = (args: string[]) => runCli(args);

describe('cluster processes: the CLI against live nodes', () => {
  it('kv, status and /metrics', { timeout: 150_000 }, async () => {
    const { cluster } = await testCluster({ metrics: true });
    const leader = await cluster.waitForLeader(30_000);
    const all = ['--cluster', cluster.clusterArg()];
    const follower = cluster.ids().find((id) => id !== leader.id) as string;

    const put = await cli(['kv', 'put', 'greeting', 'hello', ...all]);
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout.trim()).toBe('OK');
    const get = await cli(['kv', 'get', 'greeting', ...all]);
    expect([get.code, get.stdout]).toEqual([0, 'hello\n']);
    await cluster.waitForApplied(follower, (await cluster.waitForLeader(10_000)).view.commit);
    const onFollower = await cli(['kv', 'get', 'greeting', '--follower', '--cluster', formatEndpoint(cluster.endpoint(follower))]);
    expect([onFollower.code, onFollower.stdout]).toEqual([0, 'hello\n']);
    const casNo = await cli(['kv', 'cas', 'greeting', 'nope', 'x', ...all]);
    expect(casNo.code).toBe(1);
    expect(casNo.stdout).toContain('not swapped (current: "hello")');
    const casYes = await cli(['kv', 'cas', 'greeting', 'hello', 'hi', '--json', ...all]);
    expect(casYes.code).toBe(0);
    expect(JSON.parse(casYes.stdout)).toMatchObject({ swapped: true, current: 'hi' });
    await cli(['kv', 'put', 'other', 'o', ...all]);
    const range = await cli(['kv', 'range', 'a', 'z', ...all]);
    expect([range.code, range.stdout]).toEqual([0, 'greeting\thi\nother\to\n']);
    const del = await cli(['kv', 'del', 'other', ...all]);
    expect([del.code, del.stdout]).toEqual([0, 'deleted\n']);
    const gone = await cli(['kv', 'get', 'other', ...all]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("key 'other' not found");

    const table = await cli(['status', ...all]);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NODE\s+ADDRESS\s+ROLE\s+GEN\s+HWM/);
    const roles = lines.slice(1).map((l) => l.split(/\s+/)[2]);
    expect(roles.sort()).toEqual(['follower', 'follower', 'leader']);
    const json = await cli(['status', '--json', ...all]);
    const views = JSON.parse(json.stdout) as Array<{ id: string; role: string; peers: unknown[] }>;
    expect(views.map((v) => v.id).sort()).toEqual(cluster.ids());
    expect(views.find((v) => v.role === 'leader')?.peers).toHaveLength(2);

    await cluster.kill(follower);
    const partial = await cli(['status', ...all]);
    expect(partial.code).toBe(0);
    expect(partial.stdout).toContain('unreachable');

    const metrics = await cluster.metrics(leader.id);
    expect(sampleValue(metrics, 'tidemark_role{role="leader"}')).toBe(1);
    expect(sampleValue(metrics, 'tidemark_generation')).toBe(leader.view.generation);
    expect(sampleValue(metrics, 'tidemark_high_water_mark')).toBeGreaterThanOrEqual(5);
    expect(sampleValue(metrics, 'tidemark_commands_applied_total')).toBeGreaterThanOrEqual(5);
    expect(metrics).toMatch(/^tidemark_peer_lag_entries\{peer="n\d"\} \d+$/m);
    expect(metrics).toMatch(/^tidemark_persist_seconds_bucket\{le="\+Inf"\} [1-9]\d*$/m);
    expect(metrics).toMatch(/^tidemark_wal_sync_seconds_count [1-9]\d*$/m);
  });
});
