/**
 * Operator tools over a log directory, all read-only (a `Wal.open` with
 * `readOnly`: no lock, nothing written, safe beside a running writer):
 *
 * - `tidemark wal verify DIR [--json]`: every segment, its index range, size,
 *   format version and checksum status, a torn tail left by a crash, and where
 *   damage is. Exit code 0: the log verifies (a torn tail is not damage: it was
 *   never acknowledged, and the next writable open drops it); 1: damage; 2: usage
 *   (no DIR, unknown option, no log in DIR).
 * - `tidemark wal dump DIR [--from N] [--to M] [--json]`: the records, one a
 *   line (`index length bytes-as-hex` shortened, or JSON lines with the payload
 *   in base64). Stops at damage and says where it is (exit 1).
 *
 * Repairing a damaged log is not done here.
 *
 * @packageDocumentation
 */
import { readdir } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ErrorCodes, isTidemarkError } from '../errors';
import { binding } from '../log/binding';
import { Wal, type WalDamage } from '../log/wal';

const OK = 0;
const DAMAGED = 1;
const USAGE = 2;

/** Where the tools write: lines without their newline. */
export interface WalToolsOutput {
  out(line: string): void | Promise<void>;
  err(line: string): void;
}

/** One segment file as `wal verify` reports it. */
export interface VerifiedSegment {
  file: string;
  firstIndex: number;
  /** Last index that verified; `firstIndex - 1` when none did; null when the file could not be scanned at all. */
  lastIndex: number | null;
  bytes: number | null;
  version: number | null;
  status: 'ok' | 'damaged';
  /** Unacknowledged bytes after the last complete batch (a crash's torn write), left in place. */
  tornTail?: { offset: number; bytes: number };
  damage?: { offset: number; index: number; reason: string };
}

/** What `wal verify` found. */
export interface VerifyReport {
  dir: string;
  ok: boolean;
  /** The readable log: from its first index up to the first damage. */
  firstIndex: number;
  lastIndex: number;
  segments: VerifiedSegment[];
}

const SEGMENT_NAME = /^(\d{20})\.wal$/;

/** Scans every segment of the log in `dir` (read-only). Damage does not stop it: the segments after it are scanned on their own. */
export async function verifyLog(dir: string): Promise<VerifyReport> {
  const files = (await readdir(dir))
    .map((n) => SEGMENT_NAME.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ name: m[0], first: Number(m[1]) }))
    .sort((a, b) => a.first - b.first);
  const segments: VerifiedSegment[] = [];
  let readable: { first: number; last: number } | undefined;
  let from = 0;
  // A segment whose first index does not follow the previous one's last: reported
  // on that segment, which the next round scans on its own.
  let gapAt: { file: string; damage: NonNullable<VerifiedSegment['damage']> } | undefined;
  for (;;) {
    const wal = await Wal._openWith(binding(), dir, { readOnly: true }, from);
    let damage: WalDamage | null;
    try {
      const info = wal._inspect();
      damage = wal.damage;
      readable ??= { first: wal.firstIndex, last: wal.lastIndex };
      for (const s of info.segments) {
        const seg: VerifiedSegment = {
          file: path.basename(s.path),
          firstIndex: s.firstIndex,
          lastIndex: s.lastIndex,
          bytes: s.fileBytes,
          version: s.version,
          status: 'ok',
        };
        if (info.torn !== null && info.torn.path === s.path) seg.tornTail = { offset: info.torn.offset, bytes: info.torn.end - info.torn.offset };
        if (gapAt !== undefined && gapAt.file === seg.file) {
          seg.status = 'damaged';
          seg.damage = gapAt.damage;
        }
        segments.push(seg);
      }
    } finally {
      await wal.close();
    }
    if (damage === null) break;
    const name = path.basename(damage.path);
    const gap = /^index gap/.test(damage.reason);
    const described = { offset: damage.offset, index: damage.index, reason: damage.reason };
    const last = segments[segments.length - 1];
    if (last !== undefined && last.file === name) {
      // Its records before the damage verified.
      last.status = 'damaged';
      last.damage = described;
      delete last.tornTail;
    } else if (gap) {
      gapAt = { file: name, damage: described };
    } else {
      const first = Number(SEGMENT_NAME.exec(name)?.[1] ?? 0);
      segments.push({ file: name, firstIndex: first, lastIndex: null, bytes: null, version: null, status: 'damaged', damage: described });
    }
    const at = files.findIndex((f) => f.name === name);
    const next = gap ? files[at] : files[at + 1];
    if (at < 0 || next === undefined || next.first <= from) break;
    from = next.first;
  }
  const r = readable ?? { first: 1, last: 0 };
  return { dir, ok: segments.every((s) => s.status === 'ok'), firstIndex: r.first, lastIndex: r.last, segments };
}

function mib(bytes: number | null): string {
  if (bytes === null) return '?';
  return bytes >= 1024 * 1024 ? `${(bytes / (1024 * 1024)).toFixed(bytes % (1024 * 1024) === 0 ? 0 : 1)} MiB` : `${bytes / 1024} KiB`;
}

