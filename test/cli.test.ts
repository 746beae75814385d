import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Wal } from '../lib/index';
import { demoRecord, seededRandom } from '../lib/cli/demo';
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
    const badRecords = await cli(['demo', '--records', 'lots']);
    expect(badRecords.code).toBe(2);
    expect(badRecords.stderr).toContain('--records must be a whole number');
    const unknownBench = await cli(['bench', 'nothing']);
    expect(unknownBench.code).toBe(2);
    expect(unknownBench.stderr).toContain("unknown benchmark 'nothing'");
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
