// The operator's way out of a damaged last batch (issue 8, WAL defect 7): where
// recovery cannot tell damage from a torn write (rows Q and R of
// native/recovery.cc) the open refuses; `repairTail: true` and `tidemark wal
// repair DIR` drop that batch explicitly and report exactly which indexes went
// (promise 3: nothing is dropped silently). Any other damage still fails.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Wal } from '../../lib/index';
import { SMALL, frames, payload, segmentFiles, tempDir, type Frame } from './helpers';

/** A closed log: three one-record batches, then one batch of four records (indexes 4..7). */
async function build(): Promise<{ dir: string; file: string; start: number }> {
  const dir = tempDir();
  const wal = await Wal.open(dir, SMALL);
  for (let i = 1; i <= 3; i++) await wal.append(payload(i));
  await wal.appendMany([Buffer.alloc(600, 4), Buffer.alloc(600, 5), Buffer.alloc(600, 6), Buffer.alloc(600, 7)]);
  await wal.close();
  const file = segmentFiles(dir).at(-1) as string;
  const hdr = frames(file).find((f) => f.kind === 'header' && f.index === 4) as Frame;
  return { dir, file, start: hdr.offset };
}

function flip(file: string, at: number): void {
  const b = readFileSync(file);
  b[at] = (b[at] ?? 0) ^ 0x10;
  writeFileSync(file, b);
}

function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const root = resolve(__dirname, '..', '..');
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', ...args], { cwd: root, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('repairTail: an explicit, reported drop of a damaged last batch', () => {
  it('row R damage: refused by default; with repairTail the batch 4..7 is dropped and reported, the rest kept', async () => {
    const b = await build();
    flip(b.file, b.start + 1024 + 100); // a payload byte in the batch's third sector
    await expect(Wal.open(b.dir, SMALL)).rejects.toMatchObject({ code: 'TM_CORRUPTION', path: b.file });
    const wal = await Wal.open(b.dir, { ...SMALL, repairTail: true });
    expect(wal.tailRepair).toMatchObject({ path: b.file, offset: b.start, firstIndex: 4, lastIndex: 7 });
    expect(wal.tailRepair?.reason).toMatch(/damaged last batch/);
    expect(wal.lastIndex).toBe(3);
    for (let i = 1; i <= 3; i++) expect((await wal.read(i)).equals(payload(i))).toBe(true);
    expect(await wal.append(Buffer.from('next'))).toBe(4);
    await wal.close();
    const again = await Wal.open(b.dir, SMALL);
    expect(again.tailRepair).toBeUndefined();
    expect(again.lastIndex).toBe(4);
    await again.close();
  });

  it('row Q damage (the header does not verify): dropped from index 4 on, lastIndex unknown (null)', async () => {
    const b = await build();
    flip(b.file, b.start + 20);
    await expect(Wal.open(b.dir, SMALL)).rejects.toMatchObject({ code: 'TM_CORRUPTION' });
    const wal = await Wal.open(b.dir, { ...SMALL, repairTail: true });
    expect(wal.tailRepair).toMatchObject({ firstIndex: 4, lastIndex: null, offset: b.start });
    expect(wal.lastIndex).toBe(3);
    await wal.close();
  });

  it('never applies elsewhere: damage with a later batch after it (row P) still fails, and nothing is changed', async () => {
    const b = await build();
    const rec2 = frames(b.file).find((f) => f.kind === 'record' && f.index === 2) as Frame;
    flip(b.file, rec2.offset + 20);
    const before = readFileSync(b.file);
    await expect(Wal.open(b.dir, { ...SMALL, repairTail: true })).rejects.toMatchObject({ code: 'TM_CORRUPTION', path: b.file });
    expect(readFileSync(b.file).equals(before)).toBe(true);
  });

  it('a healthy log (or a torn tail, dropped anyway): tailRepair is undefined', async () => {
    const b = await build();
    const wal = await Wal.open(b.dir, { ...SMALL, repairTail: true });
    expect(wal.tailRepair).toBeUndefined();
    expect(wal.lastIndex).toBe(7);
    await wal.close();
  });

  it('tidemark wal repair DIR prints exactly what it dropped; damage elsewhere exits 1 untouched', async () => {
    const b = await build();
    flip(b.file, b.start + 1024 + 100);
    const r = cli('wal', 'repair', b.dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('indexes 4..7');
    expect(r.stdout).toContain(b.file);
    const json = cli('wal', 'repair', b.dir, '--json');
    expect(json.status).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ dropped: null, firstIndex: 1, lastIndex: 3 });
    const c = await build();
    const rec2 = frames(c.file).find((f) => f.kind === 'record' && f.index === 2) as Frame;
    flip(c.file, rec2.offset + 20);
    const bad = cli('wal', 'repair', c.dir);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/TM_CORRUPTION/);
    expect(cli('wal', 'repair').status).toBe(2);
    expect(cli('wal', 'repair', join(c.dir, 'missing')).status).toBe(1);
  }, 60_000);
});
