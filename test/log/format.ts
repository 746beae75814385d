// Byte-level reader of the segment format (native/record.h, native/segment.h)
// for tests, and deterministic payloads. No vitest imports: usable from scripts.
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c } from '../../lib/index';

export function segmentFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => /^\d{20}\.wal$/.test(n))
    .sort()
    .map((n) => join(dir, n));
}

export interface Frame {
  offset: number;
  kind: 'record' | 'padding' | 'header';
  index: number; // record index, next index (padding), first index (batch header)
  length: number; // payload bytes (record), total bytes (padding), batch bytes (batch header)
  size: number; // bytes the frame occupies
  crc: number;
}

const PAD_FLAG = 0x80000000;
const FLAG_MASK = 0xc0000000;
const HEADER_FLAG = 0xc0000000;

/** The format version in a segment file's header (1: no batch headers; 2: batch headers). */
export function segmentVersion(file: string): number {
  return readFileSync(file).readUInt32LE(8);
}

/** Walks the valid chain of frames of a segment file (stops at the first frame that does not verify). */
export function frames(file: string): Frame[] {
  const b = readFileSync(file);
  const out: Frame[] = [];
  let seed = crc32c(b.subarray(4, 32));
  if (seed !== b.readUInt32LE(0)) return out;
  const segSeed = seed;
  let off = 4096;
  while (off + 16 <= b.length) {
    const crc = b.readUInt32LE(off);
    const len = b.readUInt32LE(off + 4);
    const index = Number(b.readBigUInt64LE(off + 8));
    if ((len & FLAG_MASK) >>> 0 === HEADER_FLAG) {
      // A batch header (v2): verifies on its own, seeded with the segment header's CRC.
      const h = (len & ~FLAG_MASK) >>> 0;
      const total = b.readUInt32LE(off + 16);
      if (h < 32 || off + total > b.length || crc32c(b.subarray(off + 4, off + Math.min(h, 512)), segSeed) !== crc) break;
      if (b.readUInt32LE(off + 24) !== seed) break;
      out.push({ offset: off, kind: 'header', index, length: total, size: h, crc });
      off += h;
      continue;
    }
    if ((len & PAD_FLAG) !== 0 && len !== 0) {
      const total = len & ~PAD_FLAG;
      if (total < 24 || off + total > b.length || crc32c(b.subarray(off + 4, off + 16), seed) !== crc) break;
      out.push({ offset: off, kind: 'padding', index, length: total, size: total, crc });
      seed = crc;
      off += total;
      continue;
    }
    const size = 16 + Math.ceil(len / 8) * 8;
    if (off + size > b.length || crc32c(b.subarray(off + 4, off + 16 + len), seed) !== crc || (crc === 0 && len === 0)) break;
    out.push({ offset: off, kind: 'record', index, length: len, size, crc });
    seed = crc;
    off += size;
  }
  return out;
}

/** Deterministic payload for index i (varied sizes, including 0). */
export function payload(i: number, salt = 0): Buffer {
  const sizes = [0, 1, 7, 8, 9, 100, 511, 513, 4095, 4096, 5000];
  const n = sizes[(i + salt) % sizes.length] ?? 1;
  const b = Buffer.alloc(n);
  for (let k = 0; k < n; k++) b[k] = (i * 31 + k * 7 + salt) & 0xff;
  return b;
}

/**
 * Creates the first segment of a log in the version 1 format (no batch headers,
 * as written before format version 2): a header and zeros, `segmentBytes` long.
 * Opening the directory then appends in version 1 to this segment until it fills.
 */
export function createV1Log(dir: string, segmentBytes = 64 * 1024): string {
  const b = Buffer.alloc(segmentBytes);
  b.writeUInt32LE(0x4c574d54, 4); // "TMWL"
  b.writeUInt32LE(1, 8);
  b.writeBigUInt64LE(1n, 16);
  randomBytes(8).copy(b, 24);
  b.writeUInt32LE(crc32c(b.subarray(4, 32)), 0);
  const file = join(dir, `${'1'.padStart(20, '0')}.wal`);
  writeFileSync(file, b);
  return file;
}
