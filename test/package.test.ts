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
