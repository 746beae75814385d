// Close/rotation races and worker_threads teardown (found by an adversarial review).
import { describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { join, resolve } from 'node:path';
import { Wal } from '../../lib/index';
import { SMALL, tempDir } from './helpers';

const ROOT = resolve(__dirname, '..', '..');

describe('close racing rotations', () => {
  it('close() right after appends that need several rotations settles every append, and reopen shows exactly the acknowledged ones', async () => {
    for (let round = 0; round < 5; round++) {
      const dir = tempDir();
      const wal = await Wal.open(dir, SMALL);
      const ps: Promise<number>[] = [];
      for (let k = 0; k < 30; k++) ps.push(wal.append(Buffer.alloc(3000 + round, k)));
      ps.push(wal.appendMany(Array.from({ length: 40 }, (_, k) => Buffer.alloc(2000, k))));
      const closed = wal.close();
      const late = wal.append(Buffer.from('late'));
      await expect(late).rejects.toMatchObject({ code: 'TM_CLOSED' });
      const results = await Promise.allSettled(ps);
      await closed;
      expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
      const again = await Wal.open(dir, SMALL);
      expect(again.lastIndex).toBe(70);
      expect(await again.read(30)).toEqual(Buffer.alloc(3000 + round, 29));
      expect(await again.read(70)).toEqual(Buffer.alloc(2000, 39));
      await again.close();
    }
  });
});

describe('worker_threads', () => {
  it('a worker that exits with appends pending and without close releases the lock; what it was told is durable is there', async () => {
    const dir = tempDir();
    const code = `
      require('tsx/cjs');
      const { parentPort, workerData } = require('node:worker_threads');
      const { Wal } = require(${JSON.stringify(join(ROOT, 'lib', 'index'))});
      (async () => {
        const wal = await Wal.open(workerData.dir, { segmentBytes: 64 * 1024 });
        let acked = 0;
        for (let i = 1; i <= 50; i++) { await wal.append(Buffer.alloc(3000, i)); acked = i; }
        parentPort.postMessage(acked);
        for (let i = 0; i < 100; i++) wal.append(Buffer.alloc(3000, 0xee)).catch(() => {});
        process.exit(0);
      })();
    `;
    const w = new Worker(code, { eval: true, workerData: { dir } });
    let acked = 0;
    w.on('message', (m: number) => (acked = m));
    await new Promise((r) => w.on('exit', r));
    expect(acked).toBe(50);
    const wal = await Wal.open(dir, SMALL); // not TM_LOCKED
    expect(wal.lastIndex).toBeGreaterThanOrEqual(50);
    expect(await wal.read(50)).toEqual(Buffer.alloc(3000, 50));
    await wal.close();
  });
});
