/**
 * Native-Wal mode of the simulator: each simulated node's storage is a real {@link RaftStorage}
 * (lib/cluster/storage.ts, the adapter the cluster runs over the native Wal, fdatasync, 64 KiB
 * segments) opened through the test-only faults addon, in a temp directory, and every crash is
 * a power loss of that Wal.
 *
 * How a synchronous step loop drives an asynchronous storage, deterministically:
 *
 * - During a node's life the core reads a memory view (a {@link MemoryLog}) that every durable
 *   write updates at once; the same write (a Ready's whole persist work, as the cluster's node
 *   issues it, or a compaction) is queued, in order, on one queue shared by all nodes, which
 *   issues it to the node's RaftStorage and awaits it (so every write the simulator called
 *   durable is durable, fdatasync'd, in the Wal before anything later happens to it). At every
 *   drain, RaftStorage's own LogReader view (what the cluster's core reads) must equal the
 *   node's log.
 * - A crash ({@link SimStorage.crash}) draws, from the simulator's seeded generator, what of the
 *   write in flight reaches the disk: nothing (half the time), or its snapshot, its hard state
 *   (a coin: entries and hard state are written in parallel by RaftStorage) and its entries torn
 *   at a seeded byte of the nth segment write (`crashAtWriteByte`, the fault layer the power-loss
 *   tests use: unsynced writes are rolled back, the torn one keeps exactly that many bytes). It
 *   queues the power loss: those writes, the cut (`powerLoss` if the tear did not fire), the
 *   storage's files closed without writing anything, the fault layer reset, and a reopen with the
 *   normal recovery. {@link Simulator.runAsync} awaits the queue at the end of that step, so the
 *   power loss happens while every other node's writes are done (the fault layer is
 *   process-wide) and before the node restarts.
 * - The restarted node's memory view is rebuilt **from what RaftStorage recovered** (hard state:
 *   generation, vote, commit; snapshot; entries), not from the copy before the crash: a bug in the
 *   adapter's or the Wal's recovery reaches the core, and the simulator's Raft invariants judge
 *   it. Optionally ({@link WalModeOptions.checkRecovery}, on by default) each recovery is also
 *   compared directly with what the node had durably plus a prefix of the write in flight.
 *
 * Determinism: the steps are synchronous and draw every random choice from the seed; what the
 * queue does between steps is a function of the writes issued (one at a time, each awaited) and
 * of the seeded tear, and the recovered state feeds back into the run only at restarts, after the
 * queue drained. So a seed replays the same history (sim-wal.test.ts checks two runs agree).
 *
 * Not modelled: a torn or lost hard-state slot write (the file is written outside the fault
 * layer: it lands whole or not at all), a crash inside a snapshot install or compaction (these
 * are written at once; RaftStorage's own crash points are in test/cluster/storage.test.ts), and
 * directory entries (the fault layer makes renames and unlinks durable at once).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry, HardState, LogReader, PersistWork, Snapshot } from '../../lib/core';
import type { SeededRandom } from '../../lib/core/random';
import { RaftStorage, type RaftStorageOptions } from '../../lib/cluster/storage';
import { Wal, type WalOptions } from '../../lib/log/wal';
import { faultsBinding } from '../../lib/log/binding';
import { MemoryLog } from '../../lib/log/memory';
import type { SimStorage } from './disk';

const WAL: WalOptions = { sync: 'fdatasync', segmentBytes: 64 * 1024 };
const ALL = Number.MAX_SAFE_INTEGER;
const faults = () => faultsBinding().faults;
const openFaulty = (dir: string, options: WalOptions | undefined): Promise<Wal> => Wal._openWith(faultsBinding(), dir, options);

/** Options of the native-Wal mode. */
export interface WalModeOptions {
  /**
   * Check the storage directly and fail the run on a difference: every recovery against what the
   * node held durably (plus a prefix of the write in flight), and at every drain RaftStorage's
   * own LogReader view against the node's log. Default true; off, only the simulator's
   * invariants judge what the core restarted from (the mutant tests use both).
   */
  readonly checkRecovery?: boolean;
  /** Opens a node's storage (default {@link RaftStorage.open}); tests plant adapter bugs here. */
  readonly open?: (dir: string, options: RaftStorageOptions) => Promise<RaftStorage>;
}

/** What of a write in flight reaches the disk at a crash (drawn from the seed). */
interface CrashPlan {
  snapshot: Snapshot | null;
  hardState: HardState | null;
  entries: Entry[];
  /** The nth segment write of the entries' persist is torn (after `keep` bytes), then power loss. */
  nth: number;
  keep: number;
}

