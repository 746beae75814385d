/**
 * The wire codec (lib/net/codec.ts): round trips of every message type, the handshake and
 * the client frames; any chunking of a valid stream parses to the same frames; garbage and
 * mutated frames never throw out of the decoder, only report TM_BAD_FRAME, and never make
 * it hold or allocate more than the frame limit.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isTidemarkError } from '../../lib/errors';
import type { Message } from '../../lib/core/types';
import {
  decodeClientRequest,
  decodeClientResponse,
  decodeHandshake,
  decodeMessage,
  decodeReject,
  encodeClientRequest,
  encodeClientResponse,
  encodeFrame,
  encodeHandshake,
  encodeMessage,
  encodeReject,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameTypes,
  type Frame,
} from '../../lib/net/codec';
import { clientRequestArb, clientResponseArb, handshakeArb, messageArb } from './arbitraries';
import { norm, decodeAny, concatBytes } from './wire-helpers';

const ALL_TYPES = [
  'pre-vote', 'pre-vote-response', 'vote', 'vote-response', 'append', 'append-response',
  'heartbeat', 'heartbeat-response', 'snapshot-chunk', 'snapshot-response', 'timeout-now',
];

function decodeOne(frame: Uint8Array, max = 1 << 20): Frame {
  const r = new FrameDecoder(max).push(frame);
  expect(r.error).toBeNull();
  expect(r.frames).toHaveLength(1);
  return r.frames[0]!;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('round trips', () => {
  it('every message type survives encode → decode unchanged', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(messageArb, (m) => {
        seen.add(m.type);
        const f = decodeOne(encodeMessage(m));
        expect(norm(decodeMessage(f.type, f.body))).toEqual(norm(m));
      }),
      { numRuns: 2000 },
    );
    expect([...seen].sort()).toEqual([...ALL_TYPES].sort());
  });

  it('handshakes, client requests and responses, rejects round trip', () => {
    fc.assert(fc.property(handshakeArb, (h) => {
      const f = decodeOne(encodeHandshake(h));
      expect(f.type).toBe(FrameTypes.HANDSHAKE);
      expect(decodeHandshake(f.body)).toEqual(h);
    }));
    fc.assert(fc.property(clientRequestArb, (r) => {
      const f = decodeOne(encodeClientRequest(r));
      expect(norm(decodeClientRequest(f.body))).toEqual(norm(r));
    }));
    fc.assert(fc.property(clientResponseArb, (r) => {
      const f = decodeOne(encodeClientResponse(r));
      expect(norm(decodeClientResponse(f.body))).toEqual(norm(r));
    }));
    fc.assert(fc.property(fc.string({ maxLength: 300 }), fc.string({ maxLength: 2000 }), (reason, message) => {
      const r = decodeReject(decodeOne(encodeReject({ reason, message })).body);
      expect(reason.startsWith(r.reason) || r.reason.length <= 255).toBe(true);
      expect(Buffer.byteLength(r.reason)).toBeLessThanOrEqual(255);
      if (Buffer.byteLength(message) <= 1024) expect(r.message).toBe(message);
    }));
  });

  it('frame layout: length u32 | version u8 | type u8 | crc32c u32 | body, little endian', () => {
    const f = encodeFrame(FrameTypes.HANDSHAKE, new Uint8Array([1, 2, 3]));
    expect(f.readUInt32LE(0)).toBe(3);
    expect(f[4]).toBe(1);
    expect(f[5]).toBe(FrameTypes.HANDSHAKE);
    expect([...f.subarray(FRAME_HEADER_BYTES)]).toEqual([1, 2, 3]);
  });

  it('entry data decoded from a frame inside one chunk is a view, not a copy', () => {
    const m: Message = {
      type: 'append', from: 'a', to: 'b', clusterId: 'c', generation: 2, prevIndex: 0, prevGeneration: 0, commit: 0,
      entries: [{ index: 1, generation: 2, kind: 'normal', data: new Uint8Array([9, 9, 9]) }],
    };
    const wire = encodeMessage(m);
    const f = decodeOne(wire);
    const got = decodeMessage(f.type, f.body);
    expect(got.type === 'append' && got.entries[0]!.data.buffer).toBe(wire.buffer);
  });

  it('refuses to encode out-of-range fields with TM_INVALID_ARGUMENT', () => {
    const hb = { type: 'heartbeat' as const, from: 'a', to: 'b', clusterId: 'c', generation: 1, commit: 1, readRound: 0 };
    for (const bad of [{ generation: -1 }, { commit: 2 ** 53 }, { from: '' }, { clusterId: 'x'.repeat(256) }, { readRound: 1.5 }]) {
      expect(() => encodeMessage({ ...hb, ...bad })).toThrow(/TM_INVALID_ARGUMENT/);
    }
  });
});

/** A small stream of one frame of each kind. */
function sampleStream(seed: number, count: number): Uint8Array[] {
  return fc.sample(fc.oneof(messageArb.map(encodeMessage), handshakeArb.map(encodeHandshake), clientRequestArb.map(encodeClientRequest)), { seed, numRuns: count });
}

