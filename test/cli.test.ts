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

interface CliOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Run as this user and group (tests that need a permission error while running as root). */
  uid?: number;
  /** Called with the child once it is started. */
  onSpawn?: (child: ReturnType<typeof spawn>) => void;
  /** Called with the child once it prints `line` (a regex) on stdout. */
  onLine?: { match: RegExp; then: (child: ReturnType<typeof spawn>) => void };
}

/** Runs the CLI from source through tsx, as a user would run the built one. */
function cli(args: string[], timeoutOrOptions: number | CliOptions = 60_000): Promise<Run> {
  const options: CliOptions = typeof timeoutOrOptions === 'number' ? { timeoutMs: timeoutOrOptions } : timeoutOrOptions;
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.env === undefined ? {} : { env: options.env }),
      ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.uid }),
    });
    let stdout = '';
    let stderr = '';
    options.onSpawn?.(child);
    let seen = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
      if (!seen && options.onLine !== undefined && options.onLine.match.test(stdout)) {
        seen = true;
        options.onLine.then(child);
      }
    });
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
  it('--help lists the commands and exits 0, and sends package users to nothing that needs a checkout', async () => {
    const run = await cli(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage:');
    expect(run.stdout).toContain('tidemark demo wal');
    expect(run.stdout).toContain('tidemark bench fsync');
    expect(run.stdout).toContain('npx tidemark build-from-source');
    expect(run.stdout).not.toContain('demo-child');
    expect(run.stdout).not.toContain('npm run');
    const append = await cli(['bench', 'append']);
    expect(append.code).toBe(2);
    expect(append.stderr).not.toContain('npm run');
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
    expect(badRecords.stderr).toContain("Unknown option '--records'"); // the cluster demo has no --records
    const badRecordsWal = await cli(['demo', 'wal', '--records', 'lots']);
    expect(badRecordsWal.code).toBe(2);
    expect(badRecordsWal.stderr).toContain('--records must be a whole number');
    const unknownBench = await cli(['bench', 'nothing']);
    expect(unknownBench.code).toBe(2);
    expect(unknownBench.stderr).toContain("unknown benchmark 'nothing'");
  });

  it('demo wal --records 2000 crashes, recovers and verifies, exit 0', async () => {
    const run = await cli(['demo', 'wal', '--records', '2000', '--seed', '42'], 120_000);
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
    const repaired = Number(/(\d+) torn tails? repaired/.exec(run.stdout)?.[1] ?? -1);
    expect(repaired).toBeGreaterThanOrEqual(simulated);
  });

  it('demo wal with one round speaks in the singular where it should', async () => {
    const run = await cli(['demo', 'wal', '--records', '300', '--rounds', '1', '--seed', '7'], 120_000);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('1 round,');
    expect(run.stdout).toMatch(/^OK: 1 crash \(SIGKILL\)/m);
    expect(run.stdout).not.toMatch(/\b1 (rounds|crashes|segments|records|acks|torn tails|acknowledged records)\b/);
  });

  it('demo --resume fails (exit 1) when a record on disk does not match what was acknowledged', async () => {
    // Write a log whose record 3 has the wrong bytes, then resume the demo on it: it must notice.
    const dir = tempDir();
    try {
      const wal = await Wal.open(dir);
      await wal.append(demoRecord(1));
      await wal.append(demoRecord(2));
      await wal.append(Buffer.from('not the demo record for index 3'));
      await wal.close();
      const run = await cli(['demo', 'wal', '--records', '500', '--rounds', '1', '--dir', dir, '--resume'], 120_000);
      expect(run.code).toBe(1);
      expect(run.stdout).toContain('record 3 has the wrong bytes');
      expect(run.stdout).toContain('FAILED');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('demo refuses (exit 2) to write into a log that holds records, and leaves it alone', async () => {
    const dir = tempDir();
    try {
      const wal = await Wal.open(dir, { segmentBytes: 256 * 1024 });
      await wal.append(Buffer.from('my own data'));
      await wal.close();
      const before = Object.fromEntries(fs.readdirSync(dir).map((n) => [n, fs.readFileSync(path.join(dir, n))]));
      const run = await cli(['demo', 'wal', '--records', '500', '--dir', dir]);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/holds a log with 1 record;.*new or empty directory/);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stdout).toBe('');
      const after = Object.fromEntries(fs.readdirSync(dir).map((n) => [n, fs.readFileSync(path.join(dir, n))]));
      expect(after).toEqual(before);
      const other = tempDir();
      fs.writeFileSync(path.join(other, 'notes.txt'), 'x');
      const notLog = await cli(['demo', 'wal', '--dir', other]);
      fs.rmSync(other, { recursive: true, force: true });
      expect(notLog.code).toBe(2);
      expect(notLog.stderr).toContain('is not empty and holds no tidemark log (1 entry)');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('demo on a log another process holds says TM_LOCKED (exit 1), not that data was lost', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, { segmentBytes: 256 * 1024 });
    try {
      const run = await cli(['demo', 'wal', '--records', '500', '--dir', dir]);
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('TM_LOCKED');
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stdout + run.stderr).not.toContain('lost');
      // The child (what runs each round) reports the cause the same way.
      const child = await cli(['demo-child', '--dir', dir, '--records', '10', '--segment-bytes', String(256 * 1024)]);
      expect(child.code).toBe(1);
      expect(child.stdout).toMatch(/^fatal TM_LOCKED: /m);
    } finally {
      await wal.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('invalid --dir values: one clear line, exit 2, no stack trace, and /proc does not spin', async () => {
    const dir = tempDir();
    try {
      const file = path.join(dir, 'file');
      fs.writeFileSync(file, 'x');
      const cases: Array<[string[], RegExp]> = [
        [['demo', 'wal', '--dir', file], /--dir .*file is not a directory/],
        [['demo', 'wal', '--dir', path.join(file, 'below')], /ENOTDIR/],
        [['demo', 'wal', '--dir='], /--dir must not be empty/],
        [['demo', 'wal', '--dir', '/proc/tidemark-cli-test'], /cannot create --dir \/proc\/tidemark-cli-test: ENOENT/],
        [['bench', 'fsync', '--dir', file], /is not an existing directory/],
        [['demo', 'wal', '--resume'], /--resume needs --dir/],
      ];
      for (const [args, message] of cases) {
        const run = await cli(args, 30_000);
        expect(run.code, args.join(' ')).toBe(2);
        expect(run.stderr).toMatch(message);
        expect(run.stderr.trim().split('\n'), run.stderr).toHaveLength(1);
        expect(run.stderr).not.toMatch(/^\s+at /m);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(typeof process.getuid !== 'function' || process.getuid() !== 0)('a --dir the user may not write: EACCES in one line, exit 2 (run as nobody)', async () => {
    const dir = tempDir();
    try {
      fs.chmodSync(dir, 0o755); // root's, readable but not writable by nobody
      const below = await cli(['demo', 'wal', '--dir', path.join(dir, 'sub')], { uid: 65534 });
      expect(below.code).toBe(2);
      expect(below.stderr).toMatch(/^tidemark: demo: cannot create --dir .*sub: EACCES/);
      const itself = await cli(['demo', 'wal', '--dir', dir], { uid: 65534 });
      expect(itself.code).toBe(2);
      expect(itself.stderr).toMatch(/^tidemark: demo: --dir .* is not writable: EACCES/);
      const bench = await cli(['bench', 'fsync', '--dir', dir], { uid: 65534 });
      expect(bench.code).toBe(2);
      expect(bench.stderr).toContain('EACCES');
      for (const run of [below, itself, bench]) expect(run.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('Ctrl-C (SIGINT) in the demo and SIGTERM in bench fsync remove their scratch files', async () => {
    // A private temp directory for the CLI (os.tmpdir() follows TMPDIR): it must be empty afterwards.
    const tmp = tempDir();
    try {
      const env = { ...process.env, TMPDIR: tmp };
      // The demo: interrupt while a child appends (records enough that it is never done in time).
      const demo = await cli(['demo', 'wal', '--records', '200000', '--rounds', '100'], {
        env,
        timeoutMs: 60_000,
        onLine: { match: /^tidemark demo: log in /m, then: (child) => setTimeout(() => child.kill('SIGINT'), 1500) },
      });
      expect(demo.code).toBe(130);
      expect(demo.stderr).toMatch(/interrupted \(SIGINT\); removed .*tidemark-demo-/);
      expect(fs.readdirSync(tmp).filter((n) => n.startsWith('tidemark-'))).toEqual([]);
      // bench fsync in its own temp directory, then in a --dir: its 64 MiB scratch files go too.
      for (const args of [['bench', 'fsync'], ['bench', 'fsync', '--dir', tmp]]) {
        let proc: ReturnType<typeof spawn> | undefined;
        const started = cli(args, { env, timeoutMs: 60_000, onSpawn: (c) => (proc = c) });
        // Wait until the scratch file is there, then stop it.
        const deadline = Date.now() + 30_000;
        const scratch = (): string[] => fs.readdirSync(tmp, { recursive: true }).map(String).filter((n) => n.includes('tidemark-fsync'));
        while (scratch().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        expect(scratch().length, args.join(' ')).toBeGreaterThan(0);
        proc?.kill('SIGTERM');
        const run = await started;
        expect(run.code, run.stderr).toBe(143);
        expect(run.stderr).toContain('interrupted (SIGTERM)');
        expect(scratch()).toEqual([]);
      }
      expect(fs.readdirSync(tmp).filter((n) => n.startsWith('tidemark-'))).toEqual([]);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
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