function sameEntry(a: Entry | undefined, b: Entry | undefined): boolean {
  return a !== undefined && b !== undefined && a.index === b.index && a.generation === b.generation && a.kind === b.kind && Buffer.compare(Buffer.from(a.data), Buffer.from(b.data)) === 0;
}

function entryAt(log: LogReader, i: number): Entry | undefined {
  return i >= log.firstIndex() && i <= log.lastIndex() ? log.entries(i, i + 1, ALL)[0] : undefined;
}

/**
 * Differences between a recovered log and what it must be: `durable` (snapshot, hard state's
 * generation and vote, entries) with, from the first index of `inFlight` on, either `durable`'s
 * entries unchanged (the write's truncation did not land) or a prefix of `inFlight`, and a commit
 * no higher than `durable`'s. Empty: equal.
 */
export function recoveryDiffs(durable: LogReader, inFlight: readonly Entry[], recovered: LogReader): string[] {
  const diffs: string[] = [];
  const ds = durable.snapshot();
  const rs = recovered.snapshot();
  const dsi = ds?.meta.index ?? 0;
  const rsi = rs?.meta.index ?? 0;
  if (dsi !== rsi) diffs.push(`snapshot index ${rsi}, durable ${dsi}`);
  else if (ds !== null && rs !== null && (ds.meta.generation !== rs.meta.generation || Buffer.compare(Buffer.from(ds.data), Buffer.from(rs.data)) !== 0)) diffs.push('snapshot differs');
  const dh = durable.hardState();
  const rh = recovered.hardState();
  if (dh.generation !== rh.generation || dh.votedFor !== rh.votedFor) diffs.push(`hard state g${rh.generation}/${rh.votedFor}, durable g${dh.generation}/${dh.votedFor}`);
  // The stored commit is a lower bound of the node's (RaftStorage writes it with vote changes and at close).
  if (rh.commit > dh.commit) diffs.push(`stored commit ${rh.commit} beyond the node's ${dh.commit}`);
  const p = inFlight[0]?.index ?? durable.lastIndex() + 1;
  const sure = Math.min(durable.lastIndex(), p - 1);
  if (recovered.lastIndex() < sure) diffs.push(`last index ${recovered.lastIndex()}, durable ${durable.lastIndex()} (${sure} certain)`);
  for (let i = Math.max(durable.firstIndex(), recovered.firstIndex()); i <= Math.min(sure, recovered.lastIndex()); i++) {
    if (!sameEntry(entryAt(durable, i), entryAt(recovered, i))) {
      diffs.push(`entry ${i} differs`);
      return diffs;
    }
  }
  // From p on: the old durable suffix, whole, or a prefix of the write in flight.
  let old = recovered.lastIndex() === durable.lastIndex();
  let fresh = recovered.lastIndex() <= p - 1 + inFlight.length;
  for (let i = Math.max(p, recovered.firstIndex()); i <= recovered.lastIndex() && (old || fresh); i++) {
    const r = entryAt(recovered, i);
    if (old && !sameEntry(entryAt(durable, i), r)) old = false;
    if (fresh && !sameEntry(inFlight[i - p], r)) fresh = false;
  }
  if (!old && !fresh) diffs.push(`entries from ${p} (last ${recovered.lastIndex()}) are neither the durable suffix (last ${durable.lastIndex()}) nor a prefix of the write in flight (${inFlight.length} entries)`);
  return diffs;
}

/** A node's storage: a memory view for the core, backed by a RaftStorage over the native Wal. */
export class WalMirror implements SimStorage {
  /** What the core reads: the node's durable log (rebuilt from the Wal at every restart). */
  mem = new MemoryLog();
  private storage: RaftStorage | null = null;
  /** A power loss is queued and its reopen not done yet. */
  private recovering = false;
  /** Writes issued through the Wal. */
  writes = 0;
  /** Crashes that were a power loss of this Wal, and how many had part of the write in flight land (snapshot, hard state, or entries torn anywhere). */
  powerLosses = 0;
  inFlightLanded = 0;
  /** Recoveries whose entries or hard state differed from what the node had before the crash (a non-empty write in flight landed). */
  recoveredMore = 0;

  constructor(
    readonly dir: string,
    private readonly group: WalMirrors,
  ) {
    group.enqueue(async () => {
      this.storage = await group.open(dir);
    });
  }

  private get s(): RaftStorage {
    if (this.storage === null) throw new Error(`${this.dir}: storage not open`);
    return this.storage;
  }

  private write(f: (s: RaftStorage) => Promise<void>): void {
    this.writes++;
    this.group.enqueue(() => f(this.s));
  }

