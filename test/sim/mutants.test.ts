/**
 * The mutation suite in CI (fast mode): every planted bug in mutants/mutants.ts, applied
 * alone to a copy of lib/core, must make the simulator fail on some seed of CI's budget
 * (seeds 1..1000 × 2,000 steps). Each mutant stops at its first caught seed, so this
 * costs a few seeds per mutant. The full run (every seed, catch rates ≥ 5 %) is
 * `npm run mutants -- --full`; its table is in test/sim/README.md.
 */
import { describe, expect, it } from 'vitest';
import { MUTANTS } from './mutants/mutants';
import { runMutants } from './mutants/run';

describe('mutation suite (fast: first caught seed per mutant)', () => {
  it(`catches all ${MUTANTS.length} planted bugs within seeds 1..1000`, () => {
    expect(MUTANTS.length).toBeGreaterThanOrEqual(20);
    const results = runMutants(MUTANTS, { seeds: 1000, steps: 2000, stopAfter: 1 });
    const survivors = results.filter((r) => r.caught === 0).map((r) => `${r.name} (${r.run} seeds)`);
    expect(survivors, `mutants not caught: ${survivors.join(', ')}`).toEqual([]);
  }, 900_000);

  it('applies each mutation to exactly one place (a stale search text is an error, not a pass)', () => {
    expect(() => runMutants([{ name: 'bogus', classic: '', file: 'leader.ts', search: 'no such text anywhere', replace: '' }], { seeds: 1, steps: 10 })).toThrow(/occurs 0 times/);
  });
});
