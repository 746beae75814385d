/**
 * `tidemark build-from-source`: compiles the addon inside the installed package, for a
 * platform the package has no prebuilt binary for.
 *
 * The package declares no install script (and `"gypfile": false`, so npm adds no implicit
 * `node-gyp rebuild` either): installing it runs nothing and needs no approval. Building
 * from source is therefore an explicit step: this command runs node-gyp (npm's bundled
 * copy, which every npm has) on the package's binding.gyp, with the node-addon-api headers
 * the tarball ships in native/node-addon-api/. It builds only the shipped addon
 * (build/Release/tidemark.node), never the test-only fault-injection addon, which needs
 * `TIDEMARK_TEST_ADDONS=1` (only `npm run build:native` in a checkout sets it).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Where node-gyp's command-line script is, in the order tried; the first that exists is used. */
export function nodeGypCandidates(packageRoot: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const candidates: string[] = [];
  // npm (and npx) tell their children where npm's own node-gyp is.
  if (env.npm_config_node_gyp) candidates.push(env.npm_config_node_gyp);
  // A checkout's devDependency.
  candidates.push(path.join(packageRoot, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  // npm's bundled copy, found from npm itself or from where node is installed.
  if (env.npm_execpath) candidates.push(path.join(path.dirname(env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates;
}

/** Options of {@link buildFromSource}. */
export interface BuildFromSourceOptions {
  /** The package directory holding binding.gyp. */
  packageRoot: string;
  /** Progress lines (node-gyp's own output goes to this process's stdout and stderr). */
  print: (line: string) => void;
}

/** Builds build/Release/tidemark.node; returns the exit code (0 built, 1 failed). */
export function buildFromSource(options: BuildFromSourceOptions): number {
  const { packageRoot, print } = options;
  if (!fs.existsSync(path.join(packageRoot, 'binding.gyp'))) {
    print(`build-from-source: ${packageRoot} has no binding.gyp; this command builds an installed tidemark package`);
    return 1;
  }
  const gyp = nodeGypCandidates(packageRoot).find((file) => fs.existsSync(file));
  if (gyp === undefined) {
    print('build-from-source: node-gyp not found (npm ships it; run this command through npx, or install node-gyp)');
    return 1;
  }
  const env = { ...process.env };
  delete env.TIDEMARK_TEST_ADDONS;
  print(`build-from-source: building ${path.join(packageRoot, 'build', 'Release', 'tidemark.node')} with ${gyp} (needs a C++17 compiler, python3 and make)`);
  const run = spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: packageRoot, env, stdio: ['ignore', 'inherit', 'inherit'] });
  if (run.status !== 0) {
    print(`build-from-source: node-gyp failed (${run.signal !== null ? `signal ${run.signal}` : `exit code ${String(run.status)}`}); its output above says why`);
    return 1;
  }
  // Load it in a fresh process, so a binary that builds but does not load is reported here.
  const check = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(packageRoot, 'build', 'Release', 'tidemark.node'))})`], { encoding: 'utf8' });
  if (check.status !== 0) {
    print(`build-from-source: the built addon does not load: ${check.stderr.trim().split('\n')[0] ?? ''}`);
    return 1;
  }
  print('build-from-source: done; tidemark now loads build/Release/tidemark.node');
  return 0;
}
