/** MemoryLog: the in-memory LogReader twin (etcd MemoryStorage shape), Low-Water Mark compaction, fault hooks. */
import { describe, expect, it } from 'vitest';
import type { Entry } from '../../lib/core';
import { ErrorCodes, TidemarkError } from '../../lib/errors';
import { MemoryLog } from '../../lib/log/memory';

const e = (index: number, generation: number, s = `e${index}`): Entry => ({ index, generation, kind: 'normal', data: new TextEncoder().encode(s) });

describe('MemoryLog', () => {
  it('appends, overwrites a conflicting suffix, and reads ranges under a byte limit', () => {
    const log = new MemoryLog();
    log.append([e(1, 1), e(2, 1), e(3, 1)]);
    log.append([e(2, 2)]);
    expect(log.lastIndex()).toBe(2);
    expect(log.generationAt(2)).toBe(2);
    expect(log.generationAt(3)).toBeUndefined();
    expect(log.entries(1, 3, 1).length).toBe(1); // at least one entry
    expect(log.entries(1, 3, 1e9).map((x) => x.index)).toEqual([1, 2]);
  });
  it('refuses gaps and reads outside the log with typed errors', () => {
    const log = new MemoryLog();
    expect(() => log.append([e(2, 1)])).toThrow(expect.objectContaining({ code: ErrorCodes.OUT_OF_RANGE }));
    log.append([e(1, 1)]);
    expect(() => log.entries(1, 3, 100)).toThrow(expect.objectContaining({ code: ErrorCodes.OUT_OF_RANGE }));
  });
  it('compacts behind a snapshot (Low-Water Mark) and keeps the snapshot generation', () => {
    const log = new MemoryLog();
    log.append([e(1, 1), e(2, 1), e(3, 2), e(4, 2)]);
    log.compact(3, new Uint8Array([7]));
    expect(log.firstIndex()).toBe(4);
    expect(log.generationAt(3)).toBe(2);
    expect(log.generationAt(2)).toBeUndefined();
    expect(log.snapshot()?.meta).toEqual({ index: 3, generation: 2 });
    expect(() => log.entries(3, 4, 100)).toThrow(TidemarkError);
    log.installSnapshot({ meta: { index: 10, generation: 3 }, data: new Uint8Array() });
    expect([log.firstIndex(), log.lastIndex()]).toEqual([11, 10]);
  });
  it('fault hook fails a write and changes nothing', () => {
    const log = new MemoryLog();
    log.append([e(1, 1)]);
    log.faultHook = (op) => (op === 'append' ? new TidemarkError(ErrorCodes.IO, 'injected EIO', { errno: 'EIO' }) : undefined);
    expect(() => log.append([e(2, 1)])).toThrow(expect.objectContaining({ code: ErrorCodes.IO }));
    expect(log.lastIndex()).toBe(1);
    log.faultHook = undefined;
    log.append([e(2, 1)]);
    expect(log.lastIndex()).toBe(2);
  });
});
