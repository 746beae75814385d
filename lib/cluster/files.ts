/**
 * Small durable-file helpers of the cluster storage: atomic whole-file writes
 * (tmp + fsync + rename + directory fsync), directory fsync, the hard-state
 * file (two CRC-checked slots written alternately) and the snapshot file format.
 *
 * @packageDocumentation
 */
import { open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { crc32c } from '../crc32c';
import { ErrorCodes, TidemarkError } from '../errors';
import { EMPTY_HARD_STATE, type HardState, type Snapshot } from '../core/types';

/** Wraps a Node fs error as TM_IO. */
export function ioError(what: string, file: string, err: unknown): TidemarkError {
  if (err instanceof TidemarkError) return err;
  const e = err as NodeJS.ErrnoException;
  return new TidemarkError(ErrorCodes.IO, `${what} ${file}: ${e.message}`, {
    ...(e.code !== undefined ? { errno: e.code } : {}),
    ...(e.syscall !== undefined ? { syscall: e.syscall } : {}),
    path: file,
    cause: err,
  });
}

/** A TM_CORRUPTION error about `file`. */
export function corruption(file: string, message: string, offset?: number): TidemarkError {
  return new TidemarkError(ErrorCodes.CORRUPTION, `${message} (${file}${offset !== undefined ? ` at offset ${offset}` : ''})`, {
    path: file,
    ...(offset !== undefined ? { offset } : {}),
  });
}

/** fsyncs a directory so that entries created, renamed or removed in it are durable. */
export async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (err) {
    throw ioError('fsync of directory', dir, err);
  } finally {
    await fh?.close();
  }
}

/** Writes `parts` to `file` atomically and durably: `file.tmp`, fsync, rename, fsync of the directory. */
export async function writeFileDurably(file: string, parts: readonly Uint8Array[]): Promise<void> {
  const tmp = `${file}.tmp`;
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, 'w');
    await fh.writev(parts as Uint8Array[]);
    await fh.sync();
  } catch (err) {
    await fh?.close().catch(() => undefined);
    fh = undefined;
    await rm(tmp, { force: true }).catch(() => undefined);
    throw ioError('writing', tmp, err);
  } finally {
    await fh?.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    throw ioError('renaming', tmp, err);
  }
  await syncDir(path.dirname(file));
}

// ---------------------------------------------------------------------------
// Little-endian u64 as a JS number (indexes and generations stay below 2^53).
// ---------------------------------------------------------------------------

export function putU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value >>> 0, true);
  view.setUint32(at + 4, Math.floor(value / 0x100000000), true);
}

export function getU64(view: DataView, at: number): number {
  const hi = view.getUint32(at + 4, true);
  if (hi > 0x1fffff) return Number.NaN; // above 2^53: never written by us
  return hi * 0x100000000 + view.getUint32(at, true);
}

// ---------------------------------------------------------------------------
// Hard state: two 512-byte slots, written alternately, each with a sequence number and a CRC.
// A torn write damages only the slot being written; the other still holds the previous state.
// ---------------------------------------------------------------------------

/** Bytes of one hard-state slot (one sector). */
export const HARD_STATE_SLOT_BYTES = 512;
const HS_MAGIC = 0x53484d54; // "TMHS"
const HS_VERSION = 1;
/** Longest node id (UTF-8 bytes) a vote can name. */
export const MAX_NODE_ID_BYTES = 255;

/** Encodes one slot: magic u32 | version u32 | seq u64 | generation u64 | commit u64 | vote length u16 (0xffff: none) | vote | ... | crc32c u32 (last 4 bytes). */
export function encodeHardStateSlot(hs: HardState, seq: number): Uint8Array {
  const buf = new Uint8Array(HARD_STATE_SLOT_BYTES);
  const view = new DataView(buf.buffer);
  view.setUint32(0, HS_MAGIC, true);
  view.setUint32(4, HS_VERSION, true);
  putU64(view, 8, seq);
  putU64(view, 16, hs.generation);
  putU64(view, 24, hs.commit);
  if (hs.votedFor === null) {
    view.setUint16(32, 0xffff, true);
  } else {
    const vote = Buffer.from(hs.votedFor, 'utf8');
    if (vote.length > MAX_NODE_ID_BYTES) throw TidemarkError.invalidArgument(`node id ${hs.votedFor} is longer than ${MAX_NODE_ID_BYTES} bytes`);
    view.setUint16(32, vote.length, true);
    buf.set(vote, 34);
  }
  view.setUint32(HARD_STATE_SLOT_BYTES - 4, crc32c(buf.subarray(0, HARD_STATE_SLOT_BYTES - 4)), true);
  return buf;
}

/** A decoded slot, 'empty' (all zero: never written) or 'bad' (written but damaged: a torn write). */
export function decodeHardStateSlot(buf: Uint8Array): { hs: HardState; seq: number } | 'empty' | 'bad' {
  if (buf.length < HARD_STATE_SLOT_BYTES) return buf.every((b) => b === 0) ? 'empty' : 'bad';
  if (buf.every((b) => b === 0)) return 'empty';
  const view = new DataView(buf.buffer, buf.byteOffset, HARD_STATE_SLOT_BYTES);
  if (view.getUint32(HARD_STATE_SLOT_BYTES - 4, true) !== crc32c(buf.subarray(0, HARD_STATE_SLOT_BYTES - 4))) return 'bad';
  if (view.getUint32(0, true) !== HS_MAGIC || view.getUint32(4, true) !== HS_VERSION) return 'bad';
  const seq = getU64(view, 8);
  const generation = getU64(view, 16);
  const commit = getU64(view, 24);
  const voteLen = view.getUint16(32, true);
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(generation) || !Number.isSafeInteger(commit)) return 'bad';
  let votedFor: string | null = null;
  if (voteLen !== 0xffff) {
    if (voteLen > MAX_NODE_ID_BYTES) return 'bad';
    votedFor = Buffer.from(buf.subarray(34, 34 + voteLen)).toString('utf8');
  }
  return { hs: { generation, votedFor, commit }, seq };
}

