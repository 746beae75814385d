/**
 * The linearizability checker: known linearizable and non-linearizable histories,
 * unknown outcomes, per-key independence, malformed input, and a cross-check
 * against brute force (every order of every subset of unknown operations) on
 * thousands of small random histories.
 */
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../lib/core/random';
import { type KvOperation, checkLinearizable } from './checker';

const put = (key: string, value: string, call: number, ret: number | null, id?: string): KvOperation => ({ key, op: 'put', value, call, ret, ok: true, ...(id !== undefined ? { id } : {}) });
const get = (key: string, result: string | null, call: number, ret: number): KvOperation => ({ key, op: 'get', call, ret, ok: true, result });
const cas = (key: string, expected: string | null, value: string, call: number, ret: number | null, ok?: boolean): KvOperation => ({
  key,
  op: 'cas',
  expected,
  value,
  call,
  ret,
  ...(ok !== undefined ? { ok } : {}),
});
const del = (key: string, call: number, ret: number | null): KvOperation => ({ key, op: 'del', call, ret, ok: true });

describe('linearizability checker: known histories', () => {
  it('accepts the empty history and sequential ones', () => {
    expect(checkLinearizable([]).ok).toBe(true);
    const h = [put('x', '1', 0, 1), get('x', '1', 2, 3), del('x', 4, 5), get('x', null, 6, 7), cas('x', null, '2', 8, 9, true), get('x', '2', 10, 11)];
    const res = checkLinearizable(h);
    expect(res.ok).toBe(true);
    expect(res.ops).toBe(6);
  });

  it('refuses a stale read after a completed write', () => {
    const res = checkLinearizable([put('x', '1', 0, 1), put('x', '2', 2, 3), get('x', '1', 4, 5)]);
    expect(res.ok).toBe(false);
    expect(res.failure?.key).toBe('x');
    expect(res.failure?.message).toContain('not linearizable');
  });

  it('refuses a read of a value nobody wrote, and a read of absent after a write', () => {
    expect(checkLinearizable([get('x', '9', 0, 1)]).ok).toBe(false);
    expect(checkLinearizable([put('x', '1', 0, 1), get('x', null, 2, 3)]).ok).toBe(false);
  });

  it('lets a read concurrent with a write see either value', () => {
    expect(checkLinearizable([put('x', '1', 0, 1), put('x', '2', 2, 10), get('x', '1', 3, 4)]).ok).toBe(true);
    expect(checkLinearizable([put('x', '1', 0, 1), put('x', '2', 2, 10), get('x', '2', 3, 4)]).ok).toBe(true);
  });

  it('refuses new-then-old reads during one write (the classic non-linearizable history)', () => {
    // Both reads overlap the write, but the second starts after the first returned.
    const h = [put('x', '1', 0, 1), put('x', '2', 2, 20), get('x', '2', 3, 4), get('x', '1', 5, 6)];
    expect(checkLinearizable(h).ok).toBe(false);
  });

  it('checks compare-and-set both ways', () => {
    expect(checkLinearizable([put('x', 'a', 0, 1), cas('x', 'a', 'b', 2, 3, true), get('x', 'b', 4, 5)]).ok).toBe(true);
    expect(checkLinearizable([put('x', 'a', 0, 1), cas('x', 'z', 'b', 2, 3, false), get('x', 'a', 4, 5)]).ok).toBe(true);
    expect(checkLinearizable([put('x', 'a', 0, 1), cas('x', 'z', 'b', 2, 3, true)]).ok).toBe(false); // swapped on a mismatch
    expect(checkLinearizable([put('x', 'a', 0, 1), cas('x', 'a', 'b', 2, 3, false)]).ok).toBe(false); // refused on a match
    // Two concurrent cas from the same value: only one may win.
    expect(checkLinearizable([put('x', 'a', 0, 1), cas('x', 'a', 'b', 2, 5, true), cas('x', 'a', 'c', 2, 5, true)]).ok).toBe(false);
    expect(checkLinearizable([put('x', 'a', 0, 1), cas('x', 'a', 'b', 2, 5, true), cas('x', 'a', 'c', 2, 5, false)]).ok).toBe(true);
  });

  it('checks keys independently and honours initial values', () => {
    const h = [put('x', '1', 0, 1), put('y', '2', 0, 1), get('y', '2', 2, 3), get('x', '1', 2, 3)];
    expect(checkLinearizable(h)).toMatchObject({ ok: true, keys: 2 });
    const bad = [...h, get('y', '1', 4, 5)];
    expect(checkLinearizable(bad).failure?.key).toBe('y');
    expect(checkLinearizable([get('x', 'seed', 0, 1)], { initial: new Map([['x', 'seed']]) }).ok).toBe(true);
  });

  it('skips operations that certainly did not take effect', () => {
    const failedPut: KvOperation = { key: 'x', op: 'put', value: '2', call: 2, ret: 3, ok: false };
    expect(checkLinearizable([put('x', '1', 0, 1), failedPut, get('x', '1', 4, 5)]).ok).toBe(true);
  });

  it('rejects malformed entries with a TypeError', () => {
    expect(() => checkLinearizable([{ key: 'x', op: 'put', call: 0, ret: 1, ok: true }])).toThrow(TypeError);
    expect(() => checkLinearizable([put('x', '1', 5, 1)])).toThrow(TypeError);
    expect(() => checkLinearizable([{ key: 'x', op: 'cas', value: 'a', call: 0, ret: 1 }])).toThrow(TypeError);
    expect(() => checkLinearizable([{ key: 'x', op: 'get', call: 0, ret: 1, ok: true }])).toThrow(TypeError);
  });
});

