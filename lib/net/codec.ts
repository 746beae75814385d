/**
 * The wire codec: frames, the handshake, every core {@link Message} and the client
 * request/response. Pure: no sockets, no timers, no clock. The transport
 * (./transport.ts) and the client (./client.ts) are its only users.
 *
 * ## Frame layout (all integers little endian)
 *
 * ```
 * offset 0  length  u32   number of body bytes that follow the 10-byte header
 * offset 4  version u8    PROTOCOL_VERSION (1)
 * offset 5  type    u8    one of FrameTypes
 * offset 6  crc32c  u32   CRC-32C of bytes [4, 6) (version, type) followed by the body
 * offset 10 body    `length` bytes
 * ```
 *
 * The CRC covers version, type and body (not the length: a damaged length is caught by the
 * maximum check or, when it shrinks or grows the frame, by the CRC of what it then frames).
 *
 * ## Body encodings
 *
 * Compact binary, no JSON. Numbers that may exceed 2^32 (indexes, generations, offsets,
 * sequence numbers) are `u53`: a u32 low word then a u32 high word that must be below 2^21,
 * so every decoded value is a safe integer. Strings are `u16 byte length | UTF-8` and must
 * be well-formed UTF-8; ids (node, cluster, client) are 1..255 bytes (`clientId` may be
 * empty). Byte blobs are `u32 length | bytes`. Booleans are a u8 that must be 0 or 1.
 * Every decode checks that the body is consumed exactly.
 *
 * Every message starts with the common header `from:id | to:id | clusterId:id |
 * generation:u53`, then its own fields in the order of lib/core/types.ts. An entry is
 * `index:u53 | generation:u53 | kind:u8 (0 normal, 1 noop) | data:bytes`; an append carries
 * `count:u32` entries, each at least {@link ENTRY_WIRE_MIN_BYTES} bytes, checked against
 * the body before any entry is decoded.
 *
 * Decoded byte fields (entry data, snapshot chunks, payloads) are plain `Uint8Array` views
 * into the frame body (not Buffers, not copies; wrap with `Buffer.from(v.buffer,
 * v.byteOffset, v.length)` for Buffer methods, and copy what you keep for long, since a
 * view keeps its whole chunk alive): the decoder copies a frame that arrived in several chunks once, into
 * one body buffer, and a frame that arrived inside one chunk not at all.
 *
 * @packageDocumentation
 */
import { crc32c } from '../crc32c';
import { TidemarkError } from '../errors';
import type { Entry, EntryKind, Message, MessageType, NodeId } from '../core/types';
import type { ClientRequest, ClientResponse } from './api';

/** The protocol version this code speaks (frame header byte and handshake field). */
export const PROTOCOL_VERSION = 1;
/** Bytes of the frame header. */
export const FRAME_HEADER_BYTES = 10;
/** Default largest body accepted on a peer connection. */
export const PEER_MAX_FRAME_BYTES_DEFAULT = 64 * 1024 * 1024;
/** Default largest body accepted on a client connection. */
export const CLIENT_MAX_FRAME_BYTES_DEFAULT = 4 * 1024 * 1024;
/** Largest body accepted before the handshake completes. */
export const HANDSHAKE_MAX_FRAME_BYTES = 4 * 1024;
/** Largest id (node, cluster, client) in UTF-8 bytes. */
export const ID_MAX_BYTES = 255;
/** Smallest encoding of one entry (index, generation, kind, empty data). */
export const ENTRY_WIRE_MIN_BYTES = 8 + 8 + 1 + 4;

/** Frame types. Values are wire constants: never renumber. */
export const FrameTypes = {
  HANDSHAKE: 1,
  /** Sent before closing a connection the sender refuses: a reason for the other side's log. */
  REJECT: 2,
  PRE_VOTE: 10,
  PRE_VOTE_RESPONSE: 11,
  VOTE: 12,
  VOTE_RESPONSE: 13,
  APPEND: 14,
  APPEND_RESPONSE: 15,
  HEARTBEAT: 16,
  HEARTBEAT_RESPONSE: 17,
  SNAPSHOT_CHUNK: 18,
  SNAPSHOT_RESPONSE: 19,
  TIMEOUT_NOW: 20,
  CLIENT_REQUEST: 30,
  CLIENT_RESPONSE: 31,
} as const;
/** One of {@link FrameTypes}. */
export type FrameType = (typeof FrameTypes)[keyof typeof FrameTypes];

const KNOWN_TYPES = new Set<number>(Object.values(FrameTypes));

