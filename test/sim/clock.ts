/**
 * Simulated time: one step is one unit; each node ticks every `periodSteps`
 * steps at its own phase (a little clock drift between nodes), and a paused
 * node (GC, SIGSTOP) neither ticks nor steps until it resumes with its stale view.
 */
export class NodeClock {
  /** Step at which the node resumes; -1 if running. */
  pausedUntil = -1;
  pauses = 0;

  constructor(
    readonly periodSteps: number,
    readonly phase: number,
  ) {}

  isPaused(now: number): boolean {
    return this.pausedUntil > now;
  }
  pause(now: number, steps: number): void {
    this.pausedUntil = now + steps;
    this.pauses++;
  }
  resume(): void {
    this.pausedUntil = -1;
  }
  ticksAt(now: number): boolean {
    return now % this.periodSteps === this.phase;
  }
}
