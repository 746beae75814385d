/**
 * Child process for lifecycle.test.ts. argv[2] is a JSON config: { dir, mode, seed, segmentBytes? }.
 *
 * Modes:
 *   hold          open, print `held`, wait for `close` on stdin, close, print `closed`, exit
 *   try           open; print `opened` (then close) or `error <code>`; exit
 *   exit          open, append 20 (awaited, `A` lines), process.exit(0) with the log open
 *   exit-pending  as `exit`, then start 200 appends and process.exit(0) before they settle
 *   natural       open, append 20 (awaited), return without close: the event loop empties
 *   throw         open, append 20 (awaited), throw an uncaught error with the log open
 * Lines: `A <index> <key> <length>` after each awaited append resolved; `E <msg>` on failure.
 */
import { Wal } from '../../lib/index';
import { recordBytes } from '../helpers';

interface Config {
  dir: string;
  mode: 'hold' | 'try' | 'exit' | 'exit-pending' | 'natural' | 'throw';
  seed: number;
  /** Optional segment size (default: the library's). */
  segmentBytes?: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;

function out(text: string): void {
  process.stdout.write(text);
}

function lineFromStdin(want: string): Promise<void> {
  return new Promise((resolve) => {
    let buffered = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.split('\n').includes(want)) {
        process.stdin.destroy();
        resolve();
      }
    });
  });
}

async function appendTwenty(wal: Wal): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const key = wal.lastIndex + 1;
    const length = 100 + i * 37;
    const index = await wal.append(recordBytes(key, length, config.seed));
    out(`A ${index} ${key} ${length}\n`);
  }
}

async function main(): Promise<void> {
  if (config.mode === 'try') {
    try {
      const wal = await Wal.open(config.dir);
      out('opened\n');
      await wal.close();
    } catch (err) {
      out(`error ${(err as { code?: string }).code ?? 'none'} ${(err as Error).message.replace(/\n/g, ' ')}\n`);
    }
    return;
  }
  const wal = await Wal.open(config.dir, config.segmentBytes === undefined ? {} : { segmentBytes: config.segmentBytes });
  switch (config.mode) {
    case 'hold':
      out('held\n');
      await lineFromStdin('close');
      await wal.close();
      out('closed\n');
      return;
    case 'exit':
      await appendTwenty(wal);
      process.exit(0);
    case 'exit-pending': {
      await appendTwenty(wal);
      const firstKey = wal.lastIndex + 1; // records are keyed by the index they get (call order)
      for (let i = 0; i < 200; i++) {
        const key = firstKey + i;
        wal.append(recordBytes(key, 64 + i, config.seed)).catch(() => undefined);
      }
      process.exit(0);
    }
    case 'natural':
      await appendTwenty(wal);
      out('returning\n');
      return;
    case 'throw':
      await appendTwenty(wal);
      setImmediate(() => {
        throw new Error('deliberate uncaught error with the log open');
      });
      return;
  }
}

main().catch((err: unknown) => {
  out(`E ${(err as { code?: string }).code ?? 'none'} ${String((err as Error).message ?? err).replace(/\n/g, ' ')}\n`);
  process.exitCode = 3;
});
