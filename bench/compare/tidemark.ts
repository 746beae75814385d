/**
 * tidemark's native Wal: `append()` resolves when the record and everything before it is
 * durable (one write and one sync per group-commit batch on the log's writer thread).
 * Syncs are counted by the Wal itself (`stats().syncs`).
 */
import type { BenchStore, Contestant } from '../harness';
import { Wal, type SyncMode } from '../../lib/index';

function tidemarkContestant(sync: Exclude<SyncMode, 'none'>, busyPollMicros?: number, io?: 'uring'): Contestant {
  const what =
    sync === 'fdatasync' ? 'one pwritev + one fdatasync per batch' : sync === 'dsync' ? 'one O_DSYNC pwritev per batch' : 'one O_DIRECT|O_DSYNC pwritev per batch (block-padded)';
  const poll = busyPollMicros === undefined ? '' : `, busyPollMicros ${busyPollMicros}`;
  return {
    name:
      (sync === 'fdatasync' ? 'tidemark' : `tidemark-${sync}`) +
      (io === 'uring' ? '-uring' : '') +
      (busyPollMicros !== undefined && busyPollMicros > 0 ? ` (poll ${busyPollMicros} µs)` : ''),
    durability:
      io === 'uring'
        ? `tidemark Wal, sync '${sync}', io 'uring': awaited append(), resolved after one io_uring write linked to one fdatasync per batch, submitted from the JS thread (opening fails if io_uring is unavailable)`
        : `tidemark Wal, sync '${sync}'${poll}: awaited append(), resolved after ${what} on its writer thread`,
    async open(dir, _recordBytes, tuning): Promise<BenchStore> {
      const wal = await Wal.open(dir, {
        sync,
        io: io ?? 'thread',
        ...(busyPollMicros === undefined ? {} : { busyPollMicros }),
        ...(tuning?.segmentBytes === undefined ? {} : { segmentBytes: tuning.segmentBytes }),
      });
      return {
        async append(data) {
          await wal.append(data);
        },
        syncCount: () => wal.stats().syncs,
        close: () => wal.close(),
      };
    },
  };
}

export const tidemark = tidemarkContestant('fdatasync');
export const tidemarkDsync = tidemarkContestant('dsync');
export const tidemarkDirect = tidemarkContestant('direct');
/** The default Wal with the writer's busy-poll on (`busyPollMicros: 50`): shows what the poll buys here. */
export const tidemarkPoll = tidemarkContestant('fdatasync', 50);
/** The default Wal with `io: 'uring'` (io_uring from the JS thread instead of the writer thread). */
export const tidemarkUring = tidemarkContestant('fdatasync', undefined, 'uring');

/**
 * `appendMany` throughput: `callers` closed-loop callers, each appending batches of
 * `batchRecords` records of `recordBytes`. Each caller keeps `inflight` calls in
 * flight: 1 awaits every call before the next (nothing of its own can overlap the
 * sync); 2 issues the next call before awaiting the oldest (it packs batch N+1 while
 * the writer syncs batch N). Every call is awaited; no sync is skipped.
 */
export async function measureAppendMany(
  dir: string,
  callers: number,
  batchRecords: number,
  recordBytes: number,
  seconds: number,
  inflight = 1,
): Promise<{ callers: number; inflight: number; records: number; seconds: number; recordsPerS: number; callP50Us: number; callP99Us: number; syncs: number }> {
  const wal = await Wal.open(dir);
  try {
    const batch = Array.from({ length: batchRecords }, () => Buffer.alloc(recordBytes, 0x5a));
    // Warm up (first syncs, spare segment preparation), then measure.
    for (let i = 0; i < 3; i++) await wal.appendMany(batch);
    const latenciesUs: number[] = [];
    let records = 0;
    const syncsBefore = wal.stats().syncs;
    const start = performance.now();
    const end = start + seconds * 1000;
    let last = start;
    const call = async (t: number): Promise<void> => {
      await wal.appendMany(batch);
      const done = performance.now();
      latenciesUs.push((done - t) * 1000);
      records += batchRecords;
      last = Math.max(last, done);
    };
    const caller = async (): Promise<void> => {
      const pending: Promise<void>[] = [];
      for (;;) {
        const t = performance.now();
        if (t >= end) break;
        pending.push(call(t));
        if (pending.length >= inflight) await pending.shift();
      }
      await Promise.all(pending);
    };
    await Promise.all(Array.from({ length: callers }, caller));
    const elapsed = (last - start) / 1000;
    latenciesUs.sort((a, b) => a - b);
    const at = (p: number): number => latenciesUs[Math.min(latenciesUs.length - 1, Math.floor((p / 100) * latenciesUs.length))] ?? Number.NaN;
    return { callers, inflight, records, seconds: elapsed, recordsPerS: records / elapsed, callP50Us: at(50), callP99Us: at(99), syncs: wal.stats().syncs - syncsBefore };
  } finally {
    await wal.close();
  }
}
