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
  {
    name: 'follower-truncates-matching-suffix',
    classic: 'AppendEntries rule 3 misread: the follower truncates its log at the first entry of every append, even when all its entries match, so a late or duplicated short append deletes entries after it that the follower already acknowledged (Raft Fig. 2 "if an existing entry conflicts ... delete it and all that follow": only on a conflict)',
    file: 'follower.ts',
    search: 'if (!log.matchGeneration(e.index, e.generation)) {\n        log.truncateAndAppend(entries.slice(i));',
    replace: 'if (e !== undefined) {\n        log.truncateAndAppend(entries.slice(i));',
  },
  {
    name: 'commit-moves-back',
    classic: 'the high-water mark is set, not raised: an append or heartbeat carrying a lower leader commit (late, or from a leader behind it) moves a follower\'s commit back (Raft Fig. 2 "commitIndex = min(leaderCommit, ...)" only if leaderCommit > commitIndex)',
    file: 'replica-log.ts',
    search: '    if (index <= this.commit) return;\n    assert(index <= this.lastIndex()',
    replace: '    assert(index <= this.lastIndex()',
  },
  {
    name: 'match-from-last-sent',
    classic: 'the leader takes a follower\'s match index from what it last sent (its optimistic next) on any success response instead of from the index the response acknowledges: pipelined appends still in flight (or lost) count toward the quorum (Raft Fig. 2 matchIndex; etcd raft MaybeUpdate(m.Index))',
    file: 'leader.ts',
    search: 'const grew = pr.maybeUpdate(m.index);',
    replace: 'const grew = pr.maybeUpdate(Math.max(m.index, pr.next - 1));',
  },
  {
    name: 'match-initialized-to-leader-last',
    classic: 'a new leader initialises every follower\'s match index to its own last index (it should be 0: Raft Fig. 2 "matchIndex initialized to 0"): followers missing entries are never repaired and their phantom matches count toward the quorum',
    file: 'state.ts',
    search: "        pr.state = 'replicate';\n      }",
    replace: "        pr.state = 'replicate';\n      } else pr.match = last;",
  },
  {
    name: 'read-index-at-applied',
    classic: 'read index recorded as the leader\'s applied index instead of its commit index: a write committed but not yet applied on the leader is missing from the read (thesis §6.4 step 2 "readIndex = commitIndex")',
    file: 'leader.ts',
    search: 'for (const ctx of s.readsUnsent) s.readsPending.push({ ctx, index: s.log.commit,',
    replace: 'for (const ctx of s.readsUnsent) s.readsPending.push({ ctx, index: s.log.applied,',
  },
  {
    name: 'duplicate-vote-counted-twice',
    classic: 'a candidate counts every vote response, so a duplicated grant (the network duplicates and replays) counts as a second voter: a leader without a majority (votes must be a set of voters)',
    file: 'candidate.ts',
    search: 'if (!s.votes.has(m.from)) s.votes.set(m.from, m.granted);',
    replace: "s.votes.set(s.votes.has(m.from) ? `${m.from}#${s.votes.size}` : m.from, m.granted);",
  },
  {
    name: 'votes-not-reset-on-new-generation',
    classic: 'the vote tally is not cleared when the generation changes: grants from an earlier campaign, or the pre-votes just won, count as votes in the new generation (etcd raft reset() clears votes; thesis §9.6 pre-votes are not votes)',
    file: 'state.ts',
    search: '    this.leaderId = null;\n    this.votes.clear();\n    this.progress.clear();\n    this.pendingSend.clear();',
    replace: '    this.leaderId = null;\n    this.progress.clear();\n    this.pendingSend.clear();',
  },
  {
    name: 'candidate-self-vote-not-recorded',
    classic: 'a candidate counts its own vote but does not record votedFor = self: in the same generation it can then grant its vote to another candidate, and two leaders are elected (Raft Fig. 2 "vote for self")',
    file: 'state.ts',
    search: '    this.votedFor = this.id;\n',
    replace: '',
  },
  {
    name: 'follower-acks-own-last-index',
    classic: 'the follower acknowledges its own last index instead of the last entry the append carried: a stale tail beyond the append counts as replicated, and the leader commits entries that only match by index (Raft Fig. 2: success means "matches up to prevLogIndex + len(entries)")',
    file: 'follower.ts',
    search: '    ack(s, m, lastNew);',
    replace: '    ack(s, m, log.lastIndex());',
  },
  {
    name: 'check-quorum-counts-self-twice',
    classic: 'check-quorum counts the leader itself twice, so a leader with a quorum minus one of silent peers (in a 3-node cluster: alone) never steps down (thesis §6.2)',
    file: 'leader.ts',
    search: 'let active = 1;',
    replace: 'let active = 2;',
  },
  {
    name: 'leader-ignores-higher-generation-response',
    classic: 'the leader does not step down on an append response carrying a higher generation (Raft Fig. 2 "if RPC request or response contains term T > currentTerm: convert to follower"): a deposed leader keeps leading, and counts the newer generation\'s answers as its own',
    file: 'state.ts',
    search: "if (m.type === 'pre-vote' || (m.type === 'pre-vote-response' && m.granted)) {",
    replace: "if (m.type === 'pre-vote' || (m.type === 'pre-vote-response' && m.granted) || (m.type === 'append-response' && this.role === 'leader')) {",
  },
  {
    name: 'read-round-not-advanced',
    classic: 'the read round is not advanced for a new batch of reads: an answer to the heartbeat round sent before the read registered confirms it (etcd raft gives each read its own context)',
    file: 'leader.ts',
    search: '    s.readRound++;\n',
    replace: '',
  },
];