const MESSAGE_FRAME_TYPE: { readonly [K in MessageType]: FrameType } = {
  'pre-vote': FrameTypes.PRE_VOTE,
  'pre-vote-response': FrameTypes.PRE_VOTE_RESPONSE,
  vote: FrameTypes.VOTE,
  'vote-response': FrameTypes.VOTE_RESPONSE,
  append: FrameTypes.APPEND,
  'append-response': FrameTypes.APPEND_RESPONSE,
  heartbeat: FrameTypes.HEARTBEAT,
  'heartbeat-response': FrameTypes.HEARTBEAT_RESPONSE,
  'snapshot-chunk': FrameTypes.SNAPSHOT_CHUNK,
  'snapshot-response': FrameTypes.SNAPSHOT_RESPONSE,
  'timeout-now': FrameTypes.TIMEOUT_NOW,
};
const FRAME_MESSAGE_TYPE = new Map<number, MessageType>(
  Object.entries(MESSAGE_FRAME_TYPE).map(([k, v]) => [v, k as MessageType]),
);

/** True when frames of `type` carry a core {@link Message}. */
export function isMessageFrameType(type: number): boolean {
  return FRAME_MESSAGE_TYPE.has(type);
}

/** The frame type that carries a message of type `t`. */
export function messageFrameType(t: MessageType): FrameType {
  return MESSAGE_FRAME_TYPE[t];
}

/** One decoded frame: its header fields and its body (CRC already checked). */
export interface Frame {
  readonly version: number;
  readonly type: FrameType;
  readonly body: Uint8Array;
}

/** Who opens a connection: a peer replica, a client, or the server answering a client. */
export type HandshakeRole = 'peer' | 'client' | 'server';

/**
 * The first frame on every connection, in both directions. The dialer sends it at once;
 * the acceptor answers with its own (`peer` with its node id to a peer, `server` with its
 * node id to a client) or with a {@link RejectFrame} and closes.
 */
export interface Handshake {
  readonly protocolVersion: number;
  readonly clusterId: string;
  readonly role: HandshakeRole;
  /** The sender's node id (`peer`, `server`); empty for `client`. */
  readonly nodeId: string;
}

/** Why a connection is being refused (sent before the close, logged by the other side). */
export interface RejectFrame {
  readonly reason: string;
  readonly message: string;
}

const ROLE_CODES: { readonly [K in HandshakeRole]: number } = { peer: 1, client: 2, server: 3 };
const ROLES: readonly (HandshakeRole | undefined)[] = [undefined, 'peer', 'client', 'server'];
const KIND_CODES: { readonly [K in EntryKind]: number } = { normal: 0, noop: 1 };
const KINDS: readonly EntryKind[] = ['normal', 'noop'];
const U53_HIGH_LIMIT = 0x20_0000; // 2^21: high word of a safe integer
const U32_LIMIT = 0x1_0000_0000;

/** CRC-32C of the two covered header bytes (version 1, type), per known type: the seed of the body's CRC. */
const HEADER_CRC = new Map<number, number>([...KNOWN_TYPES].map((t) => [t, crc32c(Uint8Array.of(PROTOCOL_VERSION, t))]));

function frameCrc(type: number, body: Uint8Array): number {
  return crc32c(body, HEADER_CRC.get(type)!);
}

/** UTF-8 byte length of `s`; the common all-ASCII case without a call into Buffer. */
function utf8Length(s: string): number {
  const n = s.length;
  if (n <= 64) {
    let i = 0;
    while (i < n && s.charCodeAt(i) < 0x80) i++;
    if (i === n) return n;
  }
  return Buffer.byteLength(s, 'utf8');
}

function bad(reason: string): TidemarkError {
  return TidemarkError.badFrame(reason);
}

// ---------------------------------------------------------------------------------------
// Encoding

const utf8 = new TextEncoder();

/** Writes into a buffer sized exactly beforehand (see the `size*` functions). */
class Writer {
  readonly buf: Buffer;
  pos = FRAME_HEADER_BYTES;
  constructor(bodyBytes: number) {
    this.buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bodyBytes);
  }
  u8(v: number): void {
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.buf.writeUInt16LE(v, this.pos);
    this.pos += 2;
  }
  u32(v: number): void {
    const b = this.buf;
    const p = this.pos;
    b[p] = v;
    b[p + 1] = v >>> 8;
    b[p + 2] = v >>> 16;
    b[p + 3] = v >>> 24;
    this.pos = p + 4;
  }
  u53(v: number): void {
    this.u32(v >>> 0);
    this.u32(v < U32_LIMIT ? 0 : Math.floor(v / U32_LIMIT));
  }
  bool(v: boolean): void {
    this.u8(v ? 1 : 0);
  }
  str(s: string): void {
    const b = this.buf;
    const n = s.length;
    let p = this.pos + 2;
    let i = 0;
    if (n <= 64) for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[p++] = c;
    }
    if (i < n) p += b.write(s.slice(i), p, 'utf8'); // the rest is not ASCII (or long)
    const bytes = p - this.pos - 2;
    b[this.pos] = bytes;
    b[this.pos + 1] = bytes >>> 8;
    this.pos = p;
  }
  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  /** Fills the header; returns the whole frame. */
  finish(type: FrameType): Buffer {
    const body = this.pos - FRAME_HEADER_BYTES;
    if (body !== this.buf.length - FRAME_HEADER_BYTES) throw new Error(`codec: sized ${this.buf.length - FRAME_HEADER_BYTES} bytes, wrote ${body}`);
    this.buf.writeUInt32LE(body, 0);
    this.buf[4] = PROTOCOL_VERSION;
    this.buf[5] = type;
    this.buf.writeUInt32LE(frameCrc(type, this.buf.subarray(FRAME_HEADER_BYTES)), 6);
    return this.buf;
  }
}