/** The human-readable lines of a verify report. */
export function formatVerifyReport(report: VerifyReport): string[] {
  const lines = [`log ${report.dir}`];
  for (const s of report.segments) {
    const range = s.lastIndex === null ? 'indexes ?' : s.lastIndex < s.firstIndex ? 'no records' : `indexes ${s.firstIndex}..${s.lastIndex}`;
    let line = `  ${s.file}  ${range}  ${mib(s.bytes)}  v${s.version ?? '?'}  `;
    if (s.damage !== undefined) {
      line += `DAMAGED at offset ${s.damage.offset} (index ${s.damage.index} on cannot be read): ${s.damage.reason}`;
    } else {
      line += 'checksums ok';
      if (s.tornTail !== undefined) {
        line += `; torn tail at offset ${s.tornTail.offset} (${s.tornTail.bytes} bytes, never acknowledged; the next writable open drops it)`;
      }
    }
    lines.push(line);
  }
  const n = report.segments.length;
  const range = report.lastIndex < report.firstIndex ? 'no records' : `indexes ${report.firstIndex}..${report.lastIndex}`;
  lines.push(
    report.ok
      ? `ok: ${range} in ${n} segment${n === 1 ? '' : 's'}, every checksum verified`
      : `DAMAGED: readable ${range}; see the DAMAGED line${report.segments.filter((s) => s.status === 'damaged').length === 1 ? '' : 's'} above`,
  );
  return lines;
}

class Usage extends Error {}

function parse(args: string[], options: Record<string, { type: 'string' | 'boolean' }>, command: string): { dir: string; values: Record<string, string | boolean | undefined> } {
  let parsed;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new Usage(`wal ${command}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const [dir, ...extra] = parsed.positionals;
  if (dir === undefined) throw new Usage(`wal ${command}: the log directory is missing: tidemark wal ${command} DIR`);
  if (extra.length > 0) throw new Usage(`wal ${command}: one directory expected, got also '${extra.join(' ')}'`);
  return { dir: path.resolve(dir), values: parsed.values as Record<string, string | boolean | undefined> };
}

function index(value: string | boolean | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new Usage(`wal dump: ${name} must be a whole number, got '${String(value)}'`);
  }
  return Number(value);
}

async function verify(args: string[], io: WalToolsOutput): Promise<number> {
  const { dir, values } = parse(args, { json: { type: 'boolean' } }, 'verify');
  const report = await verifyLog(dir);
  if (values.json === true) await io.out(JSON.stringify(report, null, 2));
  else for (const line of formatVerifyReport(report)) await io.out(line);
  return report.ok ? OK : DAMAGED;
}

async function dump(args: string[], io: WalToolsOutput): Promise<number> {
  const { dir, values } = parse(args, { from: { type: 'string' }, to: { type: 'string' }, json: { type: 'boolean' } }, 'dump');
  const from = index(values.from, '--from');
  const to = index(values.to, '--to');
  if (from !== undefined && to !== undefined && from > to) throw new Usage(`wal dump: --from ${from} is above --to ${to}`);
  const wal = await Wal._openWith(binding(), dir, { readOnly: true });
  try {
    const first = Math.max(from ?? wal.firstIndex, wal.firstIndex);
    const last = Math.min(to ?? wal.lastIndex, wal.lastIndex);
    if (from !== undefined && from < wal.firstIndex) io.err(`tidemark: wal dump: the log starts at index ${wal.firstIndex} (--from ${from})`);
    const damage = wal.damage;
    if (first <= last) {
      for await (const { index: i, data } of wal.entries({ from: first, to: last })) {
        if (values.json === true) {
          await io.out(JSON.stringify({ index: i, length: data.length, data: data.toString('base64') }));
        } else {
          const hex = data.subarray(0, 32).toString('hex');
          await io.out(`${i}\t${data.length}\t${hex}${data.length > 32 ? '...' : ''}`);
        }
      }
    }
    const wanted = to ?? Number.POSITIVE_INFINITY;
    if (damage !== null && wanted >= damage.index) {
      io.err(`tidemark: wal dump: stopped at index ${damage.index}: damage in ${damage.path} at offset ${damage.offset}: ${damage.reason}`);
      return DAMAGED;
    }
    if (to !== undefined && to > wal.lastIndex) io.err(`tidemark: wal dump: the log ends at index ${wal.lastIndex} (--to ${to})`);
    return OK;
  } finally {
    await wal.close();
  }
}

export const walHelpText = `  tidemark wal verify DIR [--json]
      Read-only check of every segment of the log in DIR (safe beside a running
      writer): index ranges, sizes, checksums, a torn tail, where damage is.
      Exit 0: verified; 1: damaged; 2: usage (or no log in DIR).
  tidemark wal dump DIR [--from N] [--to M] [--json]
      Prints records N..M (default: all), one a line: index, length, bytes in
      hex (the first 32); --json: JSON lines with the payload in base64. Stops
      at damage and says where (exit 1).
`;

/** `tidemark wal ...`: returns the exit code. */
export async function runWal(args: string[], io: WalToolsOutput): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case 'verify':
        return await verify(rest, io);
      case 'dump':
        return await dump(rest, io);
      default:
        throw new Usage(command === undefined ? 'wal: a subcommand is missing: verify or dump' : `wal: unknown subcommand '${command}'; available: verify, dump`);
    }
  } catch (err) {
    if (err instanceof Usage) {
      io.err(`tidemark: ${err.message}`);
      return USAGE;
    }
    // No log there, or a file that is not a log's: the operator named the wrong directory.
    if (isTidemarkError(err, ErrorCodes.INVALID_ARGUMENT)) {
      io.err(`tidemark: ${err.message}`);
      return USAGE;
    }
    if (isTidemarkError(err)) {
      io.err(`tidemark: ${err.message}`);
      return DAMAGED;
    }
    throw err;
  }
}
