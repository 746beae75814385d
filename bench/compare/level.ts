/**
 * classic-level (LevelDB) with `{ sync: true }` on each put: LevelDB appends the write to
 * its log file and syncs it (fdatasync on Linux) before the put's callback; concurrent
 * puts from the libuv pool (4 threads) may share a sync through LevelDB's writer queue.
 * We await each put's promise.
 */
import { ClassicLevel } from 'classic-level';
import type { BenchStore, Contestant } from '../harness';

export const levelContestant: Contestant = {
  name: 'classic-level',
  durability: 'classic-level put(key, value, { sync: true }) awaited: LevelDB syncs its log before the callback',
  async open(dir): Promise<BenchStore> {
    const db = new ClassicLevel<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
    await db.open();
    let key = 0;
    return {
      async append(data) {
        await db.put((++key).toString().padStart(12, '0'), data, { sync: true });
      },
      syncCount: () => undefined,
      async close() {
        await db.close();
      },
    };
  },
};
