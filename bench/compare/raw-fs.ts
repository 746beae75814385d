/**
 * node fs, the obvious way: every append is its own positioned write then its own
 * fdatasync, awaited in turn. With N writers, N of these run at once on the libuv pool
 * (4 threads by default), so syncs overlap but are never shared on purpose.
 *
 * Durability: the append resolves after fs.fdatasync() on the file returned, which came
 * after the write completed. The file grows (what a user writing an append-only file gets).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { BenchStore, Contestant } from '../harness';

const write = promisify(fs.write) as (fd: number, buffer: Buffer, offset: number, length: number, position: number) => Promise<{ bytesWritten: number }>;
const fdatasync = promisify(fs.fdatasync);

export const rawFs: Contestant = {
  name: 'fs write+fdatasync',
  durability: 'each append: fs.write at its own offset, then fs.fdatasync, both awaited (growing file)',
  async open(dir): Promise<BenchStore> {
    const fd = fs.openSync(path.join(dir, 'log.bin'), 'w');
    let position = 0;
    let syncs = 0;
    return {
      async append(data) {
        const at = position;
        position += data.length;
        const { bytesWritten } = await write(fd, data, 0, data.length, at);
        if (bytesWritten !== data.length) throw new Error(`short write: ${bytesWritten} of ${data.length}`);
        syncs++;
        await fdatasync(fd);
      },
      syncCount: () => syncs,
      async close() {
        fs.closeSync(fd);
      },
    };
  },
};
