// truncateAfter on a real full filesystem (a small tmpfs mounted for the test;
// needs root, skipped elsewhere): the TRUNCATE marker cannot be written, so the
// cut is rejected cleanly (TM_NOSPC) before any segment is touched, the log is
// not poisoned, and appends queued behind the cut (numbered from it) fail with it.
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Wal } from '../../lib/index';
import { canMountTmpfs, logOnFullDisk } from './helpers';

describe('truncateAfter on a full disk', () => {
  it.skipIf(!canMountTmpfs)('appends queued behind a rejected cut fail with it; numbering resumes after the kept log', async () => {
    const { wal, dir, free } = await logOnFullDisk();
    const cut = wal.truncateAfter(3);
    const behind = wal.append(Buffer.from('queued behind the cut'));
    const [c, b] = await Promise.allSettled([cut, behind]);
    expect(c).toMatchObject({ status: 'rejected', reason: { code: 'TM_NOSPC', errno: 'ENOSPC' } });
    // Either the append was queued before the writer took the cut (numbered 4 from the
    // cut: it must fail with it), or after the cut was rejected (numbered 6: it is kept).
    // Never a record 4 on top of an uncut log.
    if (b.status === 'rejected') expect(b.reason).toMatchObject({ code: 'TM_NOSPC' });
    else expect(b.value).toBe(6);
    const kept = b.status === 'fulfilled' ? 6 : 5;
    expect(wal.lastIndex).toBe(kept);
    expect(existsSync(join(dir, 'TRUNCATE'))).toBe(false);
    free();
    expect(await wal.append(Buffer.from('next'))).toBe(kept + 1);
    await wal.close();
    const again = await Wal.open(dir, { segmentBytes: 64 * 1024 });
    expect(again.lastIndex).toBe(kept + 1);
    for (let i = 1; i <= 5; i++) expect((await again.read(i)).equals(Buffer.alloc(100, i))).toBe(true);
    if (kept === 6) expect((await again.read(6)).toString()).toBe('queued behind the cut');
    expect((await again.read(kept + 1)).toString()).toBe('next');
    await again.close();
  });
});
