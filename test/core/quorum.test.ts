/**
 * Majority Quorum and High-Water Mark math ("Patterns of Distributed Systems":
 * Majority Quorum, High-Water Mark; Raft §5.3 and §5.4.2).
 */
import { describe, expect, it } from 'vitest';
import { majorityIndex, nextHighWaterMark, quorumSize, tallyVotes } from '../../lib/core/quorum';

describe('Majority Quorum: quorum = n/2 + 1', () => {
  it.each([
    [1, 1],
    [2, 2],
    [3, 2],
    [4, 3],
    [5, 3],
    [7, 4],
  ])('%i voters need %i', (n, q) => {
    expect(quorumSize(n)).toBe(q);
  });
  it('a cluster of 2f+1 survives f failures: f refusals still leave the vote pending, f+1 lose it', () => {
    expect(tallyVotes(1, 2, 5)).toBe('pending');
    expect(tallyVotes(3, 2, 5)).toBe('won');
    expect(tallyVotes(2, 3, 5)).toBe('lost');
    expect(tallyVotes(2, 0, 3)).toBe('won');
    expect(tallyVotes(1, 1, 3)).toBe('pending');
  });
});

describe('High-Water Mark: highest index durable on a majority', () => {
  it('takes the quorum-th highest match index', () => {
    expect(majorityIndex([5])).toBe(5);
    expect(majorityIndex([5, 3, 9])).toBe(5);
    expect(majorityIndex([0, 0, 9])).toBe(0);
    expect(majorityIndex([1, 2, 3, 4, 5])).toBe(3);
    expect(majorityIndex([9, 9, 1, 1, 1])).toBe(1);
    expect(majorityIndex([9, 9, 9, 1, 1])).toBe(9);
    expect(majorityIndex([4, 7, 7, 2])).toBe(4); // even n: 3 of 4 must hold it
  });
  it('does not depend on the order of the inputs', () => {
    expect(majorityIndex([3, 1, 2])).toBe(majorityIndex([1, 2, 3]));
  });
  it('advances only for an entry of the current generation (Raft §5.4.2)', () => {
    const gens = [0, 1, 1, 2, 3]; // generation of index 0..4
    const at = (i: number): number | undefined => gens[i];
    // majority holds index 2 (generation 1) but the leader is in generation 3: no advance
    expect(nextHighWaterMark(0, [2, 2, 4], 3, at)).toBe(0);
    // once index 4 (generation 3) is on a majority, everything before commits with it
    expect(nextHighWaterMark(0, [4, 4, 2], 3, at)).toBe(4);
  });
  it('never moves back', () => {
    const at = (): number => 1;
    expect(nextHighWaterMark(7, [3, 3, 3], 1, at)).toBe(7);
  });
});
