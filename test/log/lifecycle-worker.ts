/**
 * Worker-thread script for lifecycle.test.ts (started through helpers.tsWorker).
 * workerData: { dir, mode, seed, count }.
 *
 * Modes (messages to the parent):
 *   full        open, append `count` (awaited), close; posts { done, firstIndex, lastIndex }
 *   hold        open, post 'opened', keep appending forever, posting { ack: [index, key, length] } per resolved append
 *   exit        open, append `count` (awaited), post { acked }, then process.exit(0) in the worker, log open
 *   try         open; post { opened: true } or { error: code }
 * Failures post { error: code, message }.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Wal } from '../../lib/index';
import { recordBytes } from '../helpers';

interface Data {
  dir: string;
  mode: 'full' | 'hold' | 'exit' | 'try';
  seed: number;
  count: number;
}

const data = workerData as Data;
const port = parentPort;
if (port === null) throw new Error('lifecycle-worker.ts must run in a worker thread');

async function appendCount(wal: Wal, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const key = wal.lastIndex + 1;
    const length = 50 + ((i * 131) % 3000);
    await wal.append(recordBytes(key, length, data.seed));
  }
}

async function main(): Promise<void> {
  if (data.mode === 'try') {
    try {
      const wal = await Wal.open(data.dir);
      port?.postMessage({ opened: true });
      await wal.close();
    } catch (err) {
      port?.postMessage({ error: (err as { code?: string }).code ?? 'none', message: (err as Error).message });
    }
    return;
  }
  const wal = await Wal.open(data.dir);
  switch (data.mode) {
    case 'full': {
      await appendCount(wal, data.count);
      const firstIndex = wal.firstIndex;
      const lastIndex = wal.lastIndex;
      await wal.close();
      port?.postMessage({ done: true, firstIndex, lastIndex });
      return;
    }
    case 'hold': {
      port?.postMessage('opened');
      let key = wal.lastIndex + 1;
      const writer = async (): Promise<void> => {
        for (;;) {
          const k = key++;
          const length = 40 + (k % 2000);
          const index = await wal.append(recordBytes(k, length, data.seed));
          port?.postMessage({ ack: [index, k, length] });
        }
      };
      await Promise.all([writer(), writer(), writer(), writer(), writer(), writer(), writer(), writer()]);
      return;
    }
    case 'exit': {
      await appendCount(wal, data.count);
      port?.postMessage({ acked: wal.lastIndex });
      process.exit(0);
    }
  }
}

main().catch((err: unknown) => {
  port.postMessage({ error: (err as { code?: string }).code ?? 'none', message: (err as Error).message });
});
