/**
 * Native-Wal mode of the simulator, minimal version: each simulated node's durable log is a
 * {@link MemoryLog} (the simulator is synchronous) *mirrored* into a real {@link RaftStorage}
 * over the native Wal in a temp directory. Every durable write the Disk performs (appends that
 * truncate a conflicting suffix, hard states, snapshot installs, compactions, the torn prefix a
 * crash leaves) is issued to the RaftStorage in the same order, one after another. At the end
 * of a run the storage is closed and reopened (real recovery from the directory) and what it
 * recovers must equal the memory log: same snapshot, same entries, same vote.
 *
 * What it does NOT cover (yet): the core does not run over the recovered Wal at each restart
 * (restarts use the memory log), and a crash is not a power loss of the Wal's unsynced writes
 * (every mirrored write is synced; the lost / torn write in flight is modelled by the Disk).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry, HardState, Snapshot } from '../../lib/core';
import { RaftStorage } from '../../lib/cluster/storage';
import { MemoryLog } from '../../lib/log/memory';
import type { SimStorage } from './disk';

export class WalMirror implements SimStorage {
  readonly mem = new MemoryLog();
  private chain: Promise<RaftStorage>;
  /** Mirrored writes issued. */
  writes = 0;

  constructor(readonly dir: string) {
    this.chain = RaftStorage.open(dir, { wal: { sync: 'fdatasync' } });
  }

  private then(f: (s: RaftStorage) => Promise<void>): void {
    this.writes++;
    this.chain = this.chain.then(async (s) => {
      await f(s);
      return s;
    });
  }

  hardState(): HardState {
    return this.mem.hardState();
  }
  firstIndex(): number {
    return this.mem.firstIndex();
  }
  lastIndex(): number {
    return this.mem.lastIndex();
  }
  generationAt(index: number): number | undefined {
    return this.mem.generationAt(index);
  }
  entries(lo: number, hi: number, maxBytes: number): readonly Entry[] {
    return this.mem.entries(lo, hi, maxBytes);
  }
  snapshot(): Snapshot | null {
    return this.mem.snapshot();
  }
  append(entries: readonly Entry[]): void {
    this.mem.append(entries);
    const copy = [...entries];
    this.then((s) => s.persist({ snapshot: null, entries: copy, hardState: null }));
  }
  setHardState(hs: HardState): void {
    this.mem.setHardState(hs);
    this.then((s) => s.persist({ snapshot: null, entries: [], hardState: hs }));
  }
  installSnapshot(snapshot: Snapshot): void {
    this.mem.installSnapshot(snapshot);
    this.then((s) => s.persist({ snapshot, entries: [], hardState: null }));
  }
  compact(index: number, data: Uint8Array): void {
    const before = this.mem.snapshot()?.meta.index ?? 0;
    this.mem.compact(index, data);
    const snap = this.mem.snapshot();
    if (snap !== null && snap.meta.index > before) this.then((s) => s.compact(snap));
  }

  /** Closes the storage after its writes, ignoring errors (cleanup). */
  async closeQuietly(): Promise<void> {
    await this.chain.then((s) => s.close()).catch(() => undefined);
  }

  /**
   * Waits for every mirrored write, closes the storage, reopens it from its directory and
   * returns the differences between what it recovered and the memory log (empty: equal).
   */
  async verifyRecovery(): Promise<string[]> {
    const s = await this.chain;
    await s.close();
    const r = await RaftStorage.open(this.dir);
    try {
      const diffs: string[] = [];
      const m = this.mem;
      const ms = m.snapshot()?.meta.index ?? 0;
      const rs = r.snapshot()?.meta.index ?? 0;
      if (ms !== rs) diffs.push(`snapshot index ${rs}, memory ${ms}`);
      else if (ms > 0 && Buffer.compare(Buffer.from(r.snapshot()?.data ?? []), Buffer.from(m.snapshot()?.data ?? [])) !== 0) diffs.push('snapshot data differs');
      if (r.lastIndex() !== m.lastIndex()) diffs.push(`last index ${r.lastIndex()}, memory ${m.lastIndex()}`);
      const hi = Math.min(r.lastIndex(), m.lastIndex());
      for (let i = Math.max(r.firstIndex(), m.firstIndex()); i <= hi; i++) {
        const a = r.entries(i, i + 1, Number.MAX_SAFE_INTEGER)[0];
        const b = m.entries(i, i + 1, Number.MAX_SAFE_INTEGER)[0];
        if (a === undefined || b === undefined || a.generation !== b.generation || a.kind !== b.kind || Buffer.compare(Buffer.from(a.data), Buffer.from(b.data)) !== 0) {
          diffs.push(`entry ${i} differs`);
          break;
        }
      }
      const rh = r.hardState();
      const mh = m.hardState();
      if (rh.generation !== mh.generation || rh.votedFor !== mh.votedFor) diffs.push(`hard state g${rh.generation}/${rh.votedFor}, memory g${mh.generation}/${mh.votedFor}`);
      // The stored commit is a lower bound (RaftStorage writes it only with vote changes and at close).
      if (rh.commit > mh.commit && rh.commit > m.lastIndex()) diffs.push(`stored commit ${rh.commit} beyond memory's ${mh.commit}`);
      return diffs;
    } finally {
      await r.close();
    }
  }
}

/** A factory of mirrors in one temp directory (remove it with {@link WalMirrors.remove}). */
export class WalMirrors {
  readonly root = mkdtempSync(join(tmpdir(), 'tidemark-sim-wal-'));
  readonly all: WalMirror[] = [];
  create = (id: string): SimStorage => {
    const m = new WalMirror(join(this.root, `${id}-${this.all.length}`));
    this.all.push(m);
    return m;
  };
  /** Waits for (and closes) every storage still open, then removes the directory. */
  async remove(): Promise<void> {
    for (const m of this.all) await m.closeQuietly();
    rmSync(this.root, { recursive: true, force: true });
  }
}