/** The hard-state file: open, read the newest valid slot, write the other one durably. */
export class HardStateFile {
  private constructor(
    private readonly fh: FileHandle,
    readonly file: string,
    private seq: number,
    private current: HardState,
  ) {}

  /** Opens (creating) `file`. A file with a damaged slot and no valid one is TM_CORRUPTION. */
  static async open(file: string): Promise<HardStateFile> {
    let fh: FileHandle;
    let created = false;
    try {
      fh = await open(file, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError('opening', file, err);
      try {
        fh = await open(file, 'wx+'); // exclusive: never truncate a file another open just made
        created = true;
      } catch (err2) {
        if ((err2 as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('creating', file, err2);
        try {
          fh = await open(file, 'r+');
        } catch (err3) {
          throw ioError('opening', file, err3);
        }
      }
    }
    try {
      if (created) {
        await fh.write(new Uint8Array(2 * HARD_STATE_SLOT_BYTES), 0, 2 * HARD_STATE_SLOT_BYTES, 0);
        await fh.sync();
        await syncDir(path.dirname(file));
      }
      const buf = new Uint8Array(2 * HARD_STATE_SLOT_BYTES);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      const a = decodeHardStateSlot(buf.subarray(0, Math.min(bytesRead, HARD_STATE_SLOT_BYTES)));
      const b = decodeHardStateSlot(bytesRead > HARD_STATE_SLOT_BYTES ? buf.subarray(HARD_STATE_SLOT_BYTES, bytesRead) : new Uint8Array(0));
      const valid = [a, b].filter((s): s is { hs: HardState; seq: number } => typeof s === 'object');
      if (valid.length === 0) {
        // Two damaged slots cannot come from one torn write: the second write happens only after the first synced.
        if (a === 'bad' && b === 'bad') throw corruption(file, 'both hard-state slots are damaged');
        return new HardStateFile(fh, file, 0, EMPTY_HARD_STATE);
      }
      valid.sort((x, y) => y.seq - x.seq);
      const best = valid[0] as { hs: HardState; seq: number };
      return new HardStateFile(fh, file, best.seq, best.hs);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err instanceof TidemarkError ? err : ioError('reading', file, err);
    }
  }

  /** The last durable hard state. */
  get hardState(): HardState {
    return this.current;
  }

  /** Writes `hs` into the slot not holding the current state and fdatasyncs. Durable when it resolves. */
  async write(hs: HardState): Promise<void> {
    const seq = this.seq + 1;
    const slot = encodeHardStateSlot(hs, seq);
    try {
      await this.fh.write(slot, 0, slot.length, (seq % 2) * HARD_STATE_SLOT_BYTES);
      await this.fh.datasync();
    } catch (err) {
      throw ioError('writing hard state to', this.file, err);
    }
    this.seq = seq;
    this.current = hs;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

// ---------------------------------------------------------------------------
// Snapshot files: header (40 bytes) then the state-machine bytes.
// magic u32 "TMSN" | version u32 | index u64 | generation u64 | length u64 | data crc32c u32 | header crc32c u32
// ---------------------------------------------------------------------------

const SNAP_MAGIC = 0x4e534d54; // "TMSN"
const SNAP_VERSION = 1;
/** Bytes of a snapshot file's header. */
export const SNAPSHOT_HEADER_BYTES = 40;

export function encodeSnapshotHeader(s: Snapshot): Uint8Array {
  const buf = new Uint8Array(SNAPSHOT_HEADER_BYTES);
  const view = new DataView(buf.buffer);
  view.setUint32(0, SNAP_MAGIC, true);
  view.setUint32(4, SNAP_VERSION, true);
  putU64(view, 8, s.meta.index);
  putU64(view, 16, s.meta.generation);
  putU64(view, 24, s.data.length);
  view.setUint32(32, crc32c(s.data), true);
  view.setUint32(36, crc32c(buf.subarray(0, 36)), true);
  return buf;
}

/** Decodes a whole snapshot file; TM_CORRUPTION on any mismatch. */
export function decodeSnapshotFile(file: string, bytes: Uint8Array): Snapshot {
  if (bytes.length < SNAPSHOT_HEADER_BYTES) throw corruption(file, `snapshot file of ${bytes.length} bytes is shorter than its header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, SNAPSHOT_HEADER_BYTES);
  if (view.getUint32(36, true) !== crc32c(bytes.subarray(0, 36))) throw corruption(file, 'snapshot header checksum mismatch', 0);
  if (view.getUint32(0, true) !== SNAP_MAGIC) throw corruption(file, 'not a snapshot file (bad magic)', 0);
  if (view.getUint32(4, true) !== SNAP_VERSION) throw corruption(file, `snapshot format version ${view.getUint32(4, true)} is unknown`, 4);
  const index = getU64(view, 8);
  const generation = getU64(view, 16);
  const length = getU64(view, 24);
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(generation) || length !== bytes.length - SNAPSHOT_HEADER_BYTES) {
    throw corruption(file, `snapshot header fields out of range (length ${length}, file holds ${bytes.length - SNAPSHOT_HEADER_BYTES})`, 8);
  }
  const data = bytes.subarray(SNAPSHOT_HEADER_BYTES);
  if (view.getUint32(32, true) !== crc32c(data)) throw corruption(file, 'snapshot data checksum mismatch', SNAPSHOT_HEADER_BYTES);
  return { meta: { index, generation }, data };
}
