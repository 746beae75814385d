// The io_uring append path (native/log_uring.cc) and its fallback: the probe at open,
// `wal.io`, the typed error of `io: 'uring'` where io_uring is refused, and ordering of
// appends, truncations and reads issued in the same turn on the io_uring path. The crash
// tests (crash.test.ts, its io_uring variants) and the fault-layer, ENOSPC, truncation and
// group-commit tests (vitest.config.ts, project 'uring') run on both paths.
import { afterEach, describe, expect, it } from 'vitest';
import { constants } from 'node:os';
import { Wal, isTidemarkError } from '../../lib/index';
import { SMALL, faults, openFaulty, payload, powerLossAndReopen, segmentFiles, tempDir } from './helpers';

const { EIO } = constants.errno;

/** Whether this kernel lets a log use io_uring (CI may refuse it: those tests skip, saying so). */
const uringReason: Promise<string | undefined> = (async () => {
  const dir = tempDir('tidemark-uring-probe-');
  try {
    const wal = await Wal.open(dir, { ...SMALL, io: 'uring' });
    await wal.close();
    return undefined;
  } catch (err) {
    if (isTidemarkError(err, 'TM_URING_UNSUPPORTED')) return (err as Error).message;
    throw err;
  }
})();

async function needUring(ctx: { skip: (note?: string) => void }): Promise<void> {
  const reason = await uringReason;
  if (reason === undefined) return;
  if (process.env.TIDEMARK_REQUIRE_URING === '1') throw new Error(`TIDEMARK_REQUIRE_URING=1 but io_uring is refused: ${reason}`);
  ctx.skip(`io_uring refused here: ${reason}`);
}

function withEnv(name: string, value: string | undefined): () => void {
  const before = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  return () => {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
  };
}

let restore: Array<() => void> = [];
afterEach(() => {
  for (const r of restore.splice(0).reverse()) r();
  faults()('reset');
});