function feed(dec: FrameDecoder, chunks: Uint8Array[]): Frame[] {
  const out: Frame[] = [];
  for (const c of chunks) {
    const r = dec.push(c);
    expect(r.error).toBeNull();
    out.push(...r.frames);
  }
  return out;
}

describe('streaming: any chunking parses', () => {
  it('every split point of a small stream, and byte by byte', () => {
    const frames = sampleStream(7, 5);
    const stream = concatBytes(frames);
    const expected = frames.map((f) => norm(decodeAny(decodeOne(f))));
    for (let i = 0; i <= stream.length; i++) {
      const got = feed(new FrameDecoder(1 << 20), [stream.subarray(0, i), stream.subarray(i)]);
      expect(got.map((f) => norm(decodeAny(f)))).toEqual(expected);
    }
    const bytes = feed(new FrameDecoder(1 << 20), [...stream].map((b) => new Uint8Array([b])));
    expect(bytes.map((f) => norm(decodeAny(f)))).toEqual(expected);
  });

  it('random chunkings of a large stream', () => {
    fc.assert(
      fc.property(fc.integer(), fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 200 }), (seed, sizes) => {
        const frames = sampleStream(seed, 60);
        const stream = concatBytes(frames);
        const chunks: Uint8Array[] = [];
        let pos = 0;
        for (let i = 0; pos < stream.length; i++) {
          const n = sizes[i % sizes.length]!;
          chunks.push(stream.subarray(pos, pos + n));
          pos += n;
        }
        const got = feed(new FrameDecoder(1 << 20), chunks);
        expect(got.map((f) => Buffer.from(f.body).toString('hex'))).toEqual(frames.map((f) => Buffer.from(f.subarray(FRAME_HEADER_BYTES)).toString('hex')));
      }),
      { numRuns: 60 },
    );
  });

  it('an empty body completes even when its header ends a chunk', () => {
    const f = encodeFrame(FrameTypes.CLIENT_REQUEST, new Uint8Array(0));
    const dec = new FrameDecoder(100);
    expect(dec.push(f.subarray(0, 5)).frames).toHaveLength(0);
    expect(dec.push(f.subarray(5)).frames).toHaveLength(1);
  });
});

function expectBadFrame(err: unknown): void {
  expect(isTidemarkError(err, 'TM_BAD_FRAME')).toBe(true);
}

