/**
 * Dispatch of the cluster commands (`node`, `kv`, `status`, `certs`, `demo`) for lib/cli/main.ts,
 * kept apart so that main.ts only needs one hook. A usage error prints
 * `tidemark: ...` on stderr and exits with 2.
 *
 * @packageDocumentation
 */
import { CliUsageError, integerOption, parseOptions } from './cluster-args';
import { runCertsCommand } from './certs-command';
import { runClusterDemo } from './cluster-demo';
import { runKvCommand, runStatusCommand } from './kv-command';
import { runNodeCommand } from './node-command';

export { clusterHelpText } from './kv-command';

async function demo(args: string[], selfCommand: () => string[]): Promise<number> {
  const { values } = parseOptions(args, { seconds: { type: 'string' }, clients: { type: 'string' }, keep: { type: 'boolean' } }, 'demo');
  return runClusterDemo({
    selfCommand: selfCommand(),
    seconds: integerOption(values.seconds, '--seconds', 1, 3600) ?? 3,
    clients: integerOption(values.clients, '--clients', 1, 1024) ?? 16,
    keep: values.keep === true,
    print: (line) => process.stdout.write(line + '\n'),
    tty: process.stdout.isTTY === true,
  });
}

/**
 * Runs a cluster command, or returns undefined when `command` is not one
 * (`demo wal` is the WAL demo's, not ours).
 */
export function runClusterCli(command: string | undefined, args: string[], selfCommand: () => string[]): Promise<number> | undefined {
  let run: (() => Promise<number>) | undefined;
  if (command === 'node') run = () => runNodeCommand(args);
  else if (command === 'kv') run = () => runKvCommand(args);
  else if (command === 'status') run = () => runStatusCommand(args);
  else if (command === 'certs') run = () => runCertsCommand(args, (line) => process.stdout.write(line + '\n'));
  else if (command === 'demo' && args[0] !== 'wal') run = () => demo(args, selfCommand);
  if (run === undefined) return undefined;
  return run().catch((err: unknown) => {
    if (!(err instanceof CliUsageError)) throw err;
    process.stderr.write(`tidemark: ${err.message}\n`);
    return 2;
  });
}