describe('io option and probe', () => {
  it("io: 'uring' uses io_uring where the kernel allows it; 'thread' never does", async (ctx) => {
    await needUring(ctx);
    const dir = tempDir();
    const wal = await Wal.open(dir, { ...SMALL, io: 'uring' });
    expect(wal.io).toBe('uring');
    expect(wal.options.io).toBe('uring');
    expect(await wal.append(Buffer.from('a'))).toBe(1);
    await wal.close();
    const t = await Wal.open(dir, { ...SMALL, io: 'thread' });
    expect(t.io).toBe('thread');
    expect((await t.read(1)).toString()).toBe('a');
    await t.close();
  });

  it("io: 'auto' falls back to the writer thread when the probe fails (forced), and works", async () => {
    restore.push(withEnv('TIDEMARK_URING_PROBE_FAIL', '1'));
    const dir = tempDir();
    const wal = await Wal.open(dir, { ...SMALL, io: 'auto' });
    expect(wal.io).toBe('thread');
    const ps = Array.from({ length: 50 }, (_, i) => wal.append(payload(i)));
    expect(await Promise.all(ps)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    await wal.close();
    const again = await Wal.open(dir, { ...SMALL, io: 'thread' });
    expect(again.lastIndex).toBe(50);
    await again.close();
  });

  it("io: 'auto' uses io_uring when the probe succeeds", async (ctx) => {
    await needUring(ctx);
    const wal = await Wal.open(tempDir(), { ...SMALL, io: 'auto' });
    expect(wal.io).toBe('uring');
    await wal.close();
  });

  it("io: 'uring' with a failing probe (forced) rejects the open with TM_URING_UNSUPPORTED and leaves the directory unlocked", async () => {
    restore.push(withEnv('TIDEMARK_URING_PROBE_FAIL', '1'));
    const dir = tempDir();
    const err = await Wal.open(dir, { ...SMALL, io: 'uring' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isTidemarkError(err, 'TM_URING_UNSUPPORTED'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/io_uring/);
    expect((err as Error).message).toMatch(/'auto' or 'thread'/);
    const wal = await Wal.open(dir, { ...SMALL, io: 'thread' }); // not TM_LOCKED
    expect(wal.io).toBe('thread');
    await wal.close();
  });

  it('TIDEMARK_IO sets the default path; an explicit io wins; bad values are TM_INVALID_ARGUMENT', async () => {
    restore.push(withEnv('TIDEMARK_URING_PROBE_FAIL', '1'));
    restore.push(withEnv('TIDEMARK_IO', 'uring'));
    await expect(Wal.open(tempDir(), SMALL)).rejects.toMatchObject({ code: 'TM_URING_UNSUPPORTED' });
    const wal = await Wal.open(tempDir(), { ...SMALL, io: 'thread' });
    expect(wal.io).toBe('thread');
    await wal.close();
    process.env.TIDEMARK_IO = 'fast';
    await expect(Wal.open(tempDir(), SMALL)).rejects.toMatchObject({ code: 'TM_INVALID_ARGUMENT', message: expect.stringMatching(/TIDEMARK_IO/) });
    delete process.env.TIDEMARK_IO;
    for (const io of ['uring ', 1, null, {}]) {
      await expect(Wal.open(tempDir(), { ...SMALL, io: io as never })).rejects.toMatchObject({
        code: 'TM_INVALID_ARGUMENT',
        message: expect.stringMatching(/options\.io must be one of 'auto', 'uring', 'thread'/),
      });
    }
  });

  it("read-only opens say io 'thread' (they never write)", async (ctx) => {
    await needUring(ctx);
    const dir = tempDir();
    const w = await Wal.open(dir, { ...SMALL, io: 'uring' });
    await w.append(Buffer.from('x'));
    const ro = await Wal.open(dir, { readOnly: true, io: 'uring' });
    expect(ro.io).toBe('thread');
    await ro.close();
    await w.close();
  });
});

describe('io_uring path: order and content', () => {
  it('appends, truncateAfter and reads issued in the same turn take effect in order', async (ctx) => {
    await needUring(ctx);
    const dir = tempDir();
    const wal = await Wal.open(dir, { ...SMALL, io: 'uring' });
    for (let i = 1; i <= 20; i++) await wal.append(payload(i));
    // One turn: appends 21..30, cut after 25, a read of 26 (dropped), appends numbered from 26.
    const appends = Array.from({ length: 10 }, (_, i) => wal.append(payload(21 + i)));
    const cut = wal.truncateAfter(25);
    const dropped = wal.read(26);
    const kept = wal.read(25);
    const after = [wal.append(Buffer.from('new-26')), wal.append(Buffer.from('new-27'))];
    expect(await Promise.all(appends)).toEqual(Array.from({ length: 10 }, (_, i) => 21 + i));
    await cut;
    // Ordered after the cut: never the dropped record's bytes. (Reads are not ordered after
    // appends: the new record 26 may already be durable when it runs.)
    const got = await dropped.then(
      (data) => data.toString(),
      (err: unknown) => (err as { code: string }).code,
    );
    expect(['TM_OUT_OF_RANGE', 'new-26']).toContain(got);
    expect((await kept).equals(payload(25))).toBe(true);
    expect(await Promise.all(after)).toEqual([26, 27]);
    expect((await wal.read(26)).toString()).toBe('new-26');
    expect(wal.stats().batches).toBeGreaterThan(1);
    await wal.close();
    const again = await Wal.open(dir, { ...SMALL, io: 'thread' });
    expect(again.lastIndex).toBe(27);
    for (let i = 1; i <= 25; i++) expect((await again.read(i)).equals(payload(i)), `record ${i}`).toBe(true);
    expect((await again.read(27)).toString()).toBe('new-27');
    await again.close();
  });

  it('truncateBefore and rotation between io_uring batches keep every record', async (ctx) => {
    await needUring(ctx);
    const dir = tempDir();
    const wal = await Wal.open(dir, { ...SMALL, io: 'uring' });
    const expected = new Map<number, Buffer>();
    let n = 0;
    for (let round = 0; round < 12; round++) {
      // 64 concurrent appends of ~1 KiB: several 64 KiB segments over the rounds.
      const datas = Array.from({ length: 64 }, () => Buffer.alloc(1000 + (n % 50), n++ & 0xff));
      const idx = await Promise.all(datas.map((d) => wal.append(d)));
      idx.forEach((i, k) => expected.set(i, datas[k] as Buffer));
      if (round === 8) await wal.truncateBefore(200);
    }
    expect(segmentFiles(dir).length).toBeGreaterThan(3);
    const first = wal.firstIndex;
    expect(first).toBeGreaterThan(1);
    await wal.close();
    const again = await Wal.open(dir, { ...SMALL, io: 'thread' });
    expect(again.firstIndex).toBe(first);
    expect(again.lastIndex).toBe(n);
    for (let i = first; i <= n; i++) expect((await again.read(i)).equals(expected.get(i) as Buffer), `record ${i}`).toBe(true);
    await again.close();
  });

  it('close settles every pending io_uring append first', async (ctx) => {
    await needUring(ctx);
    const dir = tempDir();
    const wal = await Wal.open(dir, { ...SMALL, io: 'uring' });
    const ps = Array.from({ length: 100 }, (_, i) => wal.append(payload(i)));
    const closed = wal.close();
    expect(await Promise.all(ps)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    await closed;
    await expect(wal.append(Buffer.from('late'))).rejects.toMatchObject({ code: 'TM_CLOSED' });
    const again = await Wal.open(dir, SMALL);
    expect(again.lastIndex).toBe(100);
    await again.close();
  });
});

describe('io_uring path through the fault layer', () => {
  it('acknowledged io_uring batches survive a power loss (their fdatasync reached the fault layer)', async (ctx) => {
    await needUring(ctx);
    const dir = tempDir();
    const wal = await openFaulty(dir, { ...SMALL, io: 'uring' });
    expect(wal.io).toBe('uring');
    for (let i = 1; i <= 10; i++) await wal.append(payload(i));
    expect(faults()('unsynced')).toBe(0);
    const again = await powerLossAndReopen(wal, dir);
    expect(again.lastIndex).toBe(10);
    await again.close();
  });

  it('EIO from the fdatasync of an io_uring batch poisons the log; the batch is not acknowledged', async (ctx) => {
    await needUring(ctx);
    const dir = tempDir();
    const wal = await openFaulty(dir, { ...SMALL, io: 'uring' });
    for (let i = 1; i <= 3; i++) await wal.append(payload(i));
    faults()('failSync', EIO);
    const poisoned = new Promise((r) => wal.once('poisoned', r));
    const ps = [wal.append(payload(4)), wal.append(payload(5))];
    for (const p of ps) await expect(p).rejects.toMatchObject({ code: 'TM_POISONED', errno: 'EIO' });
    await poisoned;
    await expect(wal.append(payload(6))).rejects.toMatchObject({ code: 'TM_POISONED' });
    await expect(wal.truncateAfter(1)).rejects.toMatchObject({ code: 'TM_POISONED' });
    expect(faults()('unsynced')).toBeGreaterThan(0);
    const again = await powerLossAndReopen(wal, dir);
    expect(again.lastIndex).toBe(3);
    await again.close();
  });
});