function strBytes(s: string): number {
  return 2 + utf8Length(s);
}

function checkU53(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw TidemarkError.invalidArgument(`codec: ${what} must be a non-negative safe integer, got ${v}`);
}
function checkU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v >= U32_LIMIT) throw TidemarkError.invalidArgument(`codec: ${what} must be a u32, got ${v}`);
}
function checkStr(s: string, what: string, minBytes: number, maxBytes: number): void {
  if (typeof s !== 'string') throw TidemarkError.invalidArgument(`codec: ${what} must be a string`);
  const n = utf8Length(s);
  if (n < minBytes || n > maxBytes) throw TidemarkError.invalidArgument(`codec: ${what} must be ${minBytes}..${maxBytes} UTF-8 bytes, got ${n}`);
}

/** Encodes a whole frame around a body the caller built. */
export function encodeFrame(type: FrameType, body: Uint8Array): Buffer {
  const w = new Writer(body.length);
  w.buf.set(body, FRAME_HEADER_BYTES);
  w.pos += body.length;
  return w.finish(type);
}

/** Encodes a handshake frame. */
export function encodeHandshake(h: Handshake): Buffer {
  checkStr(h.clusterId, 'clusterId', 1, ID_MAX_BYTES);
  checkStr(h.nodeId, 'nodeId', h.role === 'client' ? 0 : 1, ID_MAX_BYTES);
  if (!Number.isInteger(h.protocolVersion) || h.protocolVersion < 0 || h.protocolVersion > 0xffff) {
    throw TidemarkError.invalidArgument(`codec: protocolVersion must be a u16, got ${h.protocolVersion}`);
  }
  const w = new Writer(2 + strBytes(h.clusterId) + 1 + strBytes(h.nodeId));
  w.u16(h.protocolVersion);
  w.str(h.clusterId);
  w.u8(ROLE_CODES[h.role]);
  w.str(h.nodeId);
  return w.finish(FrameTypes.HANDSHAKE);
}

/** Encodes a reject frame; the strings are cut to fit. */
export function encodeReject(r: RejectFrame): Buffer {
  const reason = truncateUtf8(r.reason, 255);
  const message = truncateUtf8(r.message, 1024);
  const w = new Writer(strBytes(reason) + strBytes(message));
  w.str(reason);
  w.str(message);
  return w.finish(FrameTypes.REJECT);
}

function truncateUtf8(s: string, maxBytes: number): string {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= maxBytes) return s;
  let end = maxBytes;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--; // do not cut a character in two
  return b.subarray(0, end).toString('utf8');
}

function messageBodyBytes(m: Message): number {
  let n = strBytes(m.from) + strBytes(m.to) + strBytes(m.clusterId) + 8;
  switch (m.type) {
    case 'pre-vote':
      return n + 16;
    case 'vote':
      return n + 17;
    case 'pre-vote-response':
    case 'vote-response':
      return n + 1;
    case 'append':
      n += 8 + 8 + 8 + 4;
      for (const e of m.entries) n += ENTRY_WIRE_MIN_BYTES + e.data.length;
      return n;
    case 'append-response':
      return n + 1 + 24;
    case 'heartbeat':
      return n + 16;
    case 'heartbeat-response':
      return n + 8;
    case 'snapshot-chunk':
      return n + 16 + 16 + 4 + m.data.length;
    case 'snapshot-response':
      return n + 16;
    case 'timeout-now':
      return n;
  }
}

