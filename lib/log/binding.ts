/**
 * Loads the native addon (the only module that touches it) and types its surface.
 * The binary is found by node-gyp-build: `prebuilds/<platform>-<arch>/` inside the
 * package first, then a local `build/Release/` from a source build.
 */
import * as path from 'node:path';
import { TidemarkError, ErrorCodes } from '../errors';

/** A native Status turned into a plain object (see native/addon.cc `status_to_js`). */
export interface NativeError {
  code: string;
  message: string;
  errno?: string;
  errnoNumber?: number;
  syscall?: string;
  path?: string;
  offset?: number;
}

/** Native stats snapshot (histogram arrays are bucket counts, see lib/log/wal.ts). */
export interface NativeStats {
  appends: number;
  batches: number;
  syncs: number;
  bytesWritten: number;
  paddingBytes: number;
  segments: number;
  batchSize: number[];
  syncLatencyUs: number[];
}

/**
 * Called once per writer iteration: appends with ticket <= durableTicket are
 * durable; those in (durableTicket, failedTicket] failed with `failure`;
 * `commands` is a flat list [id, error|null, id, error|null, ...].
 */
export type NativeReport = (
  durableTicket: number,
  failedTicket: number,
  firstIndex: number,
  lastIndex: number,
  failure: NativeError | undefined,
  commands: Array<number | NativeError | null> | undefined,
  closed: boolean,
  /** The writer waits for `settled()` after this report (see Wal._onReport). */
  ack: boolean,
) => void;

/** One open native log. Negative results are `-code`; details come from `lastError()`. */
export interface NativeLog {
  append(data: Uint8Array): number;
  appendMany(datas: Uint8Array[]): number;
  /** The same for `count` records whose payloads lie back to back in `data`, `lengths[i]` bytes each. */
  appendPacked(data: Uint8Array, lengths: Uint32Array, count: number): number;
  truncateAfter(index: number): number;
  truncateBefore(index: number): number;
  lastError(): NativeError;
  read(index: number): Promise<Buffer>;
  readRange(from: number, to: number, maxBytes: number): Promise<[Buffer, number[], number]>;
  stats(): NativeStats;
  firstIndex(): number;
  lastIndex(): number;
  blockBytes(): number;
  /** What the open's repairTail dropped, if anything. */
  tailRepair(): { path: string; offset: number; firstIndex: number; lastIndex: number | null; reason: string } | undefined;
  close(): boolean;
  ref(): void;
  unref(): void;
  /** Acknowledges `count` reports that settled appends (the writer's batch-formation gate). */
  settled(count: number): void;
}

/** The raw native surface. Arguments are validated in TypeScript before they get here. */
export interface NativeBinding {
  crc32c(data: Uint8Array, seed: number): number;
  crc32cImplementation(): string;
  crc32cForceTable(force: boolean): void;
  /** sync: 0 fdatasync, 1 dsync, 2 direct, 3 none. */
  openLog(dir: string, sync: number, segmentBytes: number, maxRecordBytes: number, busyPollMicros: number, onReport: NativeReport, repairTail?: boolean): Promise<NativeLog>;
  limits: { segmentBytesMin: number; segmentBytesMax: number; recordBytesMax: number };
}

/** Fault controls of the test-only addon (build/Release/tidemark_faults.test-addon). */
export interface FaultControls {
  (op: 'reset'): void;
  (op: 'failSync', errno: number): void;
  (op: 'failWrite', errno: number, partialBytes?: number): void;
  (op: 'failAllocate', errno: number): void;
  (op: 'powerLoss', keepLastBytes?: number): void;
  (op: 'crashAtWrite', nth: number, keepBytes: number): void;
  (op: 'crashAtWriteSectors', nth: number, seed: number): void;
  /** The nth next segment write is torn after exactly `keepBytes` (any byte, not a sector boundary), then power loss. */
  (op: 'crashAtWriteByte', nth: number, keepBytes: number): void;
  /** The nth next write system call to a segment writes only `bytes` and returns that (a short write). */
  (op: 'shortWrite', nth: number, bytes: number): void;
  /** The nth next staging/write buffer allocation of at least `minBytes` fails (out of memory); 0 clears. */
  (op: 'failAlloc', minBytes: number, nth: number): void;
  (op: 'crashed'): boolean;
  (op: 'unsynced'): number;
}

/** The test-only binding: the same surface plus fault controls. */
export interface FaultsBinding extends NativeBinding {
  faults: FaultControls;
}

const packageRoot = path.join(__dirname, '..', '..');
let cached: NativeBinding | undefined;

/** The native binding, loaded on first use. Throws `TM_NO_BINARY` with what to do when it is missing. */
export function binding(): NativeBinding {
  if (cached !== undefined) return cached;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const load = require('node-gyp-build') as (dir: string) => unknown;
    cached = load(packageRoot) as NativeBinding;
    return cached;
  } catch (err) {
    throw new TidemarkError(
      ErrorCodes.NO_BINARY,
      `no tidemark native binary for ${process.platform}-${process.arch} (Node ${process.version}, N-API 8). ` +
        'The npm package ships prebuilt binaries in prebuilds/ (this release: linux-x64 and linux-arm64); elsewhere build from source: ' +
        'install a C++17 compiler, python3 and make, then run `npm rebuild tidemark --build-from-source` ' +
        '(or `npx node-gyp rebuild` inside the package directory).',
      { cause: err },
    );
  }
}

let cachedFaults: FaultsBinding | undefined;

/**
 * The test-only addon with the fault-injecting file layer (built as
 * build/Release/tidemark_faults.test-addon by a source build; never shipped,
 * and not named *.node so node-gyp-build never loads it).
 * Tests only: it throws `TM_NO_BINARY` when the build is missing.
 */
export function faultsBinding(): FaultsBinding {
  if (cachedFaults !== undefined) return cachedFaults;
  const file = path.join(packageRoot, 'build', 'Release', 'tidemark_faults.test-addon');
  try {
    const mod = { exports: {} };
    process.dlopen(mod, file);
    cachedFaults = mod.exports as FaultsBinding;
    return cachedFaults;
  } catch (err) {
    throw new TidemarkError(ErrorCodes.NO_BINARY, `the test-only faults addon ${file} is missing: run \`npm run build:native\``, {
      cause: err,
    });
  }
}
