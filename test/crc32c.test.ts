import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { crc32c, crc32cImplementation, isTidemarkError } from '../lib/index';
import { _forceTableForTests } from '../lib/crc32c';
import { binding } from '../lib/log/binding';

interface Vector { name: string; hex: string; crc32c: number }
const vectors = (JSON.parse(readFileSync(join(__dirname, 'fixtures', 'crc32c.json'), 'utf8')) as { vectors: Vector[] }).vectors;
const vectorBytes = vectors.map((v) => [v.name, Buffer.from(v.hex, 'hex'), v.crc32c] as const);

// Independent reference: one bit at a time, reflected polynomial 0x82F63B78.
// `prefixCrcs(data)[n]` is the CRC-32C of data[0, n), all lengths in one pass.
function prefixCrcs(data: Uint8Array): Uint32Array {
  const out = new Uint32Array(data.length + 1);
  let reg = 0xffffffff;
  for (let i = 0; i < data.length; i++) {
    reg ^= data[i] ?? 0;
    for (let bit = 0; bit < 8; bit++) reg = (reg >>> 1) ^ (0x82f63b78 & -(reg & 1));
    out[i + 1] = ~reg >>> 0;
  }
  return out;
}

// Seeded PRNG (xorshift32), so a failure is reproducible; the seed is in the test name.
function randomBytes(seed: number, length: number): Uint8Array {
  let s = seed >>> 0 || 1;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

// Lengths that cross every internal threshold: byte/word tails, the 3-stream cut-in
// (192 B on x86-64, 768 B on arm64), stream-length steps, one and two full blocks of the
// largest stream size (3 x 16 KiB on x86-64, 3 x 8 KiB on arm64), and the x86-64 fused
// crc32+fold blocks (136 bytes a turn, 2 to 128 turns: 272 to 17,408 bytes) alone,
// repeated and followed by tails.
const SEED = 0x7ead1;
const MAX_LEN = 100_000;
function testLengths(): number[] {
  const lengths = new Set<number>();
  for (let n = 0; n <= 1100; n++) lengths.add(n);
  for (const edge of [3 * 64, 3 * 256, 3 * 8192, 3 * 16384, 6 * 8192, 6 * 16384, 4096, 65536, 70000,
    136 * 24, 136 * 127, 17408, 2 * 17408, 5 * 17408, 17408 + 272, 17408 + 136 * 24 + 192, 136 * 24 + 135]) {
    for (let d = -9; d <= 9; d++) if (edge + d >= 0 && edge + d <= MAX_LEN) lengths.add(edge + d);
  }
  const rnd = randomBytes(SEED ^ 0x55, 4 * 300);
  for (let i = 0; i < 300; i++) {
    const r = ((rnd[4 * i] ?? 0) | ((rnd[4 * i + 1] ?? 0) << 8) | ((rnd[4 * i + 2] ?? 0) << 16)) >>> 0;
    lengths.add(r % (MAX_LEN + 1));
  }
  return [...lengths].sort((a, b) => a - b);
}

const big = randomBytes(SEED, MAX_LEN + 16);
const references = new Map<number, Uint32Array>();
function reference(offset: number): Uint32Array {
  let r = references.get(offset);
  if (r === undefined) {
    r = prefixCrcs(big.subarray(offset, offset + MAX_LEN));
    references.set(offset, r);
  }
  return r;
}

function checkRandomLengths(offsets: readonly number[]): void {
  const lengths = testLengths();
  for (const offset of offsets) {
    const ref = reference(offset);
    for (const n of lengths) {
      const got = crc32c(big.subarray(offset, offset + n));
      if (got !== ref[n]) expect.fail(`length ${n} at offset ${offset} (seed ${SEED}): got ${got}, want ${ref[n]}`);
    }
  }
}

function checkVectorsEverywayround(): void {
  for (const [name, bytes, want] of vectorBytes) {
    expect(crc32c(bytes), name).toBe(want);
    // Chained: every split point for short vectors, a spread of them for long ones.
    const splits = bytes.length <= 64
      ? Array.from({ length: bytes.length + 1 }, (_, i) => i)
      : [0, 1, 7, 8, 9, 63, 64, 191, 192, 193, bytes.length >> 1, bytes.length - 9, bytes.length - 1, bytes.length];
    for (const at of splits) {
      if (at < 0 || at > bytes.length) continue;
      const seed = crc32c(bytes.subarray(0, at));
      expect(crc32c(bytes.subarray(at), seed), `${name} split at ${at}`).toBe(want);
    }
    // Three pieces.
    const a = bytes.length >> 2;
    const b = (3 * bytes.length) >> 2;
    expect(crc32c(bytes.subarray(b), crc32c(bytes.subarray(a, b), crc32c(bytes.subarray(0, a)))), `${name} in three`).toBe(want);
    // Unaligned starts: the vector copied to offsets 1..15 of a larger buffer.
    for (let offset = 1; offset <= 15; offset++) {
      const host = new Uint8Array(bytes.length + 32).fill(0xa5);
      host.set(bytes, offset);
      expect(crc32c(host.subarray(offset, offset + bytes.length)), `${name} at offset ${offset}`).toBe(want);
    }
  }
}

function expectedImplementation(): string {
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return 'table';
  }
  const flags = new Set((/^(?:flags|Features)\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? '').trim().split(/\s+/));
  if (process.arch === 'x64') return flags.has('sse4_2') && flags.has('pclmulqdq') ? 'sse42' : 'table';
  if (process.arch === 'arm64') return flags.has('crc32') ? 'arm64' : 'table';
  return 'table';
}