function checkMessage(m: Message): void {
  checkStr(m.from, 'from', 1, ID_MAX_BYTES);
  checkStr(m.to, 'to', 1, ID_MAX_BYTES);
  checkStr(m.clusterId, 'clusterId', 1, ID_MAX_BYTES);
  checkU53(m.generation, 'generation');
  switch (m.type) {
    case 'pre-vote':
    case 'vote':
      checkU53(m.lastIndex, 'lastIndex');
      checkU53(m.lastGeneration, 'lastGeneration');
      return;
    case 'append':
      checkU53(m.prevIndex, 'prevIndex');
      checkU53(m.prevGeneration, 'prevGeneration');
      checkU53(m.commit, 'commit');
      checkU32(m.entries.length, 'entry count');
      for (const e of m.entries) {
        checkU53(e.index, 'entry index');
        checkU53(e.generation, 'entry generation');
        if (KIND_CODES[e.kind] === undefined) throw TidemarkError.invalidArgument(`codec: unknown entry kind ${String(e.kind)}`);
        checkU32(e.data.length, 'entry data length');
      }
      return;
    case 'append-response':
      checkU53(m.index, 'index');
      checkU53(m.hintIndex, 'hintIndex');
      checkU53(m.hintGeneration, 'hintGeneration');
      return;
    case 'heartbeat':
      checkU53(m.commit, 'commit');
      checkU53(m.readRound, 'readRound');
      return;
    case 'heartbeat-response':
      checkU53(m.readRound, 'readRound');
      return;
    case 'snapshot-chunk':
      checkU53(m.meta.index, 'snapshot index');
      checkU53(m.meta.generation, 'snapshot generation');
      checkU53(m.offset, 'offset');
      checkU53(m.totalBytes, 'totalBytes');
      return;
    case 'snapshot-response':
      checkU53(m.snapshotIndex, 'snapshotIndex');
      checkU53(m.nextOffset, 'nextOffset');
      return;
    case 'pre-vote-response':
    case 'vote-response':
    case 'timeout-now':
      return;
  }
}

/**
 * Encodes `m` as one frame. Entry data and snapshot chunks are copied once, into the frame.
 * @throws `TM_INVALID_ARGUMENT` when a field is out of range (a programmer error upstream).
 */
export function encodeMessage(m: Message): Buffer {
  checkMessage(m);
  const w = new Writer(messageBodyBytes(m));
  w.str(m.from);
  w.str(m.to);
  w.str(m.clusterId);
  w.u53(m.generation);
  switch (m.type) {
    case 'pre-vote':
      w.u53(m.lastIndex);
      w.u53(m.lastGeneration);
      break;
    case 'vote':
      w.u53(m.lastIndex);
      w.u53(m.lastGeneration);
      w.bool(m.transfer);
      break;
    case 'pre-vote-response':
    case 'vote-response':
      w.bool(m.granted);
      break;
    case 'append':
      w.u53(m.prevIndex);
      w.u53(m.prevGeneration);
      w.u53(m.commit);
      w.u32(m.entries.length);
      for (const e of m.entries) {
        w.u53(e.index);
        w.u53(e.generation);
        w.u8(KIND_CODES[e.kind]);
        w.bytes(e.data);
      }
      break;
    case 'append-response':
      w.bool(m.success);
      w.u53(m.index);
      w.u53(m.hintIndex);
      w.u53(m.hintGeneration);
      break;
    case 'heartbeat':
      w.u53(m.commit);
      w.u53(m.readRound);
      break;
    case 'heartbeat-response':
      w.u53(m.readRound);
      break;
    case 'snapshot-chunk':
      w.u53(m.meta.index);
      w.u53(m.meta.generation);
      w.u53(m.offset);
      w.u53(m.totalBytes);
      w.bytes(m.data);
      break;
    case 'snapshot-response':
      w.u53(m.snapshotIndex);
      w.u53(m.nextOffset);
      break;
    case 'timeout-now':
      break;
  }
  return w.finish(MESSAGE_FRAME_TYPE[m.type]);
}

const REQUEST_KINDS: readonly ClientRequest['kind'][] = ['propose', 'read', 'status'];
const READ_MODES: readonly (ClientRequest['readMode'] | undefined)[] = [undefined, 'linearizable', 'follower'];
const OUTCOMES: readonly ('not-applied' | 'unknown')[] = ['not-applied', 'unknown'];
/** Longest error message carried in a client response (longer ones are cut). */
export const RESPONSE_MESSAGE_MAX_BYTES = 4096;

/**
 * Encodes a client request. Layout: `requestId:u32 | kind:u8 (0 propose, 1 read, 2 status) |
 * clientId:str(0..255) | seq:u53 | readMode:u8 (0 none, 1 linearizable, 2 follower) |
 * firstUnackedSeq:u53 (0 = absent) | payload:bytes`.
 */
export function encodeClientRequest(r: ClientRequest): Buffer {
  checkU32(r.requestId, 'requestId');
  checkStr(r.clientId, 'clientId', 0, ID_MAX_BYTES);
  checkU53(r.seq, 'seq');
  const firstUnacked = r.firstUnackedSeq ?? 0;
  checkU53(firstUnacked, 'firstUnackedSeq');
  const kind = REQUEST_KINDS.indexOf(r.kind);
  if (kind < 0) throw TidemarkError.invalidArgument(`codec: unknown request kind ${String(r.kind)}`);
  const mode = READ_MODES.indexOf(r.readMode);
  if (mode < 0) throw TidemarkError.invalidArgument(`codec: unknown read mode ${String(r.readMode)}`);
  if (!(r.payload instanceof Uint8Array)) throw TidemarkError.invalidArgument('codec: payload must be a Uint8Array');
  const w = new Writer(4 + 1 + strBytes(r.clientId) + 8 + 1 + 8 + 4 + r.payload.length);
  w.u32(r.requestId);
  w.u8(kind);
  w.str(r.clientId);
  w.u53(r.seq);
  w.u8(mode);
  w.u53(firstUnacked);
  w.bytes(r.payload);
  return w.finish(FrameTypes.CLIENT_REQUEST);
}

