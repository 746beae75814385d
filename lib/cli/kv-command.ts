/**
 * `tidemark kv put|get|del|cas|range` and `tidemark status`: the replicated
 * key-value store and the cluster's state from the command line. Keys and values
 * are UTF-8 strings here. Exit codes: 0 done, 1 failed (or `get` found nothing,
 * or `cas` did not swap), 2 usage error.
 *
 * @packageDocumentation
 */
import { CliUsageError, clientTlsOptions, DEFAULT_CLUSTER_ID, formatEndpoint, integerOption, parseClusterList, parseOptions, resolveClientTls } from './cluster-args';
import { formatStatusTable, type StatusRow } from './status-table';
import { openKv, probeStatus } from './wiring';

const common = {
  cluster: { type: 'string' },
  'cluster-id': { type: 'string' },
  'timeout-ms': { type: 'string' },
  json: { type: 'boolean' },
  ...clientTlsOptions,
} as const;

/** Help lines for the cluster commands (merged into `tidemark --help`). */
export const clusterHelpText = `  tidemark node --id ID --dir DIR --listen HOST:PORT [--peer ID=HOST:PORT ...]
                [--cluster-id ID] [--metrics-port P] [--config FILE.json]
                [--tick-ms N] [--election-ticks N] [--heartbeat-ticks N] [--snapshot-entries N]
                [--log-level debug|info|warn|error]
                [--tls-cert FILE --tls-key FILE --tls-ca FILE [--require-client-cert]]
                [--max-pending-proposals N] [--max-pending-bytes N]
      Run one cluster member: JSON log lines on stdout, Prometheus metrics on
      http://HOST:P/metrics, clean shutdown on SIGTERM/SIGINT. The config file is a
      JSON object with the same settings (id, dir, listen, peers {"n2": "host:port"},
      clusterId, metricsPort, tickMs, electionTimeoutTicks, heartbeatTicks,
      snapshotEntries, logLevel, tlsCert, tlsKey, tlsCa, requireClientCert,
      maxPendingProposals, maxPendingBytes); flags win. Without the TLS files the
      node runs PLAIN TCP (a warning in its log); with them, mutual TLS, reloaded
      from the same files on SIGHUP.
  tidemark kv put KEY VALUE --cluster HOST:PORT,...
  tidemark kv get KEY [--follower] --cluster ...      (linearizable unless --follower)
  tidemark kv del KEY --cluster ...
  tidemark kv cas KEY EXPECTED NEW [--absent] --cluster ...   (--absent: swap only if KEY is absent)
  tidemark kv range [START] [END] [--limit N] --cluster ...
      Every kv command takes --timeout-ms (default 5000), --cluster-id (default tidemark) and --json.
      Against a TLS cluster: --tls-ca FILE [--tls-cert FILE --tls-key FILE] (kv and status).
  tidemark status --cluster HOST:PORT,... [--cluster-id ID] [--json]
      Role, generation, high-water mark, log range and lag per peer of every node.
  tidemark certs --dir DIR --nodes ID,ID,... [--clients NAME,...] [--days N]
      A CA (kept and reused if DIR has one) and a key and certificate per node (naming
      the node id) and per client, for --tls-*. Needs the openssl binary on PATH.
  tidemark demo [--seconds S] [--clients C] [--keep]
      Three node processes on loopback: a write load, SIGKILL of the leader, the
      election and write gap, every acknowledged write read back, the killed node
      restarted and caught up. Exit 0 only if every check passed.
`;

function print(json: boolean, human: string, obj: unknown): void {
  process.stdout.write(json ? JSON.stringify(obj) + '\n' : human + '\n');
}

