// Wal.open creates its directory with a bounded mkdir -p (lib/log/mkdirp.ts): Node's
// recursive mkdir loops forever where the kernel answers ENOENT under an existing parent
// (procfs), which made `Wal.open('/proc/x')` and `tidemark demo --dir /proc/x` spin at
// 100 % CPU. Run in a child process with a timeout, so a spin fails instead of hanging.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeDirectories } from '../../lib/log/mkdirp';

const root = join(__dirname, '..', '..');

describe('Wal.open directory creation', () => {
  it.skipIf(process.platform !== 'linux')('under /proc: TM_IO with ENOENT, promptly', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', `
      const { Wal } = require('./lib/index.ts');
      Wal.open('/proc/tidemark-mkdirp-test/log').then(
        () => console.log('opened'),
        (err) => console.log(JSON.stringify({ code: err.code, errno: err.errno, message: err.message })),
      );
    `], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.signal, 'Wal.open did not settle within 60 s').toBeNull();
    const out = JSON.parse(r.stdout) as { code: string; errno: string; message: string };
    expect(out.code).toBe('TM_IO');
    expect(out.errno).toBe('ENOENT');
    expect(out.message).toContain('/proc/tidemark-mkdirp-test');
  });

  it('makeDirectories creates every missing level, reports the first, and is a no-op on an existing directory', async () => {
    const base = mkdtempSync(join(tmpdir(), 'tidemark-mkdirp-'));
    try {
      const leaf = join(base, 'a', 'b', 'c');
      expect(await makeDirectories(leaf)).toBe(join(base, 'a'));
      expect(statSync(leaf).isDirectory()).toBe(true);
      expect(await makeDirectories(leaf)).toBeUndefined();
      expect(await makeDirectories(join(base, 'a', 'd'))).toBe(join(base, 'a', 'd'));
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