/**
 * Encodes a client response. Layout: `requestId:u32 | ok:u8`, then for ok `index:u53 |
 * result:bytes`, else `code:str(1..255) | message:str (cut to 4 KiB) | outcome:u8
 * (0 not-applied, 1 unknown) | flags:u8 (bit 0 leaderId, bit 1 leaderAddress, bit 2
 * retryAfterMs) | [leaderId:str] | [leaderAddress:str] | [retryAfterMs:u32]`.
 */
export function encodeClientResponse(r: ClientResponse): Buffer {
  checkU32(r.requestId, 'requestId');
  if (r.ok) {
    checkU53(r.index, 'index');
    const w = new Writer(4 + 1 + 8 + 4 + r.result.length);
    w.u32(r.requestId);
    w.u8(1);
    w.u53(r.index);
    w.bytes(r.result);
    return w.finish(FrameTypes.CLIENT_RESPONSE);
  }
  checkStr(r.code, 'code', 1, ID_MAX_BYTES);
  const message = truncateUtf8(r.message, RESPONSE_MESSAGE_MAX_BYTES);
  const outcome = OUTCOMES.indexOf(r.outcome);
  if (outcome < 0) throw TidemarkError.invalidArgument(`codec: unknown outcome ${String(r.outcome)}`);
  if (r.leaderId !== undefined) checkStr(r.leaderId, 'leaderId', 0, ID_MAX_BYTES);
  if (r.leaderAddress !== undefined) checkStr(r.leaderAddress, 'leaderAddress', 0, ID_MAX_BYTES);
  if (r.retryAfterMs !== undefined) checkU32(r.retryAfterMs, 'retryAfterMs');
  const flags = (r.leaderId !== undefined ? 1 : 0) | (r.leaderAddress !== undefined ? 2 : 0) | (r.retryAfterMs !== undefined ? 4 : 0);
  const w = new Writer(
    4 + 1 + strBytes(r.code) + strBytes(message) + 1 + 1 +
      (r.leaderId !== undefined ? strBytes(r.leaderId) : 0) +
      (r.leaderAddress !== undefined ? strBytes(r.leaderAddress) : 0) +
      (r.retryAfterMs !== undefined ? 4 : 0),
  );
  w.u32(r.requestId);
  w.u8(0);
  w.str(r.code);
  w.str(message);
  w.u8(outcome);
  w.u8(flags);
  if (r.leaderId !== undefined) w.str(r.leaderId);
  if (r.leaderAddress !== undefined) w.str(r.leaderAddress);
  if (r.retryAfterMs !== undefined) w.u32(r.retryAfterMs);
  return w.finish(FrameTypes.CLIENT_RESPONSE);
}

// ---------------------------------------------------------------------------------------
// Decoding

const utf8Fatal = new TextDecoder('utf-8', { fatal: true });

/** Reads a body with bounds checks; every failure is `TM_BAD_FRAME`. */
class Reader {
  private pos = 0;
  constructor(private readonly body: Uint8Array, private readonly what: string) {}
  private need(n: number, field: string): void {
    if (this.body.length - this.pos < n) throw bad(`${this.what}: body ends inside ${field}`);
  }
  remaining(): number {
    return this.body.length - this.pos;
  }
  u8(field: string): number {
    this.need(1, field);
    return this.body[this.pos++]!;
  }
  u16(field: string): number {
    this.need(2, field);
    const b = this.body;
    const p = this.pos;
    this.pos = p + 2;
    return b[p]! | (b[p + 1]! << 8);
  }
  private word(p: number): number {
    const b = this.body;
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
  }
  u32(field: string): number {
    this.need(4, field);
    const v = this.word(this.pos);
    this.pos += 4;
    return v;
  }
  u53(field: string): number {
    this.need(8, field);
    const lo = this.word(this.pos);
    const hi = this.word(this.pos + 4);
    if (hi >= U53_HIGH_LIMIT) throw bad(`${this.what}: ${field} is not a safe integer`);
    this.pos += 8;
    return hi * U32_LIMIT + lo;
  }
  bool(field: string): boolean {
    const v = this.u8(field);
    if (v > 1) throw bad(`${this.what}: ${field} must be 0 or 1, got ${v}`);
    return v === 1;
  }
  str(field: string, minBytes: number, maxBytes: number): string {
    const n = this.u16(field);
    if (n < minBytes || n > maxBytes) throw bad(`${this.what}: ${field} must be ${minBytes}..${maxBytes} bytes, got ${n}`);
    this.need(n, field);
    const b = this.body;
    const start = this.pos;
    const end = start + n;
    if (n <= 64) {
      // ASCII fast path: ids are short and almost always ASCII (valid UTF-8 by definition).
      let s = '';
      let i = start;
      for (; i < end; i++) {
        const c = b[i]!;
        if (c >= 0x80) break;
        s += String.fromCharCode(c);
      }
      if (i === end) {
        this.pos = end;
        return s;
      }
    }
    let s: string;
    try {
      s = utf8Fatal.decode(b.subarray(start, end));
    } catch {
      throw bad(`${this.what}: ${field} is not valid UTF-8`);
    }
    this.pos = end;
    return s;
  }
  id(field: string): string {
    return this.str(field, 1, ID_MAX_BYTES);
  }
  /** A view into the body, not a copy. */
  bytes(field: string, maxBytes = Number.MAX_SAFE_INTEGER): Uint8Array {
    const n = this.u32(field);
    if (n > maxBytes) throw bad(`${this.what}: ${field} of ${n} bytes is over ${maxBytes}`);
    this.need(n, field);
    // A plain Uint8Array view (cheaper to make than a Buffer's subarray).
    const v = new Uint8Array(this.body.buffer, this.body.byteOffset + this.pos, n);
    this.pos += n;
    return v;
  }
  end(): void {
    if (this.pos !== this.body.length) throw bad(`${this.what}: ${this.body.length - this.pos} trailing bytes`);
  }
}

