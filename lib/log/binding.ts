/**
 * Loads the native addon (the only module that touches it) and types its surface.
 * The binary is found by {@link nativeBinaryCandidates}: a source build in
 * `build/Release/` first, then the prebuilt `prebuilds/<platform>-<arch>/tidemark.node`
 * the npm package ships. No loader package is involved: an installed tidemark has no
 * dependencies at all.
 */
import * as fs from 'node:fs';
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
  /** The path appends take: 'uring' (io_uring from the JS thread) or 'thread' (the writer thread). */
  io(): 'uring' | 'thread';
  /** Why io: 'auto' fell back to the writer thread ('' when it did not). */
  ioFallbackReason(): string;
  /** io_uring mode: submit the next batch, or hand the queue to the writer thread (no-op otherwise). */
  flush(): void;
  /** What a read-only open found (damage, a torn tail left in place) and the segments it holds. */
  inspect(): NativeInspection;
}

/** One segment as the native log holds it. */
export interface NativeSegment {
  path: string;
  firstIndex: number;
  /** `firstIndex - 1` when it holds no record. */
  lastIndex: number;
  fileBytes: number;
  /** Where the next batch would start (the end of the last complete batch). */
  endOffset: number;
  version: number;
}

/** {@link NativeLog.inspect}. */
export interface NativeInspection {
  damage: NativeError | null;
  torn: { path: string; offset: number; end: number } | null;
  segments: NativeSegment[];
}

/** The raw native surface. Arguments are validated in TypeScript before they get here. */
export interface NativeBinding {
  crc32c(data: Uint8Array, seed: number): number;
  crc32cImplementation(): string;
  crc32cForceTable(force: boolean): void;
  /** sync: 0 fdatasync, 1 dsync, 2 direct, 3 none. */
  openLog(
    dir: string,
    sync: number,
    segmentBytes: number,
    maxRecordBytes: number,
    busyPollMicros: number,
    onReport: NativeReport,
    /** No lock, no writes; damage is reported by inspect() instead of failing the open. */
    readOnly?: boolean,
    /** Read-only: ignore segment files whose first index is below this. */
    fromSegment?: number,
    /** Drop a damaged last batch that recovery cannot tell from a torn write (rows Q, R), reported by inspect(). */
    repairTail?: boolean,
    /** 0 thread, 1 uring, 2 auto (native/log.h IoMode). */
    io?: number,
    /** Tests: the io_uring probe fails as if the kernel refused it. */
    uringProbeFail?: boolean,
  ): Promise<NativeLog>;
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

/** The command that builds the addon from source in an installed package (see lib/cli/build.ts). */
export const buildFromSourceCommand = 'npx tidemark build-from-source';

/**
 * The files the addon is loaded from, in order: `build/Release/tidemark.node` (a source
 * build: `npm run build:native` in a checkout, `npx tidemark build-from-source` in an
 * install), then `prebuilds/<platform>-<arch>/tidemark.node` (what `npm pack` ships).
 */
export function nativeBinaryCandidates(root: string = packageRoot): string[] {
  return [
    path.join(root, 'build', 'Release', 'tidemark.node'),
    path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'tidemark.node'),
  ];
}

/** Loads the first existing candidate; throws with every path tried when none loads. */
function loadNative(root: string): NativeBinding {
  const tried: string[] = [];
  for (const file of nativeBinaryCandidates(root)) {
    if (!fs.existsSync(file)) {
      tried.push(`${file} (missing)`);
      continue;
    }
    // A file that exists but does not load (wrong libc, truncated...) is an error of its own:
    // do not fall back past it to another binary silently.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(file) as NativeBinding;
  }
  throw new Error(`no native binary: tried ${tried.join(', ')}`);
}

/** The native binding, loaded on first use. Throws `TM_NO_BINARY` with what to do when it is missing. */
export function binding(): NativeBinding {
  if (cached !== undefined) return cached;
  try {
    cached = loadNative(packageRoot);
    return cached;
  } catch (err) {
    const cause = err instanceof Error ? err.message : String(err);
    throw new TidemarkError(
      ErrorCodes.NO_BINARY,
      `no usable tidemark native binary for ${process.platform}-${process.arch} (Node ${process.version}, N-API 8): ${cause}. ` +
        'The npm package ships prebuilt binaries in prebuilds/ (this release: linux-x64 and linux-arm64, glibc 2.34+); elsewhere build it from source: ' +
        `install a C++17 compiler, python3 and make, then run \`${buildFromSourceCommand}\` in the project that depends on tidemark ` +
        '(in a source checkout: `npm run build:native`).',
      { cause: err },
    );
  }
}

let cachedFaults: FaultsBinding | undefined;

/**
 * The test-only addon with the fault-injecting file layer (built as
 * build/Release/tidemark_faults.test-addon by a source build; never shipped,
 * and not named *.node so no loader ever picks it).
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
