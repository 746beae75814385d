/**
 * The whole result of `tidemark bench fsync`, as `--json` writes it, and its settings.
 */
import type { FsInfo } from '../fsinfo';
import type { GroupRow } from './groupcommit';
import type { HonestyReport } from './honesty';
import type { MethodsResult } from './methods';

/** How long each part runs. */
export interface FsyncBenchSettings {
  quick: boolean;
  /** Seconds per (method, file, size) row of step 1 (the plain-write baseline gets a quarter). */
  secondsPerRow: number;
  /** Step 1 goes over all rows this many times, `secondsPerRow / passes` each time (noise spreads evenly). */
  passes: number;
  /** Untimed operations at the start of each pass of each row. */
  warmupPerPass: number;
  /** Seconds per (record size, writers) cell of step 2. */
  secondsPerCell: number;
  sizesBytes: number[];
  prewrittenFileBytes: number;
  writerCounts: number[];
  recordBytes: number[];
}

/** The machine the numbers come from. */
export interface MachineFacts {
  hostname: string;
  platform: string;
  arch: string;
  kernel: string;
  cpuModel: string;
  cpus: number;
  memoryBytes: number;
  node: string;
  /** 1, 5 and 15 minute load averages at the start and at the end. */
  loadAverageStart: number[];
  loadAverageEnd: number[];
}

/** Everything measured. */
export interface FsyncBenchResult {
  tool: 'tidemark bench fsync';
  /** ISO time of the start. */
  startedAt: string;
  durationSeconds: number;
  settings: FsyncBenchSettings;
  machine: MachineFacts;
  fs: FsInfo;
  /** Step 1: one durable write per method, size and file kind. */
  methods: MethodsResult;
  /** Step 2: the tidemark Wal's group-commit curve. */
  groupCommit: GroupRow[];
  /** Step 3. */
  honesty: HonestyReport;
}