/** Decodes a handshake body. @throws `TM_BAD_FRAME` */
export function decodeHandshake(body: Uint8Array): Handshake {
  const r = new Reader(body, 'handshake');
  const protocolVersion = r.u16('protocolVersion');
  const clusterId = r.id('clusterId');
  const roleCode = r.u8('role');
  const role = ROLES[roleCode];
  if (role === undefined) throw bad(`handshake: unknown role ${roleCode}`);
  const nodeId = r.str('nodeId', role === 'client' ? 0 : 1, ID_MAX_BYTES);
  r.end();
  return { protocolVersion, clusterId, role, nodeId };
}

/** Decodes a reject body. @throws `TM_BAD_FRAME` */
export function decodeReject(body: Uint8Array): RejectFrame {
  const r = new Reader(body, 'reject');
  const reason = r.str('reason', 0, 255);
  const message = r.str('message', 0, 4096);
  r.end();
  return { reason, message };
}

function decodeEntries(r: Reader): Entry[] {
  const count = r.u32('entry count');
  if (count > Math.floor(r.remaining() / ENTRY_WIRE_MIN_BYTES)) throw bad(`append: ${count} entries cannot fit in ${r.remaining()} bytes`);
  const entries: Entry[] = new Array<Entry>(count);
  for (let i = 0; i < count; i++) {
    const index = r.u53('entry index');
    const generation = r.u53('entry generation');
    const kindCode = r.u8('entry kind');
    const kind = KINDS[kindCode];
    if (kind === undefined) throw bad(`append: unknown entry kind ${kindCode}`);
    const data = r.bytes('entry data');
    entries[i] = { index, generation, kind, data };
  }
  return entries;
}

/**
 * Decodes the body of a message frame of `type`. Entry data and snapshot chunk data are
 * views into `body`.
 * @throws `TM_BAD_FRAME` for a malformed body or a type that is not a message.
 */
export function decodeMessage(type: number, body: Uint8Array): Message {
  const t = FRAME_MESSAGE_TYPE.get(type);
  if (t === undefined) throw bad(`frame type ${type} is not a message`);
  const r = new Reader(body, t);
  const from: NodeId = r.id('from');
  const to: NodeId = r.id('to');
  const clusterId = r.id('clusterId');
  const generation = r.u53('generation');
  let m: Message;
  switch (t) {
    case 'pre-vote':
      m = { type: t, from, to, clusterId, generation, lastIndex: r.u53('lastIndex'), lastGeneration: r.u53('lastGeneration') };
      break;
    case 'vote':
      m = { type: t, from, to, clusterId, generation, lastIndex: r.u53('lastIndex'), lastGeneration: r.u53('lastGeneration'), transfer: r.bool('transfer') };
      break;
    case 'pre-vote-response':
    case 'vote-response':
      m = { type: t, from, to, clusterId, generation, granted: r.bool('granted') };
      break;
    case 'append': {
      const prevIndex = r.u53('prevIndex');
      const prevGeneration = r.u53('prevGeneration');
      const commit = r.u53('commit');
      m = { type: t, from, to, clusterId, generation, prevIndex, prevGeneration, commit, entries: decodeEntries(r) };
      break;
    }
    case 'append-response':
      m = {
        type: t,
        from,
        to,
        clusterId,
        generation,
        success: r.bool('success'),
        index: r.u53('index'),
        hintIndex: r.u53('hintIndex'),
        hintGeneration: r.u53('hintGeneration'),
      };
      break;
    case 'heartbeat':
      m = { type: t, from, to, clusterId, generation, commit: r.u53('commit'), readRound: r.u53('readRound') };
      break;
    case 'heartbeat-response':
      m = { type: t, from, to, clusterId, generation, readRound: r.u53('readRound') };
      break;
    case 'snapshot-chunk': {
      const meta = { index: r.u53('snapshot index'), generation: r.u53('snapshot generation') };
      const offset = r.u53('offset');
      const totalBytes = r.u53('totalBytes');
      const data = r.bytes('chunk data');
      if (offset + data.length > totalBytes) throw bad(`snapshot-chunk: bytes [${offset}, ${offset + data.length}) past totalBytes ${totalBytes}`);
      m = { type: t, from, to, clusterId, generation, meta, offset, totalBytes, data };
      break;
    }
    case 'snapshot-response':
      m = { type: t, from, to, clusterId, generation, snapshotIndex: r.u53('snapshotIndex'), nextOffset: r.u53('nextOffset') };
      break;
    case 'timeout-now':
      m = { type: t, from, to, clusterId, generation };
      break;
  }
  r.end();
  return m;
}