  private view(): MemoryLog {
    if (this.recovering) throw new Error('native-Wal mode: a crashed node read its log before its Wal was reopened (drive the simulator with runAsync(mirrors.settle))');
    return this.mem;
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
    return this.view().entries(lo, hi, maxBytes);
  }
  snapshot(): Snapshot | null {
    return this.view().snapshot();
  }
  append(entries: readonly Entry[]): void {
    this.view().append(entries);
    const copy = [...entries];
    this.write((s) => s.persist({ snapshot: null, entries: copy, hardState: null }));
  }
  setHardState(hs: HardState): void {
    this.view().setHardState(hs);
    this.write((s) => s.persist({ snapshot: null, entries: [], hardState: hs }));
  }
  installSnapshot(snapshot: Snapshot): void {
    this.view().installSnapshot(snapshot);
    this.write((s) => s.persist({ snapshot, entries: [], hardState: null }));
  }
  /** A Ready's persist work: the view at once, the Wal with one RaftStorage.persist (as the cluster's node does). */
  persist(work: PersistWork): void {
    const v = this.view();
    if (work.snapshot !== null) v.installSnapshot(work.snapshot);
    v.append(work.entries);
    if (work.hardState !== null) v.setHardState(work.hardState);
    this.write((s) => s.persist(work));
  }
  compact(index: number, data: Uint8Array): void {
    const before = this.mem.snapshot()?.meta.index ?? 0;
    this.view().compact(index, data);
    const snap = this.mem.snapshot();
    if (snap !== null && snap.meta.index > before) this.write((s) => s.compact(snap));
  }

  /** A power loss of this node's Wal (see the module comment). */
  crash(inFlight: PersistWork | null, rng: SeededRandom): boolean {
    const plan: CrashPlan = { snapshot: null, hardState: null, entries: [], nth: 1, keep: 0 };
    let landed = false;
    if (inFlight !== null && rng.chance(0.5)) {
      // The view shows what is certainly durable now (the snapshot, the hard state: the
      // simulator records the durable vote from it); the entries are known after the reopen.
      if (inFlight.snapshot !== null) {
        plan.snapshot = inFlight.snapshot;
        this.mem.installSnapshot(inFlight.snapshot);
        landed = true;
      }
      if (inFlight.entries.length > 0) {
        plan.entries = [...inFlight.entries];
        const truncates = (plan.entries[0] as Entry).index <= this.mem.lastIndex();
        plan.nth = 1 + rng.int(truncates ? 3 : 2);
        let bytes = 512;
        for (const e of plan.entries) bytes += e.data.length + 64;
        plan.keep = 1 + rng.int(bytes);
        landed = true;
      }
      if (inFlight.hardState !== null && rng.chance(0.5)) {
        plan.hardState = inFlight.hardState;
        this.mem.setHardState(inFlight.hardState);
        landed = true;
      }
    }
    this.powerLosses++;
    if (landed) this.inFlightLanded++;
    this.recovering = true;
    this.group.crashed();
    this.group.enqueue(() => this.powerLoss(plan));
    return landed;
  }

  private async powerLoss(plan: CrashPlan): Promise<void> {
    const s = this.s;
    const f = faults();
    try {
      if (plan.snapshot !== null) await s.persist({ snapshot: plan.snapshot, entries: [], hardState: null });
      if (plan.hardState !== null) await s.persist({ snapshot: null, entries: [], hardState: plan.hardState });
      if (plan.entries.length > 0) {
        f('crashAtWriteByte', plan.nth, plan.keep);
        try {
          await s.persist({ snapshot: null, entries: plan.entries, hardState: null });
        } catch (err) {
          if (!f('crashed')) throw err; // a real failure, not the cut
        }
      }
      if (!f('crashed')) f('powerLoss');
      // The process dies: close the files without writing anything (RaftStorage.close would
      // store the latest commit; the Wal is poisoned by the cut and writes nothing more).
      const files = s as unknown as { wal: { close(): Promise<void> }; hsFile: { close(): Promise<void> } };
      await files.wal.close().catch(() => undefined);
      await files.hsFile.close().catch(() => undefined);
    } finally {
      f('reset');
    }
    this.storage = null;
    const r = await this.group.open(this.dir);
    this.storage = r;
    const durable = this.mem;
    const view = new MemoryLog();
    const snap = r.snapshot();
    if (snap !== null) view.installSnapshot(snap);
    if (r.lastIndex() >= r.firstIndex()) view.append(r.entries(r.firstIndex(), r.lastIndex() + 1, ALL));
    view.setHardState(r.hardState());
    this.mem = view;
    this.recovering = false;
    if (view.lastIndex() !== durable.lastIndex() || view.hardState().generation !== durable.hardState().generation) this.recoveredMore++;
    if (this.group.checkRecovery) {
      const diffs = recoveryDiffs(durable, plan.entries, view);
      if (diffs.length > 0) throw new Error(`native-Wal recovery of ${this.dir} after a power loss: ${diffs.join('; ')}`);
    }
  }

