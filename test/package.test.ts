// The built package loads from both module systems on Node 20, as one copy.
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchResult } from '../lib/cli/replicate';

const root = join(__dirname, '..');
const built = existsSync(join(root, 'dist', 'index.js')) && existsSync(join(root, 'dist', 'index.mjs'));

describe('package entry points', () => {
  it('dist/ is built (run `npm run build` first)', () => {
    expect(built).toBe(true);
  });

  it('require("tidemark") gives the typed surface', () => {
    const out = execFileSync(process.execPath, ['-e', `
      const tm = require(${JSON.stringify(root)});
      const buf = Buffer.from('123456789');
      console.log(JSON.stringify({ crc: tm.crc32c(buf), err: new tm.TidemarkError('TM_IO', 'x').code }));
    `], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ crc: 0xe3069283, err: 'TM_IO' });
  });

  it('import { ... } from "tidemark" gives the same objects as require', () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
      import { createRequire } from 'node:module';
      import { crc32c, TidemarkError } from ${JSON.stringify(join(root, 'dist', 'index.mjs'))};
      const cjs = createRequire(import.meta.url)(${JSON.stringify(root)});
      console.log(JSON.stringify({ crc: crc32c(Buffer.from('123456789')), same: cjs.TidemarkError === TidemarkError }));
    `], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ crc: 0xe3069283, same: true });
  });

  it('self-reference by package name resolves through the exports map', () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `
      import { ErrorCodes } from 'tidemark';
      console.log(ErrorCodes.CORRUPTION);
    `], { encoding: 'utf8', cwd: root });
    expect(out.trim()).toBe('TM_CORRUPTION');
  });
});

const quietNpm = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
  delete env.TIDEMARK_TEST_ADDONS;
  return env;
};

/** `npm pack` of the package directory `pkg` into `dest` (no prepack: the caller prepared `pkg`); the tarball and its file list. */
function pack(pkg: string, dest: string, env: NodeJS.ProcessEnv): { tarball: string; files: string[] } {
  const packed = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dest], { cwd: pkg, encoding: 'utf8', env });
  const [info] = JSON.parse(packed) as Array<{ filename: string; files: Array<{ path: string }> }>;
  return { tarball: join(dest, info!.filename), files: info!.files.map((f) => f.path) };
}

/** A fresh project in `app` with the tarball installed as a user installs it (--offline: the package has no dependency). */
function installInto(app: string, tarball: string, env: NodeJS.ProcessEnv): ReturnType<typeof spawnSync> {
  cpSync(join(root, 'test', 'fixtures', 'app-package.json'), join(app, 'package.json'));
  return spawnSync('npm', ['install', '--offline', '--strict-allow-scripts', tarball], { cwd: app, encoding: 'utf8', env });
}

// What installing tidemark gives a user: the packed tarball, installed with npm's strictest
// script policy (--strict-allow-scripts fails on any install script not approved) and
// --offline (the package has no dependency, so nothing is fetched: this passes with an
// empty npm cache), must install with no script and no warning and load its prebuilt
// binary; with the binary gone it must say exactly what to do, and that command must
// build a working addon (and only the shipped one) inside the user's node_modules.
describe('packed package', () => {
  it('installs with no script, runs on its prebuilt binary; a missing binary says what to do, and that works', { timeout: 600_000 }, async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tidemark-pack-'));
    const quiet = quietNpm();
    try {
      const pkg = join(tmp, 'pkg');
      for (const f of ['package.json', 'binding.gyp', 'README.md', 'native', 'dist']) cpSync(join(root, f), join(pkg, f), { recursive: true });
      rmSync(join(pkg, 'native', 'node-addon-api'), { recursive: true, force: true });
      // Exactly what `prepack` runs for the host: vendor the headers, then `npm run prebuilds`
      // (scripts/prebuild.sh, a scratch-copy build; the working tree's build/ is left alone).
      symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'));
      execFileSync(process.execPath, [join(pkg, 'native', 'napi-include.js'), '--vendor'], { cwd: pkg, stdio: 'pipe' });
      rmSync(join(pkg, 'node_modules'));
      const rootBuild = (): string[] =>
        readdirSync(join(root, 'build', 'Release')).filter((n) => n.startsWith('tidemark')).sort().map((n) => `${n} ${statSync(join(root, 'build', 'Release', n)).mtimeMs}`);
      const before = rootBuild();
      execFileSync('bash', [join(root, 'scripts', 'prebuild.sh'), pkg], { cwd: root, env: quiet, stdio: 'pipe' });
      // The working tree's build/ (the host addon and the test-only one the tests load) is untouched.
      expect(rootBuild()).toEqual(before);
      expect(before.some((n) => n.startsWith('tidemark.node '))).toBe(true);
      expect(readdirSync(join(pkg, 'prebuilds', `${process.platform}-${process.arch}`))).toEqual(['tidemark.node']);
      expect(existsSync(join(pkg, 'build'))).toBe(false);

      const { tarball, files } = pack(pkg, tmp, quiet);
      expect(files).toContain(`prebuilds/${process.platform}-${process.arch}/tidemark.node`);
      expect(files).toContain('native/node-addon-api/napi.h');
      expect(files).toContain('binding.gyp');
      expect(files.some((f) => f.includes('faults'))).toBe(false);
      expect(files.some((f) => f.startsWith('build/') || f.startsWith('test/') || f.startsWith('bench/'))).toBe(false);

      const app = join(tmp, 'app');
      const install = installInto(app, tarball, quiet);
      expect(install.status, String(install.stderr)).toBe(0);
      // No script ran or was asked about: no allowScripts warning, no warning at all.
      expect(String(install.stderr) + String(install.stdout)).not.toMatch(/allowScripts|allow-scripts|npm warn|gyp/i);
      const installed = join(app, 'node_modules', 'tidemark');
      // Nothing was compiled (npm adds `node-gyp rebuild` for a root binding.gyp unless "gypfile": false).
      expect(readdirSync(installed)).not.toContain('build');
      const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { scripts?: Record<string, string>; dependencies?: object; gypfile?: boolean };
      expect(manifest.scripts?.install).toBeUndefined();
      expect(manifest.scripts?.preinstall).toBeUndefined();
      expect(manifest.scripts?.postinstall).toBeUndefined();
      expect(manifest.gypfile).toBe(false);
      expect(manifest.dependencies ?? {}).toEqual({});
      expect(readdirSync(join(app, 'node_modules')).filter((n) => !n.startsWith('.'))).toEqual(['tidemark']);

      const use = (walDir: string, text: string): { index: number; text: string } => {
        writeFileSync(join(app, 'use.js'), `
          const { Wal } = require('tidemark');
          (async () => {
            const wal = await Wal.open(${JSON.stringify(walDir)});
            const index = await wal.append(Buffer.from(${JSON.stringify(text)}));
            await wal.close();
            const again = await Wal.open(${JSON.stringify(walDir)});
            const text = (await again.read(index)).toString();
            await again.close();
            console.log(JSON.stringify({ index, text }));
          })().catch((err) => { console.error(err); process.exit(1); });
        `);
        return JSON.parse(execFileSync(process.execPath, ['use.js'], { cwd: app, encoding: 'utf8' })) as { index: number; text: string };
      };
      expect(use(join(app, 'wal1'), 'from the prebuilt binary')).toEqual({ index: 1, text: 'from the prebuilt binary' });

      rmSync(join(installed, 'prebuilds'), { recursive: true });
      const missing = execFileSync(process.execPath, ['-e', `
        try { require('tidemark').crc32c(Buffer.alloc(100)); console.log('loaded'); }
        catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })); }
      `], { cwd: app, encoding: 'utf8' });
      const err = JSON.parse(missing) as { code: string; message: string };
      expect(err.code).toBe('TM_NO_BINARY');
      expect(err.message).toContain('npx tidemark build-from-source');
      expect(err.message).toContain(join(installed, 'prebuilds', `${process.platform}-${process.arch}`, 'tidemark.node'));

      // The command the message names, run as it says, in the user's project.
      const built = spawnSync('npx', ['tidemark', 'build-from-source'], { cwd: app, encoding: 'utf8', env: quiet });
      expect(built.status, built.stdout + built.stderr).toBe(0);
      expect(built.stdout).toContain('build-from-source: done');
      expect(readdirSync(join(installed, 'build', 'Release')).filter((n) => n.includes('faults'))).toEqual([]);
      expect(existsSync(join(installed, 'build', 'Release', 'tidemark.node'))).toBe(true);
      expect(use(join(app, 'wal2'), 'from the source build')).toEqual({ index: 1, text: 'from the source build' });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

// `npx tidemark bench replicate` as a user who installed the package runs it: no dev
// dependency, no bench/ directory. The tidemark cluster and the Wal floor run; etcd and
// ZooKeeper, whose npm clients the project does not have, are reported as not measured
// with the reason, whether or not their programs are on this machine. The addon this
// checkout built stands in for the prebuild (the test above builds and checks that one):
// here the shipped CLI and its benchmark are under test.
describe('packed package: npx tidemark bench replicate', () => {
  it('--quick --json - runs the tidemark contestant from the installed package and prints the result as JSON', { timeout: 240_000 }, () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tidemark-pack-bench-'));
    const quiet = quietNpm();
    try {
      const pkg = join(tmp, 'pkg');
      for (const f of ['package.json', 'README.md', 'dist']) cpSync(join(root, f), join(pkg, f), { recursive: true });
      mkdirSync(join(pkg, 'prebuilds', `${process.platform}-${process.arch}`), { recursive: true });
      cpSync(join(root, 'build', 'Release', 'tidemark.node'), join(pkg, 'prebuilds', `${process.platform}-${process.arch}`, 'tidemark.node'));
      const { tarball, files } = pack(pkg, tmp, quiet);
      expect(files).toContain('dist/cli/replicate.js');
      expect(files).toContain('dist/cli/replicate/run.js');
      expect(files.some((f) => f.startsWith('bench/'))).toBe(false);
      const app = join(tmp, 'app');
      const install = installInto(app, tarball, quiet);
      expect(install.status, String(install.stderr)).toBe(0);
      expect(readdirSync(join(app, 'node_modules')).filter((n) => !n.startsWith('.'))).toEqual(['tidemark']);

      const svg = join(tmp, 'r.svg');
      const run = spawnSync('npx', ['tidemark', 'bench', 'replicate', '--quick', '--slice-seconds', '0.3', '--long-commands', '3000', '--json', '-', '--svg', svg], { cwd: app, encoding: 'utf8', env: quiet, timeout: 200_000 });
      expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
      const r = JSON.parse(run.stdout) as BenchResult;
      expect(r.mode).toBe('quick');
      expect(r.contestants.map((c) => c.name)).toEqual(['tidemark', 'etcd', 'zookeeper', 'wal-floor']);
      const info = (n: string) => r.contestants.find((c) => c.name === n);
      expect(info('tidemark')?.measured).toBe(true);
      expect(info('wal-floor')?.measured).toBe(true);
      expect(info('etcd')?.measured).toBe(false);
      expect(info('etcd')?.reason).toMatch(/npm package etcd3 .*not installed/);
      expect(info('zookeeper')?.measured).toBe(false);
      expect(info('zookeeper')?.reason).toMatch(/npm package node-zookeeper-client .*not installed/);
      expect(run.stderr).toContain('etcd: not measured (the npm package etcd3');
      // It sends a package user to nothing that needs a checkout of the repository.
      expect(run.stderr).not.toContain('npm run');
      // Latencies come from the exact recorder: hdr-histogram-js is not in the project either.
      expect(r.histogram).toMatch(/^exact/);
      for (const n of ['tidemark', 'wal-floor']) {
        const cells = r.cells.filter((c) => c.contestant === n);
        expect(cells.map((c) => `${c.valueBytes}x${c.clients}`).sort()).toEqual(['128x1', '128x16', '128x256', '4096x1', '4096x16', '4096x256']);
        for (const c of cells) {
          expect(c.commits).toBeGreaterThan(0);
          expect(c.p50Us).toBeGreaterThan(0);
          expect(c.p999Us).toBeGreaterThanOrEqual(c.p50Us);
        }
      }
      for (const c of r.cells.filter((x) => x.contestant === 'tidemark')) expect(Object.keys(c.nodeCpuPct).sort()).toEqual(['n1', 'n2', 'n3']);
      expect(r.failover.map((f) => f.contestant)).toEqual(['tidemark']);
      expect(r.failover[0]?.runs).toHaveLength(1);
      expect(r.failover[0]?.runs[0]?.writeGapMs).toBeGreaterThan(0);
      expect(r.memory.map((m) => [m.contestant, m.commands])).toEqual([['tidemark', 3000]]);
      expect(Object.keys(r.memory[0]?.rssAfterMb ?? {}).sort()).toEqual(['n1', 'n2', 'n3']);
      expect(r.targets.some((t) => t.target.startsWith('tidemark failover gap < 250 ms'))).toBe(true);
      const text = readFileSync(svg, 'utf8');
      expect(text.startsWith('<?xml')).toBe(true);
      for (const n of ['tidemark', 'wal-floor']) expect(text).toContain(`data-series="${n}"`);
      expect(text).toContain('<g id="failover"');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