describe('linearizability checker: unknown outcomes', () => {
  it('an unknown write may take effect or not', () => {
    expect(checkLinearizable([put('x', '1', 0, null), get('x', '1', 5, 6)]).ok).toBe(true);
    expect(checkLinearizable([put('x', '1', 0, null), get('x', null, 5, 6)]).ok).toBe(true);
  });

  it('an unknown write never takes effect before its call', () => {
    expect(checkLinearizable([get('x', '1', 0, 1), put('x', '1', 5, null)]).ok).toBe(false);
  });

  it('an unknown write may take effect arbitrarily late, but only once', () => {
    // put 1 (unknown) is called first; put 2 completes; a much later read still sees 1.
    const h = [put('x', '1', 0, null), put('x', '2', 1, 2), get('x', '1', 100, 101)];
    expect(checkLinearizable(h).ok).toBe(true);
    // ...but it cannot take effect twice: 1, then 2, then 1 again.
    const twice = [put('x', '1', 0, null), get('x', '1', 3, 4), put('x', '2', 5, 6), get('x', '1', 7, 8)];
    expect(checkLinearizable(twice).ok).toBe(false);
  });

  it('an unknown cas takes effect only when its comparison holds', () => {
    expect(checkLinearizable([put('x', 'a', 0, 1), cas('x', 'a', 'b', 2, null), get('x', 'b', 9, 10)]).ok).toBe(true);
    expect(checkLinearizable([put('x', 'a', 0, 1), cas('x', 'z', 'b', 2, null), get('x', 'b', 9, 10)]).ok).toBe(false);
  });

  it('an unknown delete may take effect later', () => {
    expect(checkLinearizable([put('x', 'a', 0, 1), del('x', 2, null), get('x', 'a', 3, 4), get('x', null, 5, 6)]).ok).toBe(true);
    expect(checkLinearizable([put('x', 'a', 0, 1), del('x', 2, null), get('x', null, 3, 4), get('x', 'a', 5, 6)]).ok).toBe(false);
  });

  it('many concurrent unknown writes with distinct values stay tractable', () => {
    const h: KvOperation[] = [];
    for (let i = 0; i < 200; i++) h.push(put('x', `v${i}`, i, null));
    for (let i = 0; i < 200; i++) h.push(get('x', `v${(i * 7) % 200}`, 1000 + 2 * i, 1001 + 2 * i));
    const res = checkLinearizable(h);
    // Each value can be read only while its write is unused or last: v0, v7, v14, ... all distinct, fine.
    expect(res.ok).toBe(true);
    expect(res.inconclusive).toEqual([]);
    // A value read twice with a different one between cannot be: its write took effect once.
    const again = [...h, get('x', 'v0', 5000, 5001)];
    expect(checkLinearizable(again).ok).toBe(false);
  });

  it('many concurrent unknown writes stay tractable (memoization)', () => {
    const h: KvOperation[] = [];
    for (let i = 0; i < 60; i++) h.push(put('x', String(i % 3), i, null));
    for (let i = 0; i < 60; i++) h.push(get('x', String(i % 3), 100 + 2 * i, 101 + 2 * i));
    const res = checkLinearizable(h);
    expect(res.ok).toBe(true);
    expect(res.inconclusive).toEqual([]);
  });

  it('reports a key as inconclusive, not passed, when the state budget runs out', () => {
    const h: KvOperation[] = [];
    // Unknown compare-and-sets that can chain in many orders, then a read no order explains.
    for (let i = 0; i < 30; i++) h.push(cas('x', i % 4 === 0 ? null : String(i % 4), String((i + 1) % 4), 0, null));
    h.push(get('x', 'never', 100, 101));
    const res = checkLinearizable(h, { maxStatesPerKey: 1000 });
    expect(res.inconclusive).toEqual(['x']);
    expect(res.ok).toBe(true); // inconclusive is not a failure; callers must look at `inconclusive`
  });
});

