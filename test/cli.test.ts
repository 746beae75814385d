import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Wal } from '../lib/index';
import { demoRecord, seededRandom } from '../lib/cli/demo';
import { interpretFsync, type FsyncResult, FsyncModes } from '../lib/cli/fsync';
import { describeFilesystem, splitDeviceNumber } from '../lib/cli/fsinfo';

const root = path.join(__dirname, '..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI from source through tsx, as a user would run the built one. */
function cli(args: string[], timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-cli-test-'));
}

describe('tidemark CLI', () => {
  it('--help lists the commands and exits 0', async () => {
    const run = await cli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage:');
    expect(run.stdout).toContain('tidemark demo');
    expect(run.stdout).toContain('tidemark bench fsync');
    expect(run.stdout).not.toContain('demo-child');
  });

  it('--help after a command prints the help too', async () => {
    const run = await cli(['bench', 'fsync', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('tidemark bench fsync');
  });

  it('--version prints the package version', async () => {
    const run = await cli(['--version']);
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    expect(run.code).toBe(0);
    expect(run.stdout.trim()).toBe(pkg.version);
  });

  it('an unknown command exits 2 and says what is wrong', async () => {
    const run = await cli(['frobnicate']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("unknown command 'frobnicate'");
    expect(run.stdout).toBe('');
  });

  it('no command at all exits 2 with the usage', async () => {
    const run = await cli([]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('Usage:');
  });

  it('unknown options and bad values exit 2', async () => {
    const unknownOption = await cli(['bench', 'fsync', '--bogus']);
    expect(unknownOption.code).toBe(2);
    expect(unknownOption.stderr).toContain('--bogus');
    const badSeconds = await cli(['bench', 'fsync', '--seconds', '0']);
    expect(badSeconds.code).toBe(2);
    expect(badSeconds.stderr).toContain('--seconds must be a number above 0');
    const badRecords = await cli(['demo', '--records', 'lots']);
    expect(badRecords.code).toBe(2);
    expect(badRecords.stderr).toContain('--records must be a whole number');
    const unknownBench = await cli(['bench', 'nothing']);
    expect(unknownBench.code).toBe(2);
    expect(unknownBench.stderr).toContain("unknown benchmark 'nothing'");
  });

  it('bench fsync prints a table for every size and method, and cleans up', async () => {
    const dir = tempDir();
    try {
      const run = await cli(['bench', 'fsync', '--seconds', '0.2', '--dir', dir]);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('| size | method | writes | median µs | p99 µs | MB/s |');
      for (const size of ['512 B', '4 KiB', '64 KiB', '1 MiB']) {
        for (const mode of Object.values(FsyncModes)) {
          const line = run.stdout.split('\n').find((l) => l.startsWith(`| ${size} | ${mode} |`));
          expect(line, `${size} ${mode}`).toBeDefined();
          // writes, median, p99, MB/s are all numbers, median above zero.
          const cells = (line ?? '').split('|').map((s) => s.trim()).slice(3, 7).map(Number);
          expect(cells.every((n) => Number.isFinite(n))).toBe(true);
          expect(cells[1]).toBeGreaterThan(0);
        }
      }
      expect(run.stdout).toContain('Filesystem:');
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('demo --records 2000 crashes, recovers and verifies, exit 0', async () => {
    const run = await cli(['demo', '--records', '2000', '--seed', '42'], 120_000);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('seed 42');
    expect(run.stdout.match(/^round \d+: child killed by SIGKILL/gm)?.length).toBe(5);
    expect(run.stdout).toMatch(/^OK: 5 crashes/m);
    // Odd rounds put a sector prefix of a next batch past the tail before recovery (a torn
    // write); recovery must drop and zero it.
    const simulated = run.stdout.match(/simulated a torn write/g)?.length ?? 0;
    expect(simulated).toBeGreaterThanOrEqual(1);
    // (A SIGKILL in the middle of a large write can tear one for real, so at least as many.)
    const repaired = Number(/(\d+) torn tails repaired/.exec(run.stdout)?.[1] ?? -1);
    expect(repaired).toBeGreaterThanOrEqual(simulated);
  });

  it('demo fails (exit 1) when a record on disk does not match what was acknowledged', async () => {
    // Write a log whose record 3 has the wrong bytes, then run the demo on it: it must notice.
    const dir = tempDir();
    try {
      const wal = await Wal.open(dir);
      await wal.append(demoRecord(1));
      await wal.append(demoRecord(2));
      await wal.append(Buffer.from('not the demo record for index 3'));
      await wal.close();
      const run = await cli(['demo', '--records', '500', '--rounds', '1', '--dir', dir], 120_000);
      expect(run.code).toBe(1);
      expect(run.stdout).toContain('record 3 has the wrong bytes');
      expect(run.stdout).toContain('FAILED');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('demo records', () => {
  it('are a pure function of the index, start with it, and differ between indexes', () => {
    expect(demoRecord(7).equals(demoRecord(7))).toBe(true);
    expect(demoRecord(7).readBigUInt64LE(0)).toBe(7n);
    expect(demoRecord(7).equals(demoRecord(8))).toBe(false);
    const lengths = new Set(Array.from({ length: 200 }, (_, i) => demoRecord(i + 1).length));
    expect(Math.min(...lengths)).toBeGreaterThanOrEqual(16);
    expect(Math.max(...lengths)).toBeLessThanOrEqual(271);
    expect(lengths.size).toBeGreaterThan(50);
  });

  it('kill points replay from the seed', () => {
    const a = seededRandom(9);
    const b = seededRandom(9);
    const xs = [a(), a(), a()];
    expect([b(), b(), b()]).toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });
});

describe('fsync interpretation', () => {
  const base = (medianUs: number, growingUs: number, fsType: string, writeCache?: string): FsyncResult => ({
    fs: { dir: '/x', deviceNumber: '1:2', fsType, ...(writeCache === undefined ? {} : { writeCache, blockDevice: 'vdz' }) },
    prewriteSeconds: 0.1,
    rows: [
      { mode: FsyncModes.APPEND_FDATASYNC, bytes: 4096, iterations: 10, medianUs: growingUs, p99Us: growingUs * 2, mbPerS: 4096 / growingUs },
      { mode: FsyncModes.PREWRITTEN_FDATASYNC, bytes: 4096, iterations: 10, medianUs, p99Us: medianUs * 2, mbPerS: 4096 / medianUs },
      { mode: FsyncModes.PREWRITTEN_DSYNC, bytes: 4096, iterations: 10, medianUs, p99Us: medianUs * 2, mbPerS: 4096 / medianUs },
    ],
  });

  it('flags syncs that are too fast to be real', () => {
    expect(interpretFsync(base(8, 9, 'ext4'))).toContain('suspiciously fast');
    expect(interpretFsync(base(120, 250, 'ext4'))).not.toContain('suspiciously fast');
  });

  it('says when the growing file costs more, and when the disk has a volatile cache', () => {
    expect(interpretFsync(base(120, 250, 'ext4', 'write back'))).toMatch(/growing file costs 2\.1×/);
    expect(interpretFsync(base(120, 250, 'ext4', 'write back'))).toContain('volatile write cache');
    expect(interpretFsync(base(120, 125, 'ext4', 'write through'))).toContain('about the same');
  });

  it('says when the tail is so long that something else is using the disk', () => {
    const noisy = base(100, 110, 'ext4');
    const row = noisy.rows[1];
    if (row !== undefined) row.p99Us = 2000;
    expect(interpretFsync(noisy)).toContain('something else is using this device');
    expect(interpretFsync(base(100, 110, 'ext4'))).not.toContain('something else');
  });

  it('warns that tmpfs does not persist anything', () => {
    expect(interpretFsync(base(3, 3, 'tmpfs'))).toContain('tmpfs');
  });
});

describe('filesystem description', () => {
  it('splits device numbers like glibc', () => {
    expect(splitDeviceNumber(0xfe00)).toEqual({ major: 254, minor: 0 });
    expect(splitDeviceNumber(0x801)).toEqual({ major: 8, minor: 1 });
    // major 259 (NVMe partitions) and a minor above 255.
    expect(splitDeviceNumber((259 << 8) | 3 | (1 << 20))).toEqual({ major: 259, minor: 3 | (1 << 8) });
  });

  it.skipIf(process.platform !== 'linux')('finds the filesystem type of the temp directory', () => {
    const info = describeFilesystem(os.tmpdir());
    expect(info.fsType).toMatch(/^[a-z0-9.]+$/);
    expect(info.mountPoint).toBeDefined();
  });
});
