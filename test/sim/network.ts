/**
 * Simulated network: per-message delay (so reordering), drops, duplicates, and
 * directed link cuts (symmetric and one-way partitions). Deterministic from the
 * simulator's PRNG.
 *
 * Late messages from another life of the receiver are modelled on purpose:
 * - a fraction of messages (and of duplicates) take a long delay, up to several
 *   election timeouts, so they arrive after elections, role changes and restarts;
 * - a message that reaches a cut link is either lost or held in a buffer and retried
 *   later, so it may arrive after the heal, from an older generation;
 * - an append may also arrive as a shorter copy (a prefix of its entries, same commit);
 * - the last messages delivered to each node are kept, so the simulator can replay
 *   them to that node after its role or generation changed.
 */
import type { Message } from '../../lib/core';
import type { SeededRandom } from '../../lib/core/random';

export interface NetworkFaults {
  /** Probability a message is lost. */
  dropRate: number;
  /** Probability a message is delivered twice. */
  duplicateRate: number;
  /** Delay in steps is uniform in [1, maxDelaySteps]. */
  maxDelaySteps: number;
  /** Probability a message (or a duplicate) takes a long delay instead, uniform in [1, maxLongDelaySteps]. */
  longDelayRate: number;
  maxLongDelaySteps: number;
  /**
   * Probability an append of several entries is also delivered as a copy carrying only a prefix of
   * them (same prevIndex and commit): a message the leader could have sent with a smaller batch limit.
   */
  splitRate: number;
}

/** Messages kept per node for replays. */
const RECENT_PER_NODE = 32;

export class Network {
  private readonly due = new Map<number, Message[]>();
  private readonly cuts = new Set<string>();
  /** Last messages delivered to each node, oldest first. */
  private readonly recent = new Map<string, Message[]>();
  sent = 0;
  dropped = 0;
  duplicated = 0;
  delayedLong = 0;
  heldAtCut = 0;
  replayed = 0;
  split = 0;

  constructor(
    private readonly rng: SeededRandom,
    public faults: NetworkFaults,
  ) {}

  /** Drops every message from `from` to `to` until healed. */
  cut(from: string, to: string): void {
    this.cuts.add(`${from}>${to}`);
  }
  isCut(from: string, to: string): boolean {
    return this.cuts.has(`${from}>${to}`);
  }
  heal(): void {
    this.cuts.clear();
  }
  get partitioned(): boolean {
    return this.cuts.size > 0;
  }

  private delay(base: number): number {
    const f = this.faults;
    if (f.longDelayRate > 0 && this.rng.chance(f.longDelayRate)) {
      this.delayedLong++;
      return 1 + this.rng.int(f.maxLongDelaySteps);
    }
    return 1 + this.rng.int(base);
  }

  send(m: Message, now: number): void {
    this.sent++;
    if (this.isCut(m.from, m.to) || this.rng.chance(this.faults.dropRate)) {
      this.dropped++;
      return;
    }
    this.enqueue(m, now + this.delay(this.faults.maxDelaySteps));
    if (m.type === 'append' && m.entries.length >= 2 && this.faults.splitRate > 0 && this.rng.chance(this.faults.splitRate)) {
      this.split++;
      this.enqueue({ ...m, entries: m.entries.slice(0, 1 + this.rng.int(m.entries.length - 1)) }, now + this.delay(this.faults.maxDelaySteps));
    }
    if (this.rng.chance(this.faults.duplicateRate)) {
      this.duplicated++;
      this.enqueue(m, now + this.delay(this.faults.maxDelaySteps * 2));
    }
  }

  enqueue(m: Message, at: number): void {
    const list = this.due.get(at);
    if (list === undefined) this.due.set(at, [m]);
    else list.push(m);
  }

  /**
   * Messages due at `now`, shuffled. One that meets a cut link is lost half the time and
   * otherwise held and retried a little later (it may arrive after the heal).
   */
  take(now: number): Message[] {
    const list = this.due.get(now);
    if (list === undefined) return [];
    this.due.delete(now);
    for (let i = list.length - 1; i > 0; i--) {
      const j = this.rng.int(i + 1);
      const t = list[i] as Message;
      list[i] = list[j] as Message;
      list[j] = t;
    }
    const out: Message[] = [];
    for (const m of list) {
      if (!this.isCut(m.from, m.to)) out.push(m);
      else if (this.rng.chance(0.5)) this.dropped++;
      else {
        this.heldAtCut++;
        this.enqueue(m, now + 1 + this.rng.int(40));
      }
    }
    return out;
  }

  /** Records a delivery (for later replays). */
  delivered(m: Message): void {
    let r = this.recent.get(m.to);
    if (r === undefined) this.recent.set(m.to, (r = []));
    r.push(m);
    if (r.length > RECENT_PER_NODE) r.shift();
  }

  /** Re-sends up to `count` of the messages recently delivered to `to`, as late duplicates. */
  replayTo(to: string, count: number, now: number): void {
    const r = this.recent.get(to);
    if (r === undefined || r.length === 0) return;
    for (let i = 0; i < count; i++) {
      const m = r[this.rng.int(r.length)] as Message;
      this.replayed++;
      this.enqueue(m, now + 1 + this.rng.int(this.faults.maxDelaySteps * 4));
    }
  }
}
