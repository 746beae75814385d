/**
 * Planted bugs: each is one search/replace in a copy of lib/core, a named classic
 * from the Raft paper and thesis, etcd/raft's history of fixed bugs, or the failure
 * stories of "Patterns of Distributed Systems". `npm run mutants` applies each alone
 * and runs the simulator (run.ts); every one must be caught.
 */
export interface Mutant {
  /** Short stable name (the table in test/sim/README.md uses it). */
  readonly name: string;
  /** The classic it plants, and where it comes from. */
  readonly classic: string;
  /** File under lib/core. */
  readonly file: string;
  /** Exact text to replace; must occur exactly once. */
  readonly search: string;
  readonly replace: string;
  /**
   * Set while the simulator does not catch this mutant within CI's seeds: why. CI then
   * expects it to survive (an expected failure, so catching it turns CI red until this is removed).
   */
  readonly survives?: string;
}

export const MUTANTS: readonly Mutant[] = [
  {
    name: 'follower-commit-to-own-last-index',
    classic: 'AppendEntries rule 5 misread: follower commits min(leaderCommit, its own last index) instead of the last entry the append carried (Raft Fig. 2); applies a dead leader\'s stale entries',
    file: 'follower.ts',
    search: 'log.commitTo(Math.min(m.commit, lastNew));',
    replace: 'log.commitTo(Math.min(m.commit, log.lastIndex()));',
  },
  {
    name: 'vote-request-before-own-vote-durable',
    classic: 'candidate sends RequestVote before its own vote (and new term) is persisted; a crash forgets it voted for itself (Raft §5.2, etcd raft "persist before send")',
    file: 'types.ts',
    search: '  vote: true,',
    replace: '  vote: false,',
  },
  {
    name: 'leader-counts-unpersisted-entries',
    classic: 'leader counts its own entries toward the quorum before they are durable locally (thesis §10.2.1 allows parallel writes only if the leader counts itself once durable)',
    file: 'replica.ts',
    search: 'if (self.maybeUpdate(log.offset - 1) && maybeCommit(s))',
    replace: 'if (self.maybeUpdate(log.lastIndex()) && maybeCommit(s))',
  },
  {
    name: 'commit-old-generation-by-counting',
    classic: 'Raft Figure 8: a leader commits an entry of an older term because a majority stores it',
    file: 'quorum.ts',
    search: '  if (generationAt(candidate) !== currentGeneration) return commit;\n',
    replace: '',
  },
  {
    name: 'vote-grant-before-persist',
    classic: 'voter grants before persisting votedFor; after a crash it votes again in the same term: two leaders (Raft Fig. 2 "persist before responding")',
    file: 'types.ts',
    search: "  'vote-response': true,",
    replace: "  'vote-response': false,",
  },
  {
    name: 'vote-ignores-log-up-to-date',
    classic: 'election restriction dropped: votes go to candidates with shorter/older logs (Raft §5.4.1); leader completeness breaks',
    file: 'state.ts',
    search: 'const granted = canVote && this.log.isUpToDate(m.lastIndex, m.lastGeneration);',
    replace: 'const granted = canVote;',
  },
  {
    name: 'up-to-date-compares-length-only',
    classic: '"longer log wins": the up-to-date check compares last indexes only, not last terms first (Raft §5.4.1, a common misreading)',
    file: 'replica-log.ts',
    search: 'return lastGeneration > mine || (lastGeneration === mine && lastIndex >= this.lastIndex());',
    replace: 'return lastIndex >= this.lastIndex();',
  },
  {
    name: 'append-ack-before-persist',
    classic: 'follower acknowledges entries before they are durable; a crash loses a committed entry (lost commit)',
    file: 'types.ts',
    search: "  'append-response': true,",
    replace: "  'append-response': false,",
  },
  {
    name: 'heartbeat-commit-unclamped',
    classic: 'heartbeat carries the leader commit not clamped to the follower\'s match; a follower with a divergent tail commits it (etcd raft: heartbeat commit = min(match, committed))',
    file: 'leader.ts',
    search: 'commit: Math.min(pr.match, s.log.commit), readRound',
    replace: 'commit: s.log.commit, readRound',
  },
  {
    name: 'accept-stale-generation',
    classic: 'messages of an older term are handled instead of rejected (Raft Fig. 2 "reply false if term < currentTerm")',
    file: 'state.ts',
    search: "      return 'ignored-stale';\n",
    replace: '',
  },
  {
    name: 'stale-append-response-counted',
    classic: 'a success response from an earlier term advances match and commit (etcd raft ignores responses of older terms)',
    file: 'state.ts',
    search: '} else if (m.generation < this.generation) {',
    replace: "} else if (m.generation < this.generation && m.type !== 'append-response') {",
  },
  {
    name: 'stale-vote-grant-counted',
    classic: 'a candidate counts vote grants from an earlier campaign (term check on responses missing): double votes, two leaders',
    file: 'state.ts',
    search: '} else if (m.generation < this.generation) {',
    replace: "} else if (m.generation < this.generation && m.type !== 'vote-response') {",
  },
  {
    name: 'double-vote-in-one-generation',
    classic: 'a voter votes again in the same term for another candidate (votedFor not checked)',
    file: 'state.ts',
    search: '(this.votedFor === null && this.leaderId === null)',
    replace: '(this.leaderId === null)',
  },
  {
    name: 'vote-not-persisted',
    classic: 'votedFor left out of the persisted state when the term did not change; after a crash the voter votes twice (Generation Clock persisted without the vote)',
    file: 'replica.ts',
    search: 'p.generation !== s.generation || p.votedFor !== s.votedFor || p.commit !== s.log.commit',
    replace: 'p.generation !== s.generation || p.commit !== s.log.commit',
  },
  {
    name: 'quorum-off-by-one',
    classic: 'majority computed as floor(n/2): two disjoint "quorums", split brain',
    file: 'quorum.ts',
    search: 'return Math.floor(voterCount / 2) + 1;',
    replace: 'return Math.floor(voterCount / 2);',
  },
  {
    name: 'log-matching-ignores-prev-term',
    classic: 'consistency check looks at prevLogIndex only, not prevLogTerm (Raft Fig. 2 AppendEntries rule 2)',
    file: 'follower.ts',
    search: 'if (log.matchGeneration(prevIndex, prevGeneration)) {',
    replace: 'if (prevIndex <= log.lastIndex()) {',
  },
  {
    name: 'no-conflict-truncation',
    classic: 'follower keeps conflicting entries and only appends new ones (Raft Fig. 2 AppendEntries rule 3 missing)',
    file: 'follower.ts',
    search: 'if (!log.matchGeneration(e.index, e.generation)) {',
    replace: 'if (e.index > log.lastIndex()) {',
  },
  {
    name: 'snapshot-keeps-conflicting-log',
    classic: 'snapshot/log overlap: a follower whose log reaches the snapshot index keeps it instead of checking the term there (etcd raft restore checks matchTerm)',
    file: 'follower.ts',
    search: 'if (log.matchGeneration(m.meta.index, m.meta.generation)) {',
    replace: 'if (log.lastIndex() >= m.meta.index) {',
  },
  {
    name: 'read-index-without-quorum',
    classic: 'stale read: read index served without a heartbeat round acknowledged by a quorum (thesis §6.4)',
    file: 'leader.ts',
    search: 'if (r === undefined || r.acks.size < s.quorum) break;',
    replace: 'if (r === undefined) break;',
  },
  {
    name: 'read-index-before-first-commit',
    classic: 'read index taken before the new leader commits an entry of its term: its commit index may be behind (thesis §6.4 step 1, etcd raft #8525-style)',
    file: 'leader.ts',
    search: 'if (s.log.generationAt(s.log.commit) !== s.generation) s.readsBeforeCommit.push(ctx);\n  else s.readsUnsent.push(ctx);',
    replace: 's.readsUnsent.push(ctx);',
  },
  {
    name: 'read-round-not-matched',
    classic: 'read index confirmed by any heartbeat answer, even one to a round sent before the read (etcd raft matches the read context)',
    file: 'leader.ts',
    search: 'if (r.round <= readRound) r.acks.add(from);',
    replace: 'r.acks.add(from);',
  },
  {
    name: 'lease-read-on-ticks',
    classic: 'a paused leader\'s reads: leader lease served from the leader\'s own ticks, which stop while it is paused (Patterns of Distributed Systems, "Leader lease" with a paused process)',
    file: 'leader.ts',
    search: 'if (s.log.generationAt(s.log.commit) !== s.generation) s.readsBeforeCommit.push(ctx);',
    replace:
      "if (s.electionElapsed < s.options.electionTimeoutTicks && s.log.generationAt(s.log.commit) === s.generation) {\n    s.readStates.push({ ctx, index: s.log.commit, linearizable: true });\n    return;\n  }\n  if (s.log.generationAt(s.log.commit) !== s.generation) s.readsBeforeCommit.push(ctx);",
  },
  {
    name: 'leader-applies-locally-durable',
    classic: 'a paused leader\'s writes: the leader applies (acknowledges) entries once durable locally, before a majority has them',
    file: 'replica.ts',
    search: 'return [Math.max(log.applied, snapshot?.meta.index ?? 0) + 1, Math.min(log.commit, log.lastIndex())];',
    replace: "return [Math.max(log.applied, snapshot?.meta.index ?? 0) + 1, s.role === 'leader' ? log.offset - 1 : Math.min(log.commit, log.lastIndex())];",
  },
  {
    name: 'pending-reads-dropped-on-step-down',
    classic: 'read requests in flight are forgotten when the leader steps down: clients wait forever (etcd raft: pending read-only requests are dropped and must be answered)',
    file: 'state.ts',
    search: 'for (const r of this.readsPending) this.readStates.push({ ctx: r.ctx, index: null, linearizable: true });',
    replace: '',
  },
  {
    name: 'check-quorum-never-steps-down',
    classic: 'check-quorum counts but never steps down: a leader cut off from the majority keeps accepting writes that cannot commit (thesis §6.2)',
    file: 'leader.ts',
    search: '      if (active < s.quorum) {',
    replace: '      if (active < 0) {',
  },
  {
    name: 'leader-lease-ignored',
    classic: 'voters ignore the leader lease: a node rejoining after a partition deposes a healthy leader (thesis §4.2.3, etcd raft #3253)',
    file: 'state.ts',
    search: "if (inLease && !(m.type === 'vote' && m.transfer)) return 'ignored-lease';",
    replace: '',
  },
  {
    name: 'pre-vote-raises-generation',
    classic: 'pre-vote that bumps the term anyway: a partitioned node returns with a higher term and disrupts the leader (thesis §9.6)',
    file: 'state.ts',
    search: '    // Pre-vote does not change the generation nor the vote (Raft thesis §9.6).\n    this.votes.clear();',
    replace: '    this.generation++;\n    this.votedFor = null;\n    this.votes.clear();',
  },
  {
    name: 'transfer-keeps-accepting-proposals',
    classic: 'leadership transfer without stopping proposals: the target never catches up, or entries race the handover (thesis §3.10)',
    file: 'leader.ts',
    search: 'if (s.transferee !== null) throw TidemarkError.busy(',
    replace: 'if (s.transferee !== null && s.transferee === s.id) throw TidemarkError.busy(',
  },
  {
    name: 'transfer-campaign-honours-lease',
    classic: 'the transfer target campaigns as on a timeout (pre-vote, no transfer flag): the voters\' lease refuses it, the transfer fails (etcd raft CampaignTransfer)',
    file: 'follower.ts',
    search: '      s.startElection(true);',
    replace: '      s.startElection(false);',
  },
];
