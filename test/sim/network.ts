/**
 * Simulated network: per-message delay (so reordering), drops, duplicates, and
 * directed link cuts (symmetric and one-way partitions). Deterministic from the
 * simulator's PRNG.
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
}

export class Network {
  private readonly due = new Map<number, Message[]>();
  private readonly cuts = new Set<string>();
  sent = 0;
  dropped = 0;
  duplicated = 0;

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

  send(m: Message, now: number): void {
    this.sent++;
    if (this.isCut(m.from, m.to) || this.rng.chance(this.faults.dropRate)) {
      this.dropped++;
      return;
    }
    this.enqueue(m, now + 1 + this.rng.int(this.faults.maxDelaySteps));
    if (this.rng.chance(this.faults.duplicateRate)) {
      this.duplicated++;
      this.enqueue(m, now + 1 + this.rng.int(this.faults.maxDelaySteps * 2));
    }
  }

  enqueue(m: Message, at: number): void {
    const list = this.due.get(at);
    if (list === undefined) this.due.set(at, [m]);
    else list.push(m);
  }

  /** Messages due at `now`, shuffled; a cut applies at delivery time too. */
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
      if (this.isCut(m.from, m.to)) this.dropped++;
      else out.push(m);
    }
    return out;
  }
}
