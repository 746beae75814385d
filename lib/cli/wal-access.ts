/**
 * The CLI's one door to the native Wal. Until the `native` branch lands, `Wal` may be
 * missing from lib/index.ts; this module types the part of its public API the CLI uses
 * and reports plainly when it is absent.
 */
import * as tidemark from '../index';

/** The subset of the Wal API the CLI uses (see lib/index.ts for the real documentation). */
export interface CliWal {
  readonly firstIndex: number;
  readonly lastIndex: number;
  append(data: Uint8Array): Promise<number>;
  appendMany(datas: Uint8Array[]): Promise<number>;
  read(index: number): Promise<Buffer>;
  entries(range?: { from?: number; to?: number }): AsyncIterable<{ index: number; data: Buffer }>;
  stats(): object;
  close(): Promise<void>;
}

/** How the CLI opens a log. */
export interface CliWalClass {
  open(dir: string, options?: { sync?: 'fdatasync' | 'dsync' | 'direct' | 'none'; segmentBytes?: number; maxRecordBytes?: number }): Promise<CliWal>;
}

/** The Wal class, or `undefined` when this build does not have it yet. */
export function walClass(): CliWalClass | undefined {
  const exported = (tidemark as unknown as { Wal?: CliWalClass }).Wal;
  return exported;
}