  /** @internal Differences between the open storage's LogReader view and the node's log (none while closed). */
  liveDiffs(): string[] {
    return this.storage === null || this.recovering ? [] : recoveryDiffs(this.mem, [], this.storage);
  }

  /** Closes the storage, ignoring errors (cleanup). */
  async closeQuietly(): Promise<void> {
    await this.storage?.close().catch(() => undefined);
    this.storage = null;
  }

  /**
   * After {@link WalMirrors.drain}: closes the storage, reopens it from its directory and returns
   * the differences between what it recovered and the node's durable log (empty: equal).
   */
  async verifyRecovery(): Promise<string[]> {
    await this.s.close();
    this.storage = null;
    const r = await RaftStorage.open(this.dir);
    try {
      return recoveryDiffs(this.mem, [], r);
    } finally {
      await r.close();
    }
  }
}

/**
 * The storages of one simulated cluster in one temp directory, with the queue they share (one
 * operation at a time, across nodes: the fault layer's power loss is process-wide). Pass
 * {@link create} as `SimOptions.storage` and {@link settle} to `Simulator.runAsync`; remove the
 * directory with {@link remove}.
 */
export class WalMirrors {
  readonly root = mkdtempSync(join(tmpdir(), 'tidemark-sim-wal-'));
  readonly all: WalMirror[] = [];
  readonly checkRecovery: boolean;
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private crashPending = false;
  private failure: unknown = undefined;

  constructor(private readonly mode: WalModeOptions = {}) {
    this.checkRecovery = mode.checkRecovery ?? true;
    faults()('reset');
  }

  create = (id: string): SimStorage => {
    const m = new WalMirror(join(this.root, `${id}-${this.all.length}`), this);
    this.all.push(m);
    return m;
  };

  /** @internal Opens a storage through the faults addon. */
  open(dir: string): Promise<RaftStorage> {
    const options: RaftStorageOptions = { wal: WAL, openWal: (d, o) => openFaulty(d, o) };
    return (this.mode.open ?? ((d, o) => RaftStorage.open(d, o)))(dir, options);
  }

  /** @internal Queues an operation; after a failure the rest are skipped and {@link drain} throws it. */
  enqueue(f: () => Promise<void>): void {
    this.queued++;
    this.queue = this.queue.then(async () => {
      if (this.failure !== undefined) return;
      try {
        await f();
      } catch (err) {
        this.failure = err;
      }
    });
  }

  /** @internal A node crashed: its power loss must run before the next step. */
  crashed(): void {
    this.crashPending = true;
  }

  /** For `Simulator.runAsync`: drains the queue after a step with a crash (or every 256 writes). */
  settle = (): Promise<void> | undefined => (this.crashPending || this.queued >= 256 ? this.drain() : undefined);

  /**
   * Waits for every queued operation; throws the first failure. Then each open storage's own
   * LogReader view (what the cluster's core reads: RaftStorage keeps the log since the snapshot
   * in memory) must agree with the node's log.
   */
  async drain(): Promise<void> {
    this.crashPending = false;
    this.queued = 0;
    await this.queue;
    if (this.failure !== undefined) throw this.failure;
    if (!this.checkRecovery) return;
    for (const m of this.all) {
      const diffs = m.liveDiffs();
      if (diffs.length > 0) throw new Error(`native-Wal mode: RaftStorage's view of ${m.dir} differs from the node's log: ${diffs.join('; ')}`);
    }
  }

  /** Sums of the storages' counters. */
  counters(): { writes: number; powerLosses: number; inFlightLanded: number; recoveredMore: number } {
    const c = { writes: 0, powerLosses: 0, inFlightLanded: 0, recoveredMore: 0 };
    for (const m of this.all) {
      c.writes += m.writes;
      c.powerLosses += m.powerLosses;
      c.inFlightLanded += m.inFlightLanded;
      c.recoveredMore += m.recoveredMore;
    }
    return c;
  }

  /** Waits for (and closes) every storage still open, then removes the directory. */
  async remove(): Promise<void> {
    await this.queue;
    for (const m of this.all) await m.closeQuietly();
    faults()('reset');
    rmSync(this.root, { recursive: true, force: true });
  }
}
