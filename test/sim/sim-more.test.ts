/** Second half of the CI simulator run (see sim.test.ts): seeds 501..1000. */
import { describe, expect, it } from 'vitest';
import { CI_STEPS, range, runSeeds } from './shard';

describe('simulator: seeds 501..1000', () => {
  for (let shard = 0; shard < 5; shard++) {
    const first = 501 + shard * 100;
    it(`seeds ${first}..${first + 99} × ${CI_STEPS} steps`, () => {
      const { failures } = runSeeds(range(first, 100), CI_STEPS);
      expect(failures, failures.join('\n\n')).toEqual([]);
    });
  }
});