/** Decodes a client request body. @throws `TM_BAD_FRAME` */
export function decodeClientRequest(body: Uint8Array): ClientRequest {
  const r = new Reader(body, 'client request');
  const requestId = r.u32('requestId');
  const kindCode = r.u8('kind');
  const kind = REQUEST_KINDS[kindCode];
  if (kind === undefined) throw bad(`client request: unknown kind ${kindCode}`);
  const clientId = r.str('clientId', 0, ID_MAX_BYTES);
  const seq = r.u53('seq');
  const modeCode = r.u8('readMode');
  if (modeCode >= READ_MODES.length) throw bad(`client request: unknown read mode ${modeCode}`);
  const readMode = READ_MODES[modeCode];
  const firstUnackedSeq = r.u53('firstUnackedSeq');
  const payload = r.bytes('payload');
  r.end();
  return {
    requestId,
    kind,
    clientId,
    seq,
    ...(readMode !== undefined ? { readMode } : {}),
    ...(firstUnackedSeq !== 0 ? { firstUnackedSeq } : {}),
    payload,
  };
}

/** Decodes a client response body. @throws `TM_BAD_FRAME` */
export function decodeClientResponse(body: Uint8Array): ClientResponse {
  const r = new Reader(body, 'client response');
  const requestId = r.u32('requestId');
  const ok = r.bool('ok');
  if (ok) {
    const index = r.u53('index');
    const result = r.bytes('result');
    r.end();
    return { requestId, ok, index, result };
  }
  const code = r.id('code');
  const message = r.str('message', 0, RESPONSE_MESSAGE_MAX_BYTES);
  const outcomeCode = r.u8('outcome');
  const outcome = OUTCOMES[outcomeCode];
  if (outcome === undefined) throw bad(`client response: unknown outcome ${outcomeCode}`);
  const flags = r.u8('flags');
  if (flags > 7) throw bad(`client response: unknown flags ${flags}`);
  const leaderId = (flags & 1) !== 0 ? r.str('leaderId', 0, ID_MAX_BYTES) : undefined;
  const leaderAddress = (flags & 2) !== 0 ? r.str('leaderAddress', 0, ID_MAX_BYTES) : undefined;
  const retryAfterMs = (flags & 4) !== 0 ? r.u32('retryAfterMs') : undefined;
  r.end();
  return {
    requestId,
    ok,
    code,
    message,
    outcome,
    ...(leaderId !== undefined ? { leaderId } : {}),
    ...(leaderAddress !== undefined ? { leaderAddress } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
}

// ---------------------------------------------------------------------------------------
// Streaming

/** What one {@link FrameDecoder.push} produced: the frames completed, then maybe an error. */
export interface DecodeResult {
  readonly frames: Frame[];
  /** Set when the stream went bad; frames before the bad one are still in `frames`. */
  readonly error: TidemarkError | null;
}

/**
 * Splits a byte stream into frames, whatever its chunking. The length is checked against
 * `maxFrameBytes` as soon as the 4 length bytes are in, before any body byte is kept; a
 * partial body is kept as the chunks that carry it (never more than the frame's length)
 * and joined once when complete. After an error the decoder is dead: every later push
 * reports the same error. Never throws.
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFill = 0;
  private bodyBytes = -1; // -1: reading a header
  private parts: Uint8Array[] = [];
  private partsBytes = 0;
  private failed: TidemarkError | null = null;

  /** @param maxFrameBytes largest body accepted; may be changed later with {@link FrameDecoder.setMaxFrameBytes}. */
  constructor(private maxFrameBytes: number) {}

  /** Changes the limit for frames whose header has not been read yet (e.g. after a handshake). */
  setMaxFrameBytes(n: number): void {
    this.maxFrameBytes = n;
  }

  /** Bytes held for an incomplete frame (for tests and for memory accounting). */
  bufferedBytes(): number {
    return this.headerFill + this.partsBytes;
  }

  /** Feeds `chunk`; returns the frames it completed and the error, if the stream went bad. */
  push(chunk: Uint8Array): DecodeResult {
    const frames: Frame[] = [];
    const error = this.pushEach(chunk, (f) => {
      frames.push(f);
      return true;
    });
    return { frames, error };
  }

  /**
   * Feeds `chunk`, handing each frame to `onFrame` as soon as it is complete, before the
   * next header is read: `onFrame` may change the limit for the frames after it (a
   * handshake raising it), or return false to abandon the stream (the rest of the chunk
   * is dropped, so the decoder must not be fed again). Returns the error, if the stream
   * went bad, else null.
   */
  pushEach(chunk: Uint8Array, onFrame: (f: Frame) => boolean): TidemarkError | null {
    if (this.failed !== null) return this.failed;
    return this.run(chunk, onFrame);
  }

  private run(chunk: Uint8Array, onFrame: (f: Frame) => boolean): TidemarkError | null {
    let pos = 0;
    for (;;) {
      if (this.bodyBytes < 0) {
        if (pos >= chunk.length) break;
        if (this.headerFill === 0 && chunk.length - pos >= FRAME_HEADER_BYTES) {
          // Fast path: the whole header is in this chunk.
          const length = (chunk[pos]! | (chunk[pos + 1]! << 8) | (chunk[pos + 2]! << 16) | (chunk[pos + 3]! << 24)) >>> 0;
          if (length > this.maxFrameBytes) return this.fail(`frame of ${length} bytes is over the limit of ${this.maxFrameBytes}`);
          const version = chunk[pos + 4]!;
          const type = chunk[pos + 5]!;
          if (version !== PROTOCOL_VERSION) return this.fail(`unknown protocol version ${version}`);
          if (!KNOWN_TYPES.has(type)) return this.fail(`unknown frame type ${type}`);
          const crc = (chunk[pos + 6]! | (chunk[pos + 7]! << 8) | (chunk[pos + 8]! << 16) | (chunk[pos + 9]! << 24)) >>> 0;
          pos += FRAME_HEADER_BYTES;
          if (chunk.length - pos >= length) {
            const body = chunk.subarray(pos, pos + length); // the whole frame is in this chunk: no copy
            pos += length;
            if (frameCrc(type, body) !== crc) return this.fail(`bad CRC on a frame of type ${type} (${length} bytes)`);
            if (!onFrame({ version, type: type as FrameType, body })) return null;
            continue;
          }
          this.header.set(chunk.subarray(pos - FRAME_HEADER_BYTES, pos), 0);
          this.headerFill = FRAME_HEADER_BYTES;
          this.bodyBytes = length;
          continue;
        }
        const take = Math.min(FRAME_HEADER_BYTES - this.headerFill, chunk.length - pos);
        this.header.set(chunk.subarray(pos, pos + take), this.headerFill);
        const before = this.headerFill;
        this.headerFill += take;
        pos += take;
        if (before < 4 && this.headerFill >= 4) {
          const length = this.header.readUInt32LE(0);
          if (length > this.maxFrameBytes) return this.fail(`frame of ${length} bytes is over the limit of ${this.maxFrameBytes}`);
        }
        if (this.headerFill < FRAME_HEADER_BYTES) break;
        const version = this.header[4]!;
        const type = this.header[5]!;
        if (version !== PROTOCOL_VERSION) return this.fail(`unknown protocol version ${version}`);
        if (!KNOWN_TYPES.has(type)) return this.fail(`unknown frame type ${type}`);
        this.bodyBytes = this.header.readUInt32LE(0);
      }
      const want = this.bodyBytes - this.partsBytes;
      const take = Math.min(want, chunk.length - pos);
      let body: Uint8Array;
      if (take === want && this.parts.length === 0) {
        body = chunk.subarray(pos, pos + take); // the whole body is inside this chunk: no copy
        pos += take;
      } else {
        if (take > 0) {
          this.parts.push(chunk.subarray(pos, pos + take));
          this.partsBytes += take;
          pos += take;
        }
        if (this.partsBytes < this.bodyBytes) break;
        body = Buffer.concat(this.parts, this.partsBytes); // the one copy of a split frame
        this.parts = [];
        this.partsBytes = 0;
      }
      if (frameCrc(this.header[5]!, body) !== this.header.readUInt32LE(6)) return this.fail(`bad CRC on a frame of type ${this.header[5]!} (${body.length} bytes)`);
      this.headerFill = 0;
      this.bodyBytes = -1;
      if (!onFrame({ version: this.header[4]!, type: this.header[5] as FrameType, body })) return null;
    }
    return null;
  }

  private fail(reason: string): TidemarkError {
    this.failed = bad(reason);
    this.parts = [];
    this.partsBytes = 0;
    return this.failed;
  }
}