describe('crc32c', () => {
  afterEach(() => _forceTableForTests(false));

  it.each(vectorBytes)('one-shot: %s', (_name, bytes, want) => {
    expect(crc32c(bytes)).toBe(want);
  });

  it('the reference agrees with the vectors (so it can judge the rest)', () => {
    for (const [name, bytes, want] of vectorBytes) expect(prefixCrcs(bytes)[bytes.length], name).toBe(want);
  });

  it('vectors chained at many split points and at unaligned starts', () => {
    checkVectorsEverywayround();
  });

  it(`random data, lengths 0..${MAX_LEN}, offsets 0..15, against the bitwise reference (seed ${SEED})`, () => {
    checkRandomLengths(Array.from({ length: 16 }, (_, i) => i));
  });

  it('long inputs chained in uneven pieces', () => {
    const ref = reference(3);
    const whole = big.subarray(3, 3 + MAX_LEN);
    for (const piece of [1, 13, 191, 1000, 16384, 49151, 49153]) {
      let crc = 0;
      for (let at = 0; at < whole.length; at += piece) crc = crc32c(whole.subarray(at, at + piece), crc);
      expect(crc, `pieces of ${piece}`).toBe(ref[MAX_LEN]);
    }
  });

  it('uses the hardware implementation this CPU has', () => {
    expect(crc32cImplementation()).toBe(expectedImplementation());
  });

  it('the forced table fallback gives identical answers', () => {
    const hardware = big.subarray(5, 5 + 54321);
    const before = crc32c(hardware);
    _forceTableForTests(true);
    expect(crc32cImplementation()).toBe('table');
    checkVectorsEverywayround();
    checkRandomLengths([0, 1, 7]);
    expect(crc32c(hardware)).toBe(before);
    _forceTableForTests(false);
    expect(crc32cImplementation()).toBe(expectedImplementation());
  });

  it('the native function itself on short inputs (which crc32c() keeps in JS), hardware and table', () => {
    const native = binding().crc32c;
    for (const force of [false, true]) {
      _forceTableForTests(force);
      for (const offset of [0, 1, 5]) {
        const ref = reference(offset);
        for (let n = 0; n <= 300; n++) {
          const got = native(big.subarray(offset, offset + n), 0);
          if (got !== ref[n]) expect.fail(`native (force table ${force}) length ${n} at offset ${offset}: got ${got}, want ${ref[n]}`);
        }
      }
      for (const [name, bytes, want] of vectorBytes) {
        const at = bytes.length >> 1;
        expect(native(bytes.subarray(at), native(bytes.subarray(0, at), 0)), `${name} (force table ${force})`).toBe(want);
      }
    }
  });

  it('from several threads at once (worker_threads and the main thread, first use included)', async () => {
    // Each worker loads the addon itself and checksums every length it is given, many times,
    // while the main thread does the same; all must agree with the reference.
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const native = require(workerData.loader).binding();
      const data = new Uint8Array(workerData.data);
      const out = [];
      for (let round = 0; round < 20; round++) {
        for (const n of workerData.lengths) out.push(native.crc32c(data.subarray(round % 16, (round % 16) + n), 0));
      }
      parentPort.postMessage(out);
    `;
    const lengths = [0, 1, 15, 16, 100, 191, 192, 271, 272, 1000, 4096, 17408, 17408 * 2 + 3, 65536];
    const shared = new SharedArrayBuffer(MAX_LEN + 16);
    new Uint8Array(shared).set(big);
    // The built loader (dist/ is built before the tests run), as an installed package loads it.
    const workerData = { loader: join(__dirname, '..', 'dist', 'log', 'binding.js'), data: shared, lengths };
    const runs = [1, 2, 3].map(() => new Promise<number[]>((resolve, reject) => {
      const worker = new Worker(source, { eval: true, workerData });
      worker.once('message', (m: number[]) => resolve(m));
      worker.once('error', reject);
    }));
    const local: number[] = [];
    for (let round = 0; round < 20; round++) {
      for (const n of lengths) local.push(crc32c(big.subarray(round % 16, (round % 16) + n)));
    }
    const expected: number[] = [];
    for (let round = 0; round < 20; round++) for (const n of lengths) expected.push(reference(round % 16)[n] ?? -1);
    expect(local).toEqual(expected);
    for (const result of await Promise.all(runs)) expect(result).toEqual(expected);
  });

  it('Buffer, subarray of a pooled Buffer, and empty views', () => {
    const text = Buffer.from('123456789'); // small Buffers come from a shared pool, at an offset
    expect(crc32c(text)).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(crc32c(new Uint8Array(0), 0xdeadbeef)).toBe(0xdeadbeef);
    expect(crc32c(Buffer.alloc(0), 7)).toBe(7);
    expect(crc32c(text.subarray(9), 0xe3069283)).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(new ArrayBuffer(32), 32, 0), 1)).toBe(1);
  });

  describe('argument validation', () => {
    const badData: Array<[string, unknown]> = [
      ['undefined', undefined], ['null', null], ['string', '123456789'], ['number', 42], ['array', [1, 2, 3]],
      ['ArrayBuffer', new ArrayBuffer(8)], ['DataView', new DataView(new ArrayBuffer(8))],
      ['Uint16Array', new Uint16Array(4)], ['Int8Array', new Int8Array(4)], ['Uint8ClampedArray', new Uint8ClampedArray(4)],
      ['plain object', { length: 3, 0: 1 }],
    ];
    it.each(badData)('rejects data: %s', (_name, value) => {
      try {
        crc32c(value as Uint8Array);
        expect.fail('no error');
      } catch (err) {
        expect(isTidemarkError(err, 'TM_INVALID_ARGUMENT'), String(err)).toBe(true);
        expect((err as Error).message).toMatch(/data must be a Uint8Array/);
      }
    });

    const badSeeds: Array<[string, unknown]> = [
      ['-1', -1], ['2^32', 2 ** 32], ['1.5', 1.5], ['NaN', NaN], ['Infinity', Infinity], ['-0.5', -0.5],
      ['string', '5'], ['bigint', 5n], ['null', null], ['object', {}], ['boolean', true],
    ];
    it.each(badSeeds)('rejects seed: %s', (_name, value) => {
      try {
        crc32c(new Uint8Array(4), value as number);
        expect.fail('no error');
      } catch (err) {
        expect(isTidemarkError(err, 'TM_INVALID_ARGUMENT'), String(err)).toBe(true);
        expect((err as Error).message).toMatch(/seed must be an integer in \[0, 2\^32 - 1\]/);
      }
    });

    it('accepts the extreme seeds', () => {
      expect(crc32c(new Uint8Array(0), 0xffffffff)).toBe(0xffffffff);
      expect(crc32c(new Uint8Array(0), -0)).toBe(0);
      expect(crc32c(new Uint8Array(0), undefined)).toBe(0);
    });
  });
});
