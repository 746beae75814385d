/**
 * KvStore and its encoding, and the session table (Idempotent Receiver): results,
 * malformed input, snapshots, pipelined sessions, floors, expiry, LRU bound.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  KvStore,
  decodeKvCommand,
  decodeKvQuery,
  decodeKvResult,
  encodeKvCommand,
  encodeKvQuery,
  encodeKvResult,
  type KvCommand,
} from '../../lib/cluster/kv';
import { ByteReader, ByteWriter } from '../../lib/cluster/bytes';
import { SESSION_EXPIRED, SessionTable, decodeEnvelope, decodeNodeSnapshot, encodeEnvelope, encodeNodeSnapshot } from '../../lib/cluster/state-machine';
import { errorCode } from '../helpers';

const b = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));
const run = (kv: KvStore, c: KvCommand): unknown => decodeKvResult(kv.apply(encodeKvCommand(c)));

describe('KvStore', () => {
  it('put, get, delete, compare-and-set, range', () => {
    const kv = new KvStore();
    expect(run(kv, { op: 'put', key: 'a', value: b('1') })).toEqual({ op: 'put', previous: null });
    expect(run(kv, { op: 'put', key: 'a', value: b('2') })).toEqual({ op: 'put', previous: b('1') });
    expect(run(kv, { op: 'cas', key: 'a', expected: b('1'), value: b('3') })).toEqual({ op: 'cas', swapped: false, current: b('2') });
    expect(run(kv, { op: 'cas', key: 'a', expected: b('2'), value: b('3') })).toEqual({ op: 'cas', swapped: true, current: b('3') });
    expect(run(kv, { op: 'cas', key: 'b', expected: null, value: b('x') })).toEqual({ op: 'cas', swapped: true, current: b('x') });
    expect(run(kv, { op: 'cas', key: 'b', expected: b('x'), value: null })).toEqual({ op: 'cas', swapped: true, current: null });
    expect(run(kv, { op: 'delete', key: 'b' })).toEqual({ op: 'delete', existed: false });
    for (const k of ['c', 'd', 'e', 'f']) run(kv, { op: 'put', key: k, value: b(k) });
    expect(decodeKvResult(kv.query(encodeKvQuery({ op: 'get', key: 'a' })))).toEqual({ op: 'get', value: b('3') });
    const range = decodeKvResult(kv.query(encodeKvQuery({ op: 'range', start: 'b', end: 'f' })));
    expect(range).toEqual({ op: 'range', entries: [['c', b('c')], ['d', b('d')], ['e', b('e')]], more: false });
    expect(decodeKvResult(kv.query(encodeKvQuery({ op: 'range', start: '', limit: 2 })))).toMatchObject({ more: true, entries: [['a', b('3')], ['c', b('c')]] });
    const copy = new KvStore();
    copy.restore(kv.snapshot());
    expect(Buffer.from(copy.snapshot()).equals(Buffer.from(kv.snapshot()))).toBe(true);
    expect(copy.size).toBe(5);
  });

  it('answers malformed commands and queries with an error result (deterministic), never a throw', () => {
    const kv = new KvStore();
    for (const bad of [new Uint8Array(0), Uint8Array.of(0x55), Uint8Array.of(0x01, 5, 0, 0, 0, 0x61)]) {
      expect(decodeKvResult(kv.apply(bad)).op).toBe('error');
      expect(decodeKvResult(kv.query(bad)).op).toBe('error');
    }
    expect(() => encodeKvCommand({ op: 'put', key: 'k', value: 'v' as unknown as Uint8Array })).toThrow(/TM_INVALID_ARGUMENT/);
    expect(() => encodeKvQuery({ op: 'get', key: 'a\ud800' })).toThrow(/TM_INVALID_ARGUMENT/);
  });

  it('round-trips every command, query and result encoding (property)', () => {
    const bytes = fc.uint8Array({ maxLength: 40 });
    const key = fc.string({ maxLength: 20, unit: 'grapheme' });
    const command = fc.oneof(
      fc.record({ op: fc.constant('put' as const), key, value: bytes }),
      fc.record({ op: fc.constant('delete' as const), key }),
      fc.record({ op: fc.constant('cas' as const), key, expected: fc.option(bytes, { nil: null }), value: fc.option(bytes, { nil: null }) }),
    );
    fc.assert(
      fc.property(command, (c) => {
        expect(decodeKvCommand(encodeKvCommand(c))).toEqual(c);
      }),
    );
    fc.assert(
      fc.property(key, (k) => {
        expect(decodeKvQuery(encodeKvQuery({ op: 'get', key: k }))).toEqual({ op: 'get', key: k });
      }),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(key, bytes), { maxLength: 5 }), fc.boolean(), (entries, more) => {
        expect(decodeKvResult(encodeKvResult({ op: 'range', entries, more }))).toEqual({ op: 'range', entries, more });
      }),
    );
    // Garbage never throws anything but a TidemarkError.
    fc.assert(
      fc.property(bytes, (g) => {
        for (const f of [decodeKvCommand, decodeKvQuery, decodeKvResult]) {
          try {
            f(g);
          } catch (err) {
            expect(errorCode(err)).toBe('TM_INVALID_ARGUMENT');
          }
        }
      }),
    );
  });
});

describe('SessionTable', () => {
  const env = (clientId: string, seq: number, firstUnackedSeq = 0, text = `${clientId}#${seq}`) => ({ clientId, seq, firstUnackedSeq, command: b(text) });
  function counter(): { apply: (c: Uint8Array) => Uint8Array; calls: string[] } {
    const calls: string[] = [];
    return { calls, apply: (c) => (calls.push(Buffer.from(c).toString()), b(`r${calls.length}`)) };
  }

  it('applies a seq once and answers its copies from the cache, also pipelined out of order', () => {
    const t = new SessionTable();
    const m = counter();
    expect(t.apply(env('c', 2, 1), 10, m.apply)).toEqual({ kind: 'applied', result: b('r1') });
    expect(t.apply(env('c', 1, 1), 11, m.apply)).toEqual({ kind: 'applied', result: b('r2') });
    expect(t.apply(env('c', 2, 1), 12, m.apply)).toEqual({ kind: 'duplicate', result: b('r1'), index: 10 });
    expect(t.lookup('c', 1)).toEqual({ result: b('r2'), index: 11 });
    // The client says 1 and 2 were answered: their results go; a stray copy of 1 is refused.
    expect(t.apply(env('c', 3, 3), 13, m.apply).kind).toBe('applied');
    expect(t.lookup('c', 1)).toBe('older');
    expect(t.apply(env('c', 1, 1), 14, m.apply)).toMatchObject({ kind: 'rejected', code: SESSION_EXPIRED });
    expect(m.calls).toEqual(['c#2', 'c#1', 'c#3']);
  });

  it('a client without firstUnackedSeq is sequential; an unknown session that had answers is expired', () => {
    const t = new SessionTable();
    const m = counter();
    expect(t.apply(env('s', 1), 1, m.apply).kind).toBe('applied');
    expect(t.apply(env('s', 2), 2, m.apply).kind).toBe('applied');
    expect(t.lookup('s', 1)).toBe('older');
    expect(t.apply(env('gone', 7), 3, m.apply)).toMatchObject({ kind: 'rejected', code: SESSION_EXPIRED });
    expect(t.apply(env('gone', 7, 5), 4, m.apply)).toMatchObject({ kind: 'rejected', code: SESSION_EXPIRED });
    expect(t.apply(env('fresh', 3, 1), 5, m.apply).kind).toBe('applied'); // seqs 1, 2 still in flight: a new session
    expect(t.apply(env('', 0), 6, m.apply).kind).toBe('applied');
    expect(t.apply(env('', 0), 7, m.apply).kind).toBe('applied'); // no session: never deduplicated
    expect(m.calls).toHaveLength(5);
  });

  it('bounds sessions (LRU), results per session and session age, the same way on every replica', () => {
    const t = new SessionTable({ maxSessions: 3, maxResultsPerSession: 2, expiryEntries: 100 });
    const m = counter();
    for (const id of ['a', 'b', 'c']) t.apply(env(id, 1, 1), 1, m.apply);
    t.apply(env('a', 2, 1), 2, m.apply); // a is now the most recent
    t.apply(env('d', 1, 1), 3, m.apply); // evicts b
    expect([t.lookup('a', 1) !== undefined, t.lookup('b', 1), t.size]).toEqual([true, undefined, 3]);
    t.apply(env('a', 3, 1), 4, m.apply); // three results, bound 2: seq 1 dropped, floor 2
    expect(t.lookup('a', 1)).toBe('older');
    t.apply(env('z', 1, 1), 200, m.apply); // c and d unused for > 100 entries: expired
    expect([t.lookup('c', 1), t.lookup('d', 1)]).toEqual([undefined, undefined]);
  });

  it('round-trips through the node snapshot and the envelope', () => {
    const t = new SessionTable();
    const m = counter();
    t.apply(env('x', 1, 1), 5, m.apply);
    t.apply(env('x', 2, 1), 6, m.apply);
    const data = encodeNodeSnapshot(t, b('machine'));
    const u = new SessionTable();
    expect(Buffer.from(decodeNodeSnapshot(data, u)).toString()).toBe('machine');
    expect(u.lookup('x', 2)).toEqual({ result: b('r2'), index: 6 });
    expect(Buffer.from(encodeNodeSnapshot(u, b('machine'))).equals(Buffer.from(data))).toBe(true);
    expect(decodeEnvelope(encodeEnvelope(env('id', 9, 4, 'cmd')))).toEqual(env('id', 9, 4, 'cmd'));
    expect(errorCode((() => { try { decodeNodeSnapshot(data.subarray(0, 10), u); } catch (e) { return e; } })())).toBe('TM_CORRUPTION');
  });

  it('ByteReader rejects truncation and trailing bytes with the chosen code', () => {
    const bytes = new ByteWriter().u32(7).string('hé').finish();
    const r = new ByteReader(bytes, 'TM_CORRUPTION', 'x');
    expect([r.u32(), r.string()]).toEqual([7, 'hé']);
    r.end();
    expect(() => new ByteReader(bytes.subarray(0, 5), 'TM_CORRUPTION', 'x').u64()).toThrow(/TM_CORRUPTION/);
  });
});
