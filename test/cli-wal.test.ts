// `tidemark wal verify` and `tidemark wal dump`, run as the shipped binary
// (dist/cli/main.js, built by `npm test` before the tests).
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Wal } from '../lib/index';
import { frames, payload, segmentFiles, tempDir } from './log/helpers';

const root = path.join(__dirname, '..');
const bin = path.join(root, 'dist', 'cli', 'main.js');
const SMALL = { segmentBytes: 64 * 1024 };

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run npm run build:ts (npm test does)`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function digest(dir: string): string {
  const h = createHash('sha256');
  for (const name of fs.readdirSync(dir).sort()) h.update(name).update(fs.readFileSync(path.join(dir, name)));
  return h.digest('hex');
}

async function makeLog(records: number): Promise<string> {
  const dir = tempDir('tidemark-cli-wal-');
  const wal = await Wal.open(dir, SMALL);
  for (let i = 1; i <= records; i++) await wal.append(payload(i, 5));
  await wal.close();
  return dir;
}

/** Flips a payload byte of a record (with a payload) in segment `n`; returns the file and the record. */
function damage(dir: string, n: number): { file: string; index: number; offset: number } {
  const file = segmentFiles(dir)[n] as string;
  const record = frames(file).filter((f) => f.kind === 'record' && f.length > 0)[1];
  if (record === undefined) throw new Error('no record to damage');
  const bytes = fs.readFileSync(file);
  bytes[record.offset + 16] = (bytes[record.offset + 16] as number) ^ 1;
  fs.writeFileSync(file, bytes);
  return { file, index: record.index, offset: record.offset };
}

describe('tidemark wal verify', () => {
  it('a sound log: every segment with its index range, exit 0, nothing written', async () => {
    const dir = await makeLog(300);
    const before = digest(dir);
    const r = await run(['wal', 'verify', dir]);
    expect(r.code, r.stderr).toBe(0);
    const files = segmentFiles(dir);
    expect(files.length).toBeGreaterThan(2);
    for (const f of files) expect(r.stdout).toContain(`${path.basename(f)}  indexes `);
    expect(r.stdout).toMatch(new RegExp(`ok: indexes 1\\.\\.300 in ${files.length} segments, every checksum verified`));
    expect(digest(dir)).toBe(before);
  });

  it('damage in a middle segment: exit 1, the file, offset and index named; the segments after it are still checked', async () => {
    const dir = await makeLog(300);
    const d = damage(dir, 1);
    const r = await run(['wal', 'verify', dir]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toContain(`${path.basename(d.file)}  indexes ${Number(path.basename(d.file).slice(0, 20))}..${d.index - 1}`);
    expect(r.stdout).toContain(`DAMAGED at offset ${d.offset} (index ${d.index} on cannot be read)`);
    expect(r.stdout).toMatch(/DAMAGED: readable indexes 1\.\.\d+/);
    const json = await run(['wal', 'verify', dir, '--json']);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as { ok: boolean; lastIndex: number; segments: Array<{ file: string; status: string; lastIndex: number }> };
    expect(report.ok).toBe(false);
    expect(report.lastIndex).toBe(d.index - 1);
    expect(report.segments.map((s) => s.file)).toEqual(segmentFiles(dir).map((f) => path.basename(f)));
    expect(report.segments.map((s) => s.status)).toEqual(report.segments.map((s) => (s.file === path.basename(d.file) ? 'damaged' : 'ok')));
    expect(report.segments[report.segments.length - 1]?.lastIndex).toBe(300);
    // Two damaged segments: both reported.
    const d2 = damage(dir, 3);
    const two = JSON.parse((await run(['wal', 'verify', dir, '--json'])).stdout) as typeof report;
    expect(two.segments.filter((s) => s.status === 'damaged').map((s) => s.file)).toEqual([path.basename(d.file), path.basename(d2.file)]);
  });

  it('a torn tail is reported but is not damage (exit 0), and left in place', async () => {
    const dir = await makeLog(5);
    const wal = await Wal.open(dir, SMALL);
    await wal.appendMany(Array.from({ length: 6 }, (_, k) => Buffer.alloc(700, k + 1)));
    await wal.close();
    const file = segmentFiles(dir)[0] as string;
    const last = frames(file).filter((f) => f.kind === 'header').pop();
    if (last === undefined) throw new Error('no batch header');
    const bytes = fs.readFileSync(file);
    bytes.fill(0, last.offset + 512, last.offset + last.length);
    fs.writeFileSync(file, bytes);
    const before = digest(dir);
    const r = await run(['wal', 'verify', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`torn tail at offset ${last.offset}`);
    expect(r.stdout).toContain('ok: indexes 1..5 in 1 segment,');
    expect(digest(dir)).toBe(before);
  });

  it('runs beside a live writer (no lock taken)', async () => {
    const dir = await makeLog(50);
    const wal = await Wal.open(dir, SMALL);
    const writing = (async () => {
      for (let i = 51; i <= 400; i++) await wal.append(payload(i, 5));
    })();
    const r = await run(['wal', 'verify', dir]);
    await writing;
    await wal.close();
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ok: indexes 1\.\.\d+ in/);
  });

  it('usage errors exit 2: no directory, an unknown option, a directory that holds no log', async () => {
    for (const args of [['wal', 'verify'], ['wal', 'verify', '/tmp', '--bogus'], ['wal'], ['wal', 'fix', '/tmp']]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^tidemark: wal/);
    }
    const empty = tempDir('tidemark-cli-wal-empty-');
    const r = await run(['wal', 'verify', empty]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no log/);
    const stray = tempDir('tidemark-cli-wal-stray-');
    fs.writeFileSync(path.join(stray, 'photo.jpg'), 'x');
    expect((await run(['wal', 'dump', stray])).stderr).toMatch(/"photo\.jpg"/);
  });
});

describe('tidemark wal dump', () => {
  it('prints records --from..--to, as text or JSON lines with the bytes in base64', async () => {
    const dir = await makeLog(40);
    const text = await run(['wal', 'dump', dir, '--from', '10', '--to', '12']);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines.map((l) => l.split('\t')[0])).toEqual(['10', '11', '12']);
    expect(lines[0]?.split('\t')[1]).toBe(String(payload(10, 5).length));
    expect(lines[0]?.split('\t')[2]).toBe(payload(10, 5).subarray(0, 32).toString('hex') + (payload(10, 5).length > 32 ? '...' : ''));
    const json = await run(['wal', 'dump', dir, '--json']);
    expect(json.code).toBe(0);
    const records = json.stdout.trim().split('\n').map((l) => JSON.parse(l) as { index: number; length: number; data: string });
    expect(records.map((r) => r.index)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    for (const r of records) expect(Buffer.from(r.data, 'base64').equals(payload(r.index, 5))).toBe(true);
    expect((await run(['wal', 'dump', dir, '--from', 'x'])).code).toBe(2);
    expect((await run(['wal', 'dump', dir, '--from', '5', '--to', '4'])).code).toBe(2);
  });

  it('stops at damage: prints every record before it, says where it is, exit 1', async () => {
    const dir = await makeLog(300);
    const d = damage(dir, 2);
    const r = await run(['wal', 'dump', dir, '--json']);
    expect(r.code).toBe(1);
    const indexes = r.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { index: number }).index);
    expect(indexes).toEqual(Array.from({ length: d.index - 1 }, (_, i) => i + 1));
    expect(r.stderr).toContain(`stopped at index ${d.index}: damage in ${d.file} at offset ${d.offset}`);
    // A range wholly before the damage is fine.
    expect((await run(['wal', 'dump', dir, '--to', String(d.index - 1)])).code).toBe(0);
  });
});