describe('hostile bytes', () => {
  it('an oversized length is refused as soon as the 4 length bytes arrive, before any body byte is kept', () => {
    const dec = new FrameDecoder(1000);
    const hdr = Buffer.alloc(4);
    hdr.writeUInt32LE(1001);
    const r = dec.push(hdr);
    expectBadFrame(r.error);
    expect(r.error!.message).toMatch(/over the limit/);
    expect(dec.bufferedBytes()).toBeLessThanOrEqual(FRAME_HEADER_BYTES);
    // dead afterwards
    expect(dec.push(encodeHandshake({ protocolVersion: 1, clusterId: 'c', role: 'client', nodeId: '' })).error).toBe(r.error);
  });

  it('unknown version, unknown type, bad CRC: TM_BAD_FRAME with a reason', () => {
    const good = encodeHandshake({ protocolVersion: 1, clusterId: 'c', role: 'peer', nodeId: 'n1' });
    const cases: Array<[number, number, RegExp]> = [[4, 2, /version 2/], [5, 99, /frame type 99/], [FRAME_HEADER_BYTES + 1, 0x55, /bad CRC/], [7, 0, /bad CRC/]];
    for (const [at, value, why] of cases) {
      const f = Buffer.from(good);
      f[at] = value === f[at] ? value ^ 1 : value;
      const r = new FrameDecoder(1 << 20).push(f);
      expectBadFrame(r.error);
      expect(r.error!.message).toMatch(why);
      expect(r.frames).toHaveLength(0);
    }
  });

  it('garbage never throws, errors only with TM_BAD_FRAME, never holds or allocates past the limit', () => {
    const max = 4096;
    const concat = vi.spyOn(Buffer, 'concat');
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 2000 }), { maxLength: 20 }), fc.boolean(), (chunks, validPrefix) => {
        const dec = new FrameDecoder(max);
        const all = validPrefix ? [encodeHandshake({ protocolVersion: 1, clusterId: 'c', role: 'peer', nodeId: 'x' }), ...chunks] : chunks;
        for (const c of all) {
          const r = dec.push(c);
          if (r.error !== null) expectBadFrame(r.error);
          expect(dec.bufferedBytes()).toBeLessThanOrEqual(max + FRAME_HEADER_BYTES);
          for (const f of r.frames) {
            expect(f.body.length).toBeLessThanOrEqual(max);
            try {
              decodeAny(f);
            } catch (err) {
              expectBadFrame(err);
            }
          }
        }
      }),
      { numRuns: 500 },
    );
    for (const call of concat.mock.calls) expect(call[1] ?? 0).toBeLessThanOrEqual(max);
  });

  it('a frame with the length prefix set to any value up to 2^32-1 is refused or waited for, never over the limit', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffff_ffff }), fc.uint8Array({ maxLength: 100 }), (length, rest) => {
        const f = Buffer.alloc(4);
        f.writeUInt32LE(length);
        const dec = new FrameDecoder(64);
        const r = dec.push(concatBytes([f, rest]));
        if (length > 64) expectBadFrame(r.error);
        expect(dec.bufferedBytes()).toBeLessThanOrEqual(64 + FRAME_HEADER_BYTES);
      }),
    );
  });

  it('any one-byte change to a valid frame is refused or left incomplete, never decoded', () => {
    fc.assert(
      fc.property(messageArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (m, where, xor) => {
        const f = Buffer.from(encodeMessage(m));
        const at = where % f.length;
        f[at]! ^= xor;
        const r = new FrameDecoder(1 << 20).push(f);
        expect(r.frames).toHaveLength(0);
        if (r.error !== null) expectBadFrame(r.error);
      }),
      { numRuns: 1000 },
    );
  });

  it('body decoders: garbage and truncated bodies give TM_BAD_FRAME, nothing else', () => {
    const types = Object.values(FrameTypes);
    fc.assert(
      fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 200 }), (type, body) => {
        try {
          decodeAny({ version: 1, type, body });
        } catch (err) {
          expectBadFrame(err);
        }
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(messageArb, fc.nat(), (m, cut) => {
        const body = encodeMessage(m).subarray(FRAME_HEADER_BYTES);
        const n = cut % body.length;
        expect(() => decodeMessage(encodeMessage(m)[5]!, body.subarray(0, n))).toThrow(/TM_BAD_FRAME/);
        expect(() => decodeMessage(encodeMessage(m)[5]!, concatBytes([body, new Uint8Array([0])]))).toThrow(/TM_BAD_FRAME/);
      }),
      { numRuns: 500 },
    );
  });

  it('an append claiming 2^32-1 entries in a small body is refused before any entry is built', () => {
    const m: Message = { type: 'append', from: 'a', to: 'b', clusterId: 'c', generation: 1, prevIndex: 0, prevGeneration: 0, commit: 0, entries: [] };
    const body = Buffer.from(encodeMessage(m).subarray(FRAME_HEADER_BYTES));
    body.writeUInt32LE(0xffff_ffff, body.length - 4);
    expect(() => decodeMessage(FrameTypes.APPEND, body)).toThrow(/entries cannot fit/);
  });

  it('invalid UTF-8 in an id, a boolean other than 0/1, an unsafe integer: TM_BAD_FRAME', () => {
    const v = { type: 'vote-response' as const, from: 'ab', to: 'b', clusterId: 'c', generation: 1, granted: true };
    const body = Buffer.from(encodeMessage(v).subarray(FRAME_HEADER_BYTES));
    const utf = Buffer.from(body);
    utf[2] = 0xff;
    expect(() => decodeMessage(FrameTypes.VOTE_RESPONSE, utf)).toThrow(/UTF-8/);
    const boo = Buffer.from(body);
    boo[boo.length - 1] = 2;
    expect(() => decodeMessage(FrameTypes.VOTE_RESPONSE, boo)).toThrow(/0 or 1/);
    const big = Buffer.from(body);
    big.writeUInt32LE(0x20_0000, big.length - 5);
    expect(() => decodeMessage(FrameTypes.VOTE_RESPONSE, big)).toThrow(/safe integer/);
  });
});
