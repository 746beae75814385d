/**
 * lmdb-js (the `lmdb` package) with `overlappingSync: false`.
 *
 * Its default (overlappingSync on Linux) resolves a put when the transaction is committed
 * and only later flushes it, so an awaited put is not durable. With `overlappingSync: false`
 * the write worker begins each transaction without MDB_NOSYNC (src/writer.cpp) and
 * `mdb_txn_commit` syncs the data and meta pages (fsync on Linux) before the worker marks
 * the batch committed; the put's promise resolves after that, and write.js makes its
 * `flushed` promise the very same commit promise. We await the put's promise.
 * lmdb-js batches the puts queued while a commit runs into its next transaction.
 */
import { open } from 'lmdb';
import type { BenchStore, Contestant } from '../harness';

export const lmdbContestant: Contestant = {
  name: 'lmdb-js',
  durability: 'lmdb-js with overlappingSync: false: awaited db.put() promise, which resolves after the synced mdb_txn_commit of its batch',
  async open(dir): Promise<BenchStore> {
    const db = open<Buffer, number>({ path: dir, overlappingSync: false, encoding: 'binary', keyEncoding: 'uint32' });
    let key = 0;
    return {
      async append(data) {
        await db.put(++key, data);
      },
      syncCount: () => undefined,
      async close() {
        await db.close();
      },
    };
  },
};
