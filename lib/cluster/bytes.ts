/**
 * A tiny little-endian binary writer and reader for the cluster's own encodings
 * (KV commands and results, the session table, node snapshots). Lengths are u32,
 * integers up to 2^53 are u64. Reading past the end or a bad field throws a
 * TidemarkError with the code the caller chose (TM_INVALID_ARGUMENT for client
 * input, TM_CORRUPTION for stored bytes).
 *
 * @packageDocumentation
 */
import { TidemarkError, type TidemarkErrorCode } from '../errors';

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** Growable byte writer. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private n = 0;

  constructor(initial = 64) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  private room(bytes: number): void {
    if (this.n + bytes <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + bytes) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.room(1);
    this.view.setUint8(this.n, v);
    this.n += 1;
    return this;
  }
  u32(v: number): this {
    this.room(4);
    this.view.setUint32(this.n, v >>> 0, true);
    this.n += 4;
    return this;
  }
  u64(v: number): this {
    this.room(8);
    this.view.setUint32(this.n, v >>> 0, true);
    this.view.setUint32(this.n + 4, Math.floor(v / 0x100000000), true);
    this.n += 8;
    return this;
  }
  /** u32 length, then the bytes. */
  bytes(b: Uint8Array): this {
    this.u32(b.length);
    return this.raw(b);
  }
  /** The bytes, no length. */
  raw(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
    return this;
  }
  /** u32 length, then UTF-8. */
  string(s: string): this {
    return this.bytes(utf8.encode(s));
  }
  /** u8 flag (0 absent, 1 present), then the bytes when present. */
  optionalBytes(b: Uint8Array | null): this {
    if (b === null) return this.u8(0);
    return this.u8(1).bytes(b);
  }
  /** The bytes written (the writer must not be used afterwards). No copy when the initial size was exact. */
  finish(): Uint8Array {
    return this.n === this.buf.length ? this.buf : this.buf.slice(0, this.n);
  }
}

/** Bounds-checked reader over one encoded value. */
export class ByteReader {
  private at = 0;
  private readonly view: DataView;

  constructor(
    private readonly buf: Uint8Array,
    private readonly code: TidemarkErrorCode,
    private readonly what: string,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  fail(message: string): never {
    throw new TidemarkError(this.code, `${this.what}: ${message} (at byte ${this.at} of ${this.buf.length})`);
  }
  private need(n: number): void {
    if (this.at + n > this.buf.length) this.fail(`truncated: ${n} more bytes expected`);
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.at++);
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.at, true);
    this.at += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const lo = this.view.getUint32(this.at, true);
    const hi = this.view.getUint32(this.at + 4, true);
    if (hi > 0x1fffff) this.fail('integer above 2^53');
    this.at += 8;
    return hi * 0x100000000 + lo;
  }
  /** u32 length, then that many bytes (a copy). */
  bytes(): Uint8Array {
    const n = this.u32();
    this.need(n);
    const out = this.buf.slice(this.at, this.at + n);
    this.at += n;
    return out;
  }
  string(): string {
    const b = this.bytes();
    try {
      return utf8Decoder.decode(b);
    } catch {
      return this.fail('invalid UTF-8');
    }
  }
  optionalBytes(): Uint8Array | null {
    const flag = this.u8();
    if (flag === 0) return null;
    if (flag !== 1) this.fail(`presence flag ${flag}`);
    return this.bytes();
  }
  /** Everything not yet read (a copy). */
  rest(): Uint8Array {
    const out = this.buf.slice(this.at);
    this.at = this.buf.length;
    return out;
  }
  /** Everything not yet read, as a view of the input (no copy). */
  restView(): Uint8Array {
    const out = this.buf.subarray(this.at);
    this.at = this.buf.length;
    return out;
  }
  /** Throws unless every byte was read. */
  end(): void {
    if (this.at !== this.buf.length) this.fail(`${this.buf.length - this.at} trailing bytes`);
  }
}
