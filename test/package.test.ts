// The built package loads from both module systems on Node 20, as one copy.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
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

// What `npm install tidemark` gives a user: the packed tarball, installed with no
// install scripts (npm 11's default for dependencies) and no compiler step, must load
// its prebuilt binary; with the binary gone it must say exactly what to do.
describe('packed package', () => {
  it('installs without scripts and runs on its prebuilt binary; a missing binary says what to do', { timeout: 300_000 }, async () => {
    const { mkdtempSync, cpSync, rmSync, readdirSync, writeFileSync, symlinkSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const tmp = mkdtempSync(join(tmpdir(), 'tidemark-pack-'));
    try {
      const pkg = join(tmp, 'pkg');
      for (const f of ['package.json', 'binding.gyp', 'README.md', 'native', 'dist']) cpSync(join(root, f), join(pkg, f), { recursive: true });
      symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'));
      // Exactly what `npm run prebuilds` runs, in the copy (the working tree's build/ is left alone).
      execFileSync(process.execPath, [join(root, 'node_modules', 'prebuildify', 'bin.js'), '--napi', '--strip'], {
        cwd: pkg, env: { ...process.env, TIDEMARK_PREBUILD: '1' }, stdio: 'pipe',
      });
      rmSync(join(pkg, 'node_modules'));
      rmSync(join(pkg, 'build'), { recursive: true, force: true });
      expect(readdirSync(join(pkg, 'prebuilds', `${process.platform}-${process.arch}`))).toEqual(['tidemark.node']);

      const packed = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: pkg, encoding: 'utf8' });
      const [info] = JSON.parse(packed) as Array<{ filename: string; files: Array<{ path: string }> }>;
      const files = info!.files.map((f) => f.path);
      expect(files).toContain(`prebuilds/${process.platform}-${process.arch}/tidemark.node`);
      expect(files.some((f) => f.includes('faults') && f.endsWith('.node'))).toBe(false);
      expect(files.some((f) => f.startsWith('build/') || f.startsWith('test/'))).toBe(false);

      const app = join(tmp, 'app');
      cpSync(join(root, 'test', 'fixtures', 'app-package.json'), join(app, 'package.json'));
      execFileSync('npm', ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', join(tmp, info!.filename)], { cwd: app, stdio: 'pipe' });
      const installed = join(app, 'node_modules', 'tidemark');
      expect(readdirSync(installed)).not.toContain('build');

      writeFileSync(join(app, 'use.js'), `
        const { Wal, crc32c } = require('tidemark');
        (async () => {
          const wal = await Wal.open(${JSON.stringify(join(app, 'wal'))});
          const index = await wal.append(Buffer.from('from the prebuilt binary'));
          await wal.close();
          const again = await Wal.open(${JSON.stringify(join(app, 'wal'))});
          const text = (await again.read(index)).toString();
          await again.close();
          console.log(JSON.stringify({ index, text, crc: crc32c(Buffer.alloc(64 * 1024, 7)) }));
        })().catch((err) => { console.error(err); process.exit(1); });
      `);
      const used = JSON.parse(execFileSync(process.execPath, ['use.js'], { cwd: app, encoding: 'utf8' })) as { index: number; text: string; crc: number };
      expect(used.index).toBe(1);
      expect(used.text).toBe('from the prebuilt binary');

      rmSync(join(installed, 'prebuilds'), { recursive: true });
      const missing = execFileSync(process.execPath, ['-e', `
        try { require('tidemark').crc32c(Buffer.alloc(100)); console.log('loaded'); }
        catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })); }
      `], { cwd: app, encoding: 'utf8' });
      const err = JSON.parse(missing) as { code: string; message: string };
      expect(err.code).toBe('TM_NO_BINARY');
      expect(err.message).toContain('npm rebuild tidemark --build-from-source');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
