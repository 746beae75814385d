/**
 * A hand-written JS group commit, as a careful Node developer would write it: appends
 * queue up; one flush at a time takes the whole queue, writes it with one fs.writev at the
 * end of the file, runs one fs.fdatasync, and resolves every append in the batch. While a
 * flush is in flight the next batch forms; when it finishes, the next flush starts at once.
 *
 * Durability: an append resolves only after the fdatasync that followed the writev holding
 * its bytes has returned. The file grows (a user would not pre-write it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { BenchStore, Contestant } from '../harness';

const writev = promisify(fs.writev) as (fd: number, buffers: Buffer[], position: number) => Promise<{ bytesWritten: number }>;
const fdatasync = promisify(fs.fdatasync);

interface Pending {
  data: Buffer;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export const jsGroupCommit: Contestant = {
  name: 'JS group commit',
  durability: 'queue; one fs.writev + one fs.fdatasync per batch, then the batch resolves; next batch forms during the sync (growing file)',
  async open(dir): Promise<BenchStore> {
    const fd = fs.openSync(path.join(dir, 'log.bin'), 'w');
    let position = 0;
    let syncs = 0;
    let queue: Pending[] = [];
    let flushing = false;
    let failed: unknown;

    const flush = async (): Promise<void> => {
      flushing = true;
      while (queue.length > 0) {
        const batch = queue;
        queue = [];
        try {
          if (failed !== undefined) throw failed;
          const buffers = batch.map((p) => p.data);
          let bytes = 0;
          for (const b of buffers) bytes += b.length;
          const { bytesWritten } = await writev(fd, buffers, position);
          if (bytesWritten !== bytes) throw new Error(`short writev: ${bytesWritten} of ${bytes}`);
          position += bytes;
          syncs++;
          await fdatasync(fd);
          for (const p of batch) p.resolve();
        } catch (err) {
          failed ??= err; // a failed sync is final
          for (const p of batch) p.reject(err);
        }
      }
      flushing = false;
    };

    return {
      append(data) {
        return new Promise<void>((resolve, reject) => {
          queue.push({ data, resolve, reject });
          if (!flushing) void flush();
        });
      },
      syncCount: () => syncs,
      async close() {
        while (flushing) await new Promise((r) => setImmediate(r));
        fs.closeSync(fd);
      },
    };
  },
};
