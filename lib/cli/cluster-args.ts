/**
 * Argument and config-file parsing for the cluster commands (`node`, `kv`, `status`):
 * endpoints, `--peer id=host:port`, `--cluster host:port,...`, and a node's config
 * merged from a JSON file and flags (flags win). Every bad value is a
 * {@link CliUsageError} (exit code 2) that names the option and the value.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { Endpoint } from '../net/api';

/** A usage error of a cluster command: the CLI prints its message and exits with 2. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
}

/** Parses `args` strictly against `options`; an unknown or malformed option is a {@link CliUsageError}. */
export function parseOptions<T extends Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>>(
  args: string[],
  options: T,
  command: string,
  positionals = false,
) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: positionals });
  } catch (err) {
    throw new CliUsageError(`${command}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const NODE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** A node id: 1 to 64 characters of letters, digits, `_`, `.`, `-`, not starting with a punctuation mark. */
export function parseNodeId(value: string, name: string): string {
  if (!NODE_ID_RE.test(value)) throw new CliUsageError(`${name} must be 1-64 letters, digits, '_', '.' or '-', got '${value}'`);
  return value;
}

/** `host:port` or `[v6addr]:port` → an {@link Endpoint}. */
export function parseEndpoint(value: string, name: string): Endpoint {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(value) ?? /^([^:\s]+):(\d+)$/.exec(value);
  if (m === null) throw new CliUsageError(`${name} must be HOST:PORT, got '${value}'`);
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CliUsageError(`${name}: port must be 1-65535, got '${value}'`);
  return { host: m[1] as string, port };
}

/** Formats an endpoint back to `host:port` (brackets around an IPv6 address). */
export function formatEndpoint(e: Endpoint): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

/** `id=host:port`. */
export function parsePeer(value: string): { id: string; endpoint: Endpoint } {
  const eq = value.indexOf('=');
  if (eq <= 0) throw new CliUsageError(`--peer must be ID=HOST:PORT, got '${value}'`);
  return { id: parseNodeId(value.slice(0, eq), '--peer id'), endpoint: parseEndpoint(value.slice(eq + 1), `--peer ${value.slice(0, eq)}`) };
}

/** `host:port,host:port,...` (at least one). */
export function parseClusterList(value: string | undefined, name = '--cluster'): Endpoint[] {
  if (value === undefined || value.trim() === '') throw new CliUsageError(`${name} is required: HOST:PORT[,HOST:PORT...]`);
  return value.split(',').map((s) => parseEndpoint(s.trim(), name));
}

/** A whole number in [min, max], or `fallback` when absent. */
export function integerOption(value: string | number | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const s = String(value);
  if (!/^\d+$/.test(s) || Number(s) < min || Number(s) > max) throw new CliUsageError(`${name} must be a whole number from ${min} to ${max}, got '${s}'`);
  return Number(s);
}

/** Log levels of the node's JSON lines (pino's numbers). */
export const LOG_LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;
/** One of {@link LOG_LEVELS}' names. */
export type LogLevelName = keyof typeof LOG_LEVELS;

/** Everything `tidemark node` needs, resolved. */
export interface NodeConfig {
  readonly id: string;
  readonly dir: string;
  readonly listen: Endpoint;
  readonly peers: ReadonlyArray<{ readonly id: string; readonly endpoint: Endpoint }>;
  readonly clusterId: string;
  readonly metricsPort: number | undefined;
  readonly tickMs: number | undefined;
  readonly electionTimeoutTicks: number | undefined;
  readonly heartbeatTicks: number | undefined;
  /** Take a snapshot every this many applied entries (node default when undefined). */
  readonly snapshotEntries: number | undefined;
  readonly logLevel: LogLevelName;
  /** Mutual TLS from PEM files (reloaded on SIGHUP); undefined: plain TCP. */
  readonly tls: NodeTlsFiles | undefined;
  /** Admission control (node defaults when undefined). */
  readonly maxPendingProposals: number | undefined;
  readonly maxPendingBytes: number | undefined;
}

/** Where a node's TLS material lives (absolute paths). */
export interface NodeTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
  readonly requireClientCert: boolean;
}

/** A client's TLS material (PEM contents), for `kv` and `status`. */
export interface ClientTlsPem {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
}

/** Client TLS flags shared by `kv` and `status`. */
export const clientTlsOptions = {
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
} as const;

function readPem(file: string, name: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliUsageError(`${name} ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** `--tls-ca FILE [--tls-cert FILE --tls-key FILE]` of a client command; undefined without `--tls-ca`. */
export function resolveClientTls(values: { 'tls-ca'?: string | undefined; 'tls-cert'?: string | undefined; 'tls-key'?: string | undefined }): ClientTlsPem | undefined {
  const { 'tls-ca': ca, 'tls-cert': cert, 'tls-key': key } = values;
  if ((cert === undefined) !== (key === undefined)) throw new CliUsageError('--tls-cert and --tls-key go together');
  if (ca === undefined) {
    if (cert !== undefined) throw new CliUsageError('--tls-cert needs --tls-ca (the CA that signed the nodes)');
    return undefined;
  }
  return {
    ca: readPem(ca, '--tls-ca'),
    ...(cert !== undefined && key !== undefined ? { cert: readPem(cert, '--tls-cert'), key: readPem(key, '--tls-key') } : {}),
  };
}

/** Default cluster id when neither `--cluster-id` nor the config file gives one. */
export const DEFAULT_CLUSTER_ID = 'tidemark';

/** Options of `tidemark node`, for `parseArgs`. */
export const nodeOptions = {
  id: { type: 'string' },
  dir: { type: 'string' },
  listen: { type: 'string' },
  peer: { type: 'string', multiple: true },
  'cluster-id': { type: 'string' },
  'metrics-port': { type: 'string' },
  config: { type: 'string' },
  'tick-ms': { type: 'string' },
  'election-ticks': { type: 'string' },
  'heartbeat-ticks': { type: 'string' },
  'snapshot-entries': { type: 'string' },
  'log-level': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  'require-client-cert': { type: 'boolean' },
  'max-pending-proposals': { type: 'string' },
  'max-pending-bytes': { type: 'string' },
} as const;

const CONFIG_KEYS = new Set([
  'id', 'dir', 'listen', 'peers', 'clusterId', 'metricsPort', 'tickMs', 'electionTimeoutTicks', 'heartbeatTicks', 'snapshotEntries', 'logLevel',
  'tlsCert', 'tlsKey', 'tlsCa', 'requireClientCert', 'maxPendingProposals', 'maxPendingBytes',
]);

/**
 * The config file: a JSON object with any of `id`, `dir` (relative to the file),
 * `listen` ("host:port"), `peers` ({ "n2": "host:port", ... }), `clusterId`,
 * `metricsPort`, `tickMs`, `electionTimeoutTicks`, `heartbeatTicks`, `snapshotEntries`, `logLevel`,
 * `tlsCert`, `tlsKey`, `tlsCa` (paths relative to the file), `requireClientCert` (boolean),
 * `maxPendingProposals`, `maxPendingBytes`.
 */
function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliUsageError(`--config ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CliUsageError(`--config ${file}: not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new CliUsageError(`--config ${file}: must hold a JSON object`);
  for (const key of Object.keys(parsed)) {
    if (!CONFIG_KEYS.has(key)) throw new CliUsageError(`--config ${file}: unknown key '${key}' (known: ${[...CONFIG_KEYS].join(', ')})`);
  }
  return parsed as Record<string, unknown>;
}

function configString(conf: Record<string, unknown>, key: string, file: string): string | undefined {
  const v = conf[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new CliUsageError(`--config ${file}: '${key}' must be a string`);
  return v;
}

function configNumber(conf: Record<string, unknown>, key: string, file: string): number | undefined {
  const v = conf[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number') throw new CliUsageError(`--config ${file}: '${key}' must be a number`);
  return v;
}

/** Resolves `tidemark node`'s flags (and `--config FILE`) into a {@link NodeConfig}. */
export function resolveNodeConfig(args: string[]): NodeConfig {
  const { values } = parseOptions(args, nodeOptions, 'node');
  const file = values.config === undefined ? undefined : path.resolve(values.config);
  const conf = file === undefined ? {} : readConfigFile(file);
  const f = file ?? '';

  const idRaw = values.id ?? configString(conf, 'id', f);
  if (idRaw === undefined) throw new CliUsageError('node: --id is required');
  const id = parseNodeId(idRaw, '--id');

  const confDir = configString(conf, 'dir', f);
  const dir = values.dir !== undefined ? path.resolve(values.dir) : confDir !== undefined && file !== undefined ? path.resolve(path.dirname(file), confDir) : undefined;
  if (dir === undefined) throw new CliUsageError('node: --dir is required');

  const listenRaw = values.listen ?? configString(conf, 'listen', f);
  if (listenRaw === undefined) throw new CliUsageError('node: --listen HOST:PORT is required');
  const listen = parseEndpoint(listenRaw, '--listen');

  let peers: { id: string; endpoint: Endpoint }[];
  if (values.peer !== undefined && values.peer.length > 0) {
    peers = values.peer.map(parsePeer);
  } else {
    const p = conf.peers;
    if (p === undefined) peers = [];
    else if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new CliUsageError(`--config ${f}: 'peers' must be an object { "id": "host:port" }`);
    else {
      peers = Object.entries(p).map(([pid, addr]) => {
        if (typeof addr !== 'string') throw new CliUsageError(`--config ${f}: peers.${pid} must be "host:port"`);
        return { id: parseNodeId(pid, `peers id`), endpoint: parseEndpoint(addr, `peers.${pid}`) };
      });
    }
  }
  const seen = new Set<string>([id]);
  for (const p of peers) {
    if (seen.has(p.id)) throw new CliUsageError(p.id === id ? `node: --peer ${p.id} is this node's own id` : `node: peer '${p.id}' given twice`);
    seen.add(p.id);
  }

  const clusterId = values['cluster-id'] ?? configString(conf, 'clusterId', f) ?? DEFAULT_CLUSTER_ID;
  if (clusterId.length === 0 || clusterId.length > 128) throw new CliUsageError(`--cluster-id must be 1-128 characters, got '${clusterId}'`);

  const pick = (flag: string | undefined, key: string) => flag ?? configNumber(conf, key, f);
  const logLevelRaw = values['log-level'] ?? configString(conf, 'logLevel', f) ?? 'info';
  if (!(logLevelRaw in LOG_LEVELS)) throw new CliUsageError(`--log-level must be one of ${Object.keys(LOG_LEVELS).join(', ')}, got '${logLevelRaw}'`);

  const confPath = (key: string): string | undefined => {
    const v = configString(conf, key, f);
    return v === undefined || file === undefined ? undefined : path.resolve(path.dirname(file), v);
  };
  const certFile = values['tls-cert'] !== undefined ? path.resolve(values['tls-cert']) : confPath('tlsCert');
  const keyFile = values['tls-key'] !== undefined ? path.resolve(values['tls-key']) : confPath('tlsKey');
  const caFile = values['tls-ca'] !== undefined ? path.resolve(values['tls-ca']) : confPath('tlsCa');
  const rcc = conf.requireClientCert;
  if (rcc !== undefined && typeof rcc !== 'boolean') throw new CliUsageError(`--config ${f}: 'requireClientCert' must be true or false`);
  const requireClientCert = values['require-client-cert'] ?? (rcc as boolean | undefined) ?? false;
  const tlsGiven = [certFile, keyFile, caFile].filter((x) => x !== undefined).length;
  if (tlsGiven !== 0 && tlsGiven !== 3) throw new CliUsageError('node: --tls-cert, --tls-key and --tls-ca go together (all three, or none for plain TCP)');
  if (tlsGiven === 0 && requireClientCert) throw new CliUsageError('node: --require-client-cert needs --tls-cert, --tls-key and --tls-ca');
  const tls = tlsGiven === 3 ? { certFile: certFile as string, keyFile: keyFile as string, caFile: caFile as string, requireClientCert } : undefined;

  return {
    id,
    dir,
    listen,
    peers,
    clusterId,
    metricsPort: integerOption(pick(values['metrics-port'], 'metricsPort'), '--metrics-port', 0, 65535),
    tickMs: integerOption(pick(values['tick-ms'], 'tickMs'), '--tick-ms', 1, 10_000),
    electionTimeoutTicks: integerOption(pick(values['election-ticks'], 'electionTimeoutTicks'), '--election-ticks', 2, 100_000),
    heartbeatTicks: integerOption(pick(values['heartbeat-ticks'], 'heartbeatTicks'), '--heartbeat-ticks', 1, 100_000),
    snapshotEntries: integerOption(pick(values['snapshot-entries'], 'snapshotEntries'), '--snapshot-entries', 1, 1_000_000_000),
    logLevel: logLevelRaw as LogLevelName,
    tls,
    maxPendingProposals: integerOption(pick(values['max-pending-proposals'], 'maxPendingProposals'), '--max-pending-proposals', 1, 10_000_000),
    maxPendingBytes: integerOption(pick(values['max-pending-bytes'], 'maxPendingBytes'), '--max-pending-bytes', 1, 2 ** 40),
  };
}
