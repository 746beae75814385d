/**
 * `tidemark node`: one cluster member as a process. Runs a TidemarkNode over a
 * TcpTransport, logs JSON lines to stdout, serves Prometheus metrics on
 * `--metrics-port` when asked, re-reads its TLS files on SIGHUP (no restart; plain TCP
 * is warned about at start), and shuts down cleanly on SIGTERM or SIGINT (a
 * leader hands its leadership to a follower first; exit code 0; a second signal
 * exits at once with 1).
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatEndpoint, resolveNodeConfig } from './cluster-args';
import { jsonLogger } from './json-log';
import { renderPrometheus, serveMetrics } from './prometheus';
import { startNode } from './wiring';

/** Runs `tidemark node ARGS` until a signal; resolves with the exit code. */
export async function runNodeCommand(args: string[]): Promise<number> {
  const config = resolveNodeConfig(args);
  const logger = jsonLogger({ level: config.logLevel, bindings: { name: 'tidemark', node: config.id } });
  fs.mkdirSync(config.dir, { recursive: true });

  let metricsServer: http.Server | undefined;
  let fatal: ((err: unknown) => void) | undefined;
  const fatalError = new Promise<unknown>((resolve) => (fatal = resolve));
  const node = await startNode(config, logger, (err) => fatal?.(err));
  try {
    if (config.metricsPort !== undefined) {
      metricsServer = await serveMetrics(config.listen.host, config.metricsPort, () => renderPrometheus(node.metricFamilies()));
    }
  } catch (err) {
    logger.error({ err, metricsPort: config.metricsPort }, 'cannot serve metrics');
    await node.close();
    return 1;
  }
  logger.info(
    {
      listen: formatEndpoint(node.address()),
      peers: Object.fromEntries(config.peers.map((p) => [p.id, formatEndpoint(p.endpoint)])),
      clusterId: config.clusterId,
      dir: config.dir,
      tls: config.tls === undefined ? false : { requireClientCert: config.tls.requireClientCert },
      ...(metricsServer === undefined ? {} : { metricsPort: (metricsServer.address() as AddressInfo).port }),
    },
    'node started',
  );

  // SIGHUP: read the TLS files again (new connections use them; no restart).
  process.on('SIGHUP', () => {
    if (!node.tls) {
      logger.warn({ signal: 'SIGHUP' }, 'SIGHUP: this node runs plain TCP; no TLS material to reload');
      return;
    }
    try {
      node.reloadTls();
      logger.info({ signal: 'SIGHUP', cert: config.tls?.certFile }, 'TLS certificates reloaded');
    } catch (err) {
      logger.error({ signal: 'SIGHUP', err: err instanceof Error ? err.message : String(err) }, 'TLS reload failed; keeping the old certificates');
    }
  });
  if (!node.tls) logger.warn({ tls: false }, 'PLAIN TCP: nothing is encrypted and any connection may claim a peer id; use --tls-cert/--tls-key/--tls-ca off loopback');

  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    let count = 0;
    const on = (sig: NodeJS.Signals) => {
      count++;
      if (count > 1) {
        logger.warn({ signal: sig }, 'second signal: exiting at once');
        process.exit(1);
      }
      resolve(sig);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
  const reason = await Promise.race([signalled.then((signal) => ({ signal })), fatalError.then((err) => ({ err }))]);
  let code = 0;
  if ('signal' in reason) logger.info({ signal: reason.signal }, 'shutting down');
  else {
    logger.error({ err: reason.err }, 'fatal node error; shutting down');
    code = 1;
  }
  const started = performance.now();
  if (metricsServer !== undefined) {
    const s = metricsServer;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  try {
    await node.close();
  } catch (err) {
    logger.error({ err }, 'close failed');
    code = 1;
  }
  logger.info({ ms: Math.round(performance.now() - started) }, 'stopped');
  return code;
}
