/**
 * `tidemark wal repair DIR`: the operator's one way out when a log refuses to
 * open because of damage inside its last batch that recovery cannot tell from a
 * torn write (rows Q and R of native/recovery.cc). Opens the log with
 * `repairTail: true`, which drops that batch, and reports exactly which
 * indexes were dropped. Any other damage still fails, untouched.
 *
 * @packageDocumentation
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Wal } from '../log/wal';
import { SEGMENT_ALIGN_BYTES, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN } from '../log/options';
import { TidemarkError } from '../errors';

/** What one repair did. */
export interface WalRepairResult {
  dir: string;
  /** The dropped batch, or null when the log opened without dropping anything. */
  dropped: { path: string; offset: number; firstIndex: number; lastIndex: number | null; reason: string } | null;
  /** The log's range after the repair. */
  firstIndex: number;
  lastIndex: number;
}

/** The segment size to open with: the last segment's (so the prepared spare keeps fitting), else the default. */
function segmentBytesOf(dir: string): number | undefined {
  const names = fs.readdirSync(dir).filter((n) => /^\d{20}\.wal$/.test(n)).sort();
  const last = names.at(-1);
  if (last === undefined) return undefined;
  const size = fs.statSync(path.join(dir, last)).size;
  return size >= SEGMENT_BYTES_MIN && size <= SEGMENT_BYTES_MAX && size % SEGMENT_ALIGN_BYTES === 0 ? size : undefined;
}

/**
 * Repairs the log in `dir` (which must hold one): opens it with `repairTail`, closes it.
 *
 * @throws `TM_INVALID_ARGUMENT` when `dir` holds no log; whatever the open fails
 *   with otherwise (`TM_CORRUPTION` elsewhere than the last batch, `TM_LOCKED`, ...)
 */
export async function repairWal(dir: string): Promise<WalRepairResult> {
  const abs = path.resolve(dir);
  if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) {
    throw TidemarkError.invalidArgument(`wal repair: ${abs} is not a directory`);
  }
  const segmentBytes = segmentBytesOf(abs);
  if (segmentBytes === undefined && !fs.readdirSync(abs).some((n) => n.endsWith('.wal'))) {
    throw TidemarkError.invalidArgument(`wal repair: ${abs} holds no log (no <first index>.wal segment files)`);
  }
  const wal = await Wal.open(abs, { repairTail: true, ...(segmentBytes === undefined ? {} : { segmentBytes }) });
  try {
    return { dir: abs, dropped: wal.tailRepair ?? null, firstIndex: wal.firstIndex, lastIndex: wal.lastIndex };
  } finally {
    await wal.close();
  }
}

/** The report a person reads. */
export function formatWalRepair(r: WalRepairResult): string {
  if (r.dropped === null) {
    return `${r.dir}: nothing to repair; the log opens as it is (indexes ${r.firstIndex}..${r.lastIndex}).`;
  }
  const d = r.dropped;
  const which = d.lastIndex === null ? `index ${d.firstIndex} and any after it (the batch header was unreadable)` : `indexes ${d.firstIndex}..${d.lastIndex}`;
  return [
    `${r.dir}: dropped the last batch of ${d.path} (from offset ${d.offset}): ${which}.`,
    `  why the open refused it: ${d.reason}`,
    `  those records were never acknowledged if the damage was a torn write (a power loss while the batch was written);`,
    `  if it was real damage, some may have been. The log now holds indexes ${r.firstIndex}..${r.lastIndex}.`,
  ].join('\n');
}
