// The built package loads from both module systems on Node 20, as one copy.
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

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

// What installing tidemark gives a user: the packed tarball, installed with npm's strictest
// script policy (--strict-allow-scripts fails on any install script not approved) and
// --offline (the package has no dependency, so nothing is fetched: this passes with an
// empty npm cache), must install with no script and no warning and load its prebuilt
// binary; with the binary gone it must say exactly what to do, and that command must
// build a working addon (and only the shipped one) inside the user's node_modules.
describe('packed package', () => {
  it('installs with no script, runs on its prebuilt binary; a missing binary says what to do, and that works', { timeout: 600_000 }, async () => {
    const { mkdtempSync, cpSync, rmSync, readdirSync, readFileSync, writeFileSync, symlinkSync, existsSync: exists } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const tmp = mkdtempSync(join(tmpdir(), 'tidemark-pack-'));
    const quiet: NodeJS.ProcessEnv = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
    delete quiet.TIDEMARK_TEST_ADDONS;
    try {
      const pkg = join(tmp, 'pkg');
      for (const f of ['package.json', 'binding.gyp', 'README.md', 'native', 'dist']) cpSync(join(root, f), join(pkg, f), { recursive: true });
      rmSync(join(pkg, 'native', 'node-addon-api'), { recursive: true, force: true });
      // Exactly what `prepack` runs for the host: vendor the headers, then `npm run prebuilds`
      // (scripts/prebuild.sh, a scratch-copy build; the working tree's build/ is left alone).
      symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'));
      execFileSync(process.execPath, [join(pkg, 'native', 'napi-include.js'), '--vendor'], { cwd: pkg, stdio: 'pipe' });
      rmSync(join(pkg, 'node_modules'));
      const { statSync } = await import('node:fs');
      const rootBuild = (): string[] =>
        readdirSync(join(root, 'build', 'Release')).filter((n) => n.startsWith('tidemark')).sort().map((n) => `${n} ${statSync(join(root, 'build', 'Release', n)).mtimeMs}`);
      const before = rootBuild();
      execFileSync('bash', [join(root, 'scripts', 'prebuild.sh'), pkg], { cwd: root, env: quiet, stdio: 'pipe' });
      // The working tree's build/ (the host addon and the test-only one the tests load) is untouched.
      expect(rootBuild()).toEqual(before);
      expect(before.some((n) => n.startsWith('tidemark.node '))).toBe(true);
      expect(readdirSync(join(pkg, 'prebuilds', `${process.platform}-${process.arch}`))).toEqual(['tidemark.node']);
      expect(exists(join(pkg, 'build'))).toBe(false);

      const packed = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: pkg, encoding: 'utf8', env: quiet });
      const [info] = JSON.parse(packed) as Array<{ filename: string; files: Array<{ path: string }> }>;
      const files = info!.files.map((f) => f.path);
      expect(files).toContain(`prebuilds/${process.platform}-${process.arch}/tidemark.node`);
      expect(files).toContain('native/node-addon-api/napi.h');
      expect(files).toContain('binding.gyp');
      expect(files.some((f) => f.includes('faults'))).toBe(false);
      expect(files.some((f) => f.startsWith('build/') || f.startsWith('test/') || f.startsWith('bench/'))).toBe(false);

      const app = join(tmp, 'app');
      cpSync(join(root, 'test', 'fixtures', 'app-package.json'), join(app, 'package.json'));
      const install = spawnSync('npm', ['install', '--offline', '--strict-allow-scripts', join(tmp, info!.filename)], { cwd: app, encoding: 'utf8', env: quiet });
      expect(install.status, install.stderr).toBe(0);
      // No script ran or was asked about: no allowScripts warning, no warning at all.
      expect(install.stderr + install.stdout).not.toMatch(/allowScripts|allow-scripts|npm warn|gyp/i);
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
      expect(exists(join(installed, 'build', 'Release', 'tidemark.node'))).toBe(true);
      expect(use(join(app, 'wal2'), 'from the source build')).toEqual({ index: 1, text: 'from the source build' });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
