/**
 * Seeds the simulator once failed on while it was built, pinned as regression
 * tests. Each entry says what broke and what was fixed. The simulator has changed since
 * (schedules, clients, late messages), so these seeds no longer replay those exact runs;
 * they stay as ordinary regression seeds.
 */
export interface PinnedSeed {
  seed: number;
  steps: number;
  nodes?: number;
  what: string;
}

export const PINNED_SEEDS: readonly PinnedSeed[] = [
  {
    seed: 941,
    steps: 1000,
    what:
      'n5, paused as a candidate of generation 5, resumed and counted vote grants that had waited for it, ' +
      'becoming leader of generation 5 after generation 6 had committed index 10. Legal in Raft (it cannot commit); ' +
      'the leader-completeness check was too strict and now only requires entries committed in older generations.',
  },
  {
    seed: 1551,
    steps: 2000,
    what:
      'Liveness failed: with one entry per append and one append in flight (bounds drawn for this seed), a ' +
      '200-entry backlog could not replicate within the fixed bound. Not a core bug: the bound now allows one ' +
      'round trip per backlog entry on top of the election allowance.',
  },
];
