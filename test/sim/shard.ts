/** Runs a range of simulator seeds and reports every failure with its replay command. */
import { Simulator, type SimResult } from './simulator';

export const CI_STEPS = 2000;

export function runSeeds(seeds: readonly number[], steps: number): { failures: string[]; results: SimResult[] } {
  const failures: string[] = [];
  const results: SimResult[] = [];
  for (const seed of seeds) {
    const res = new Simulator({ seed, steps }).run();
    results.push(res);
    if (!res.ok) failures.push(`seed ${seed} (${res.nodes} nodes) failed\n${res.error}\nreplay: ${res.replay}`);
  }
  return { failures, results };
}

export function range(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}
