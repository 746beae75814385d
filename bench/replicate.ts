/**
 * `npm run bench:replicate -- [options of tidemark bench replicate] [--no-install]`: the
 * replication benchmark (lib/cli/replicate.ts, lib/cli/replicate/*: tidemark's three-node
 * cluster against etcd and ZooKeeper, the in-process Wal floor) as `npx tidemark bench
 * replicate` runs it, plus what the source repository has and the package does not:
 *
 * - etcd-server, zookeeper and default-jre-headless are installed with apt-get when missing
 *   and we are root (`--no-install`: never; the reason names the command);
 * - the npm clients (etcd3, node-zookeeper-client) and hdr-histogram-js come from
 *   bench/node_modules (bench/package.json, installed by bench/deps.sh);
 * - the nodes run the built CLI, dist/cli/main.js (`npm run build`).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { benchReplicateCommand } from '../lib/cli/replicate';
import { aptCommand } from '../lib/cli/replicate/run';

const args = process.argv.slice(2);
const noInstall = args.includes('--no-install');
const root = path.join(__dirname, '..');
const mainJs = path.join(root, 'dist', 'cli', 'main.js');

let aptUpdated = false;
/** Installs Debian packages when root and allowed; returns why not otherwise. */
function aptInstall(pkgs: readonly string[]): string | undefined {
  const cmd = aptCommand(pkgs);
  if (noInstall) return `missing; --no-install given (run: ${cmd})`;
  if (process.getuid?.() !== 0) return `missing; not root (run: sudo ${cmd})`;
  process.stderr.write(`\r\x1b[Kbench: installing ${pkgs.join(' ')} with apt-get (${cmd})\n`);
  try {
    if (!aptUpdated) execFileSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'] });
    aptUpdated = true;
    execFileSync('apt-get', ['install', '-y', ...pkgs], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    return undefined;
  } catch (err) {
    return `apt-get install ${pkgs.join(' ')} failed: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
  }
}

class UsageError extends Error {}

async function main(): Promise<number> {
  if (!fs.existsSync(mainJs)) {
    process.stderr.write('bench:replicate needs the built CLI: run `npm run build` first\n');
    return 2;
  }
  return benchReplicateCommand(
    args.filter((a) => a !== '--no-install'),
    (message) => new UsageError(message),
    { tidemarkCommand: [process.execPath, mainJs], moduleBases: [__dirname], install: aptInstall, command: 'bench:replicate' },
  );
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`bench:replicate: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
