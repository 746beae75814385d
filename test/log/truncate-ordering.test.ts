// Truncations issued in one JS turn with other operations: every argument is
// checked again on the writer thread, where the operation takes effect (issue 8,
// WAL defect 1), and reads issued after a truncation see its result (defect 3).
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Wal } from '../../lib/index';
import { SMALL, payload, tempDir } from './helpers';

async function fill(wal: Wal, n: number): Promise<void> {
  const ps: Promise<number>[] = [];
  for (let i = 1; i <= n; i++) ps.push(wal.appendMany([payload(i)]));
  await Promise.all(ps);
}

describe('truncations re-checked where they take effect', () => {
  it('truncateBefore(250) then truncateAfter(100) in one turn: truncateAfter rejects TM_OUT_OF_RANGE, nothing is lost', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await fill(wal, 300);
    const before = wal.truncateBefore(250);
    const after = wal.truncateAfter(100);
    await before;
    await expect(after).rejects.toMatchObject({ code: 'TM_OUT_OF_RANGE' });
    const first = wal.firstIndex;
    expect(first).toBeGreaterThan(101);
    expect(wal.lastIndex).toBe(300);
    // The log is not poisoned and left no intent record behind.
    expect(existsSync(join(dir, 'TRUNCATE'))).toBe(false);
    expect(await wal.append(payload(301))).toBe(301);
    await wal.close();
    const again = await Wal.open(dir, SMALL);
    expect(again.firstIndex).toBe(first);
    expect(again.lastIndex).toBe(301);
    for (let i = first; i <= 301; i++) expect((await again.read(i)).equals(payload(i)), `record ${i}`).toBe(true);
    await again.close();
  });

  it('appends issued after a rejected truncateAfter (numbered from its cut) reject too; numbering resumes after the log', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await fill(wal, 300);
    const before = wal.truncateBefore(250);
    const after = wal.truncateAfter(100);
    const numbered = wal.append(payload(101, 7)); // promised index 101
    await before;
    await expect(after).rejects.toMatchObject({ code: 'TM_OUT_OF_RANGE' });
    await expect(numbered).rejects.toMatchObject({ code: 'TM_OUT_OF_RANGE' });
    expect(await wal.append(payload(301))).toBe(301);
    await wal.close();
  });

  it('truncateAfter(250) then truncateBefore(251) in one turn: truncateBefore up to the cut log\'s next index is accepted', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await fill(wal, 300);
    const after = wal.truncateAfter(250);
    const before = wal.truncateBefore(251);
    await after;
    await before;
    expect(wal.lastIndex).toBe(250);
    await wal.close();
  });
});

describe('reads are ordered after truncations issued before them', () => {
  it('read(8) issued right after truncateAfter(5) rejects TM_OUT_OF_RANGE, never returns the dropped record', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await fill(wal, 12);
    const cut = wal.truncateAfter(5);
    const read = wal.read(8);
    await cut;
    await expect(read).rejects.toMatchObject({ code: 'TM_OUT_OF_RANGE' });
    expect((await wal.read(5)).equals(payload(5))).toBe(true);
    await wal.close();
  });

  it('read(8) issued after truncateAfter(5) and a new append 6..8 sees the new record 8', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await fill(wal, 12);
    const cut = wal.truncateAfter(5);
    const appended = wal.appendMany([payload(6, 1), payload(7, 1), payload(8, 1)]);
    await appended;
    const read = wal.read(8);
    await cut;
    expect((await read).equals(payload(8, 1))).toBe(true);
    await wal.close();
  });

  it('entries() started right after truncateAfter(5) yields only the kept records or rejects TM_OUT_OF_RANGE', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await fill(wal, 12);
    const cut = wal.truncateAfter(5);
    const seen: number[] = [];
    let error: unknown;
    try {
      for await (const { index, data } of wal.entries({ from: 1 })) {
        expect(data.equals(payload(index)), `record ${index}`).toBe(true);
        seen.push(index);
      }
    } catch (err) {
      error = err;
    }
    await cut;
    if (error !== undefined) expect(error).toMatchObject({ code: 'TM_OUT_OF_RANGE' });
    expect(seen.every((i) => i <= 5)).toBe(true);
    await wal.close();
  });

  it('read(3) issued right after truncateBefore drops its segment rejects TM_OUT_OF_RANGE', async () => {
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await fill(wal, 300);
    const cut = wal.truncateBefore(250);
    const read = wal.read(3);
    await cut;
    expect(wal.firstIndex).toBeGreaterThan(3);
    await expect(read).rejects.toMatchObject({ code: 'TM_OUT_OF_RANGE' });
    await wal.close();
  });

  it('read(10) and entries() issued after truncateAfter(250) and before close() return the kept record or reject TM_CLOSED', async () => {
    // The read waits for the truncation's report; close() may be done by then and
    // have released the segments: that is TM_CLOSED, not TM_OUT_OF_RANGE.
    const dir = tempDir();
    const wal = await Wal.open(dir, SMALL);
    await fill(wal, 300);
    const cut = wal.truncateAfter(250);
    const read = wal.read(10).then(
      (data) => ({ ok: true as const, data }),
      (err: { code?: string }) => ({ ok: false as const, code: err.code }),
    );
    const range = (async () => {
      const got: number[] = [];
      try {
        for await (const e of wal.entries({ from: 10, to: 20 })) got.push(e.index);
        return { ok: true as const, got };
      } catch (err) {
        return { ok: false as const, code: (err as { code?: string }).code, got };
      }
    })();
    const closed = wal.close();
    await cut;
    const r = await read;
    if (r.ok) expect(r.data.equals(payload(10))).toBe(true);
    else expect(r.code).toBe('TM_CLOSED');
    const e = await range;
    if (e.ok) expect(e.got).toEqual(Array.from({ length: 11 }, (_, i) => 10 + i));
    else expect(e.code).toBe('TM_CLOSED');
    await closed;
  });
});