/** Brute force: some subset of the unknown ops plus all known ones, in some order respecting real time. */
function bruteForce(ops: readonly KvOperation[]): boolean {
  const n = ops.length;
  const used = new Array<boolean>(n).fill(false);
  const known = ops.filter((o) => o.ret !== null).length;
  const go = (state: string | null, placedKnown: number, lastOrder: number[]): boolean => {
    if (placedKnown === known) return true;
    for (let i = 0; i < n; i++) {
      if (used[i]) continue;
      const o = ops[i] as KvOperation;
      // o may go next only if every unplaced known op j has not returned before o's call.
      let ok = true;
      for (let j = 0; j < n; j++) {
        if (j === i || used[j]) continue;
        const r = (ops[j] as KvOperation).ret;
        if (r !== null && r < o.call) ok = false;
      }
      if (!ok) continue;
      let next = state;
      if (o.op === 'put') next = o.value as string;
      else if (o.op === 'del') next = null;
      else if (o.op === 'get') {
        if (o.ret !== null && (o.result ?? null) !== state) continue;
      } else {
        const holds = state === (o.expected ?? null);
        if (o.ret !== null && o.ok !== holds) continue;
        if (holds) next = o.value as string;
      }
      used[i] = true;
      if (go(next, placedKnown + (o.ret !== null ? 1 : 0), [...lastOrder, i])) return true;
      used[i] = false;
    }
    return false;
  };
  return go(null, 0, []);
}

describe('linearizability checker: agrees with brute force', () => {
  it('on 3,000 small random histories (with unknown outcomes)', () => {
    const rng = new SeededRandom(2024);
    let linear = 0;
    let nonLinear = 0;
    for (let t = 0; t < 3000; t++) {
      const n = 1 + rng.int(6);
      const ops: KvOperation[] = [];
      for (let i = 0; i < n; i++) {
        const call = rng.int(12);
        const ret = rng.chance(0.2) ? null : call + rng.int(6);
        const v = String(rng.int(3));
        const kind = rng.int(4);
        if (kind === 0) ops.push(put('k', v, call, ret));
        else if (kind === 1) ops.push(del('k', call, ret));
        else if (kind === 2 && ret !== null) ops.push(get('k', rng.chance(0.2) ? null : v, call, ret));
        else ops.push(cas('k', rng.chance(0.2) ? null : String(rng.int(3)), v, call, ret, ret === null ? undefined : rng.chance(0.5)));
      }
      const expected = bruteForce(ops);
      const got = checkLinearizable(ops).ok;
      expect(got, JSON.stringify(ops)).toBe(expected);
      if (expected) linear++;
      else nonLinear++;
    }
    // Both outcomes are well represented, so the agreement means something.
    expect(linear).toBeGreaterThan(300);
    expect(nonLinear).toBeGreaterThan(300);
  });
});