/** `tidemark kv ...`; resolves with the exit code. */
export async function runKvCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const extra = {
    put: {},
    get: { follower: { type: 'boolean' } },
    del: {},
    cas: { absent: { type: 'boolean' } },
    range: { limit: { type: 'string' } },
  } as const;
  if (sub === undefined || !(sub in extra)) throw new CliUsageError(`kv: expected put, get, del, cas or range, got '${sub ?? ''}'`);
  const name = sub as keyof typeof extra;
  const { values, positionals } = parseOptions(rest, { ...common, ...extra[name] }, `kv ${name}`, true);
  const v = values as Record<string, string | boolean | undefined>;
  const cluster = parseClusterList(v.cluster as string | undefined);
  const timeoutMs = integerOption(v['timeout-ms'] as string | undefined, '--timeout-ms', 1, 3_600_000) ?? 5000;
  const json = v.json === true;
  const want = (n: number, usage: string) => {
    if (positionals.length !== n) throw new CliUsageError(`kv ${name}: usage: tidemark kv ${name} ${usage} --cluster HOST:PORT,...`);
  };
  const arg = (i: number) => positionals[i] as string;
  switch (name) {
    case 'put':
      want(2, 'KEY VALUE');
      break;
    case 'get':
    case 'del':
      want(1, 'KEY');
      break;
    case 'cas':
      if (v.absent === true) want(2, 'KEY NEW --absent');
      else want(3, 'KEY EXPECTED NEW');
      break;
    case 'range':
      if (positionals.length > 2) throw new CliUsageError('kv range: usage: tidemark kv range [START] [END] [--limit N]');
      break;
  }
  const tls = resolveClientTls(v as Record<string, string | undefined>);
  const kv = openKv(cluster, { timeoutMs, clusterId: (v['cluster-id'] as string | undefined) ?? DEFAULT_CLUSTER_ID, ...(tls === undefined ? {} : { tls }) });
  try {
    switch (name) {
      case 'put': {
        const r = await kv.put(arg(0), arg(1));
        print(json, `OK${r.index === undefined ? '' : ` (index ${r.index})`}`, { ok: true, ...r });
        return 0;
      }
      case 'get': {
        const r = await kv.get(arg(0), { follower: v.follower === true });
        if (r.value === null) {
          if (json) print(true, '', { found: false, ...r });
          else process.stderr.write(`tidemark: key '${arg(0)}' not found\n`);
          return 1;
        }
        print(json, r.value, { found: true, ...r });
        return 0;
      }
      case 'del': {
        const r = await kv.del(arg(0));
        print(json, r.existed === undefined ? 'OK' : r.existed ? 'deleted' : 'not found (nothing deleted)', { ok: true, ...r });
        return 0;
      }
      case 'cas': {
        const expected = v.absent === true ? null : arg(1);
        const next = v.absent === true ? arg(1) : arg(2);
        const r = await kv.cas(arg(0), expected, next);
        print(json, r.swapped ? 'swapped' : `not swapped (current: ${r.current === null || r.current === undefined ? 'absent' : JSON.stringify(r.current)})`, r);
        return r.swapped ? 0 : 1;
      }
      case 'range': {
        const limit = integerOption(v.limit as string | undefined, '--limit', 1, 1_000_000);
        const r = await kv.range(positionals[0] ?? '', positionals[1] ?? null, limit);
        if (json) print(true, '', r);
        else for (const [k, val] of r.entries) process.stdout.write(`${k}\t${val}\n`);
        return 0;
      }
    }
  } finally {
    await kv.close();
  }
}

/** `tidemark status ...`; resolves with the exit code (1 when no node answered). */
export async function runStatusCommand(args: string[]): Promise<number> {
  const { values } = parseOptions(args, common, 'status');
  const cluster = parseClusterList(values.cluster);
  const timeoutMs = integerOption(values['timeout-ms'], '--timeout-ms', 1, 3_600_000) ?? 2000;
  const tls = resolveClientTls(values);
  const rows: StatusRow[] = await Promise.all(
    cluster.map(async (e): Promise<StatusRow> => {
      try {
        return { address: formatEndpoint(e), view: await probeStatus(e, timeoutMs, values['cluster-id'] ?? DEFAULT_CLUSTER_ID, tls) };
      } catch (err) {
        return { address: formatEndpoint(e), error: err instanceof Error ? err.message : String(err) };
      }
    }),
  );
  if (values.json === true) process.stdout.write(JSON.stringify(rows.map((r) => ('view' in r ? { address: r.address, ...r.view } : r)), null, 2) + '\n');
  else process.stdout.write(formatStatusTable(rows) + '\n');
  return rows.some((r) => 'view' in r) ? 0 : 1;
}
