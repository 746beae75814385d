/**
 * fast-check arbitraries for everything the wire carries: core messages, handshakes,
 * client requests and responses. Shared by the codec and handshake property tests.
 */
import fc from 'fast-check';
import type { Entry, Message } from '../../lib/core/types';
import type { ClientRequest, ClientResponse } from '../../lib/net/api';
import type { Handshake } from '../../lib/net/codec';

/** Ids of 1..40 characters, some outside ASCII (UTF-8 byte counts differ from lengths). */
export const idArb = fc.string({ minLength: 1, maxLength: 40, unit: fc.constantFrom('a', 'b', 'n', '1', '-', 'é', '節', '🌊') });
/** Non-negative safe integers, biased to the edges (0, 2^32 boundary, 2^53 - 1). */
export const u53Arb = fc.oneof(
  fc.constantFrom(0, 1, 0xffff_ffff, 0x1_0000_0000, Number.MAX_SAFE_INTEGER),
  fc.nat(),
  fc.maxSafeNat(),
);
const bytesArb = (maxLength: number) => fc.uint8Array({ maxLength });
const entryArb: fc.Arbitrary<Entry> = fc.record({
  index: u53Arb,
  generation: u53Arb,
  kind: fc.constantFrom('normal' as const, 'noop' as const),
  data: bytesArb(64),
});
const baseArb = fc.record({ from: idArb, to: idArb, clusterId: idArb, generation: u53Arb });

/** Any core message, every type. */
export const messageArb: fc.Arbitrary<Message> = fc.oneof(
  baseArb.chain((b) => fc.record({ lastIndex: u53Arb, lastGeneration: u53Arb }).map((x) => ({ type: 'pre-vote' as const, ...b, ...x }))),
  baseArb.chain((b) => fc.boolean().map((granted) => ({ type: 'pre-vote-response' as const, ...b, granted }))),
  baseArb.chain((b) =>
    fc.record({ lastIndex: u53Arb, lastGeneration: u53Arb, transfer: fc.boolean() }).map((x) => ({ type: 'vote' as const, ...b, ...x })),
  ),
  baseArb.chain((b) => fc.boolean().map((granted) => ({ type: 'vote-response' as const, ...b, granted }))),
  baseArb.chain((b) =>
    fc
      .record({ prevIndex: u53Arb, prevGeneration: u53Arb, commit: u53Arb, entries: fc.array(entryArb, { maxLength: 8 }) })
      .map((x) => ({ type: 'append' as const, ...b, ...x })),
  ),
  baseArb.chain((b) =>
    fc
      .record({ success: fc.boolean(), index: u53Arb, hintIndex: u53Arb, hintGeneration: u53Arb })
      .map((x) => ({ type: 'append-response' as const, ...b, ...x })),
  ),
  baseArb.chain((b) => fc.record({ commit: u53Arb, readRound: u53Arb }).map((x) => ({ type: 'heartbeat' as const, ...b, ...x }))),
  baseArb.chain((b) => u53Arb.map((readRound) => ({ type: 'heartbeat-response' as const, ...b, readRound }))),
  baseArb.chain((b) =>
    fc
      .record({ index: u53Arb, generation: u53Arb, offset: fc.nat({ max: 1 << 30 }), extra: fc.nat({ max: 1000 }), data: bytesArb(64) })
      .map(({ index, generation, offset, extra, data }) => ({
        type: 'snapshot-chunk' as const,
        ...b,
        meta: { index, generation },
        offset,
        totalBytes: offset + data.length + extra,
        data,
      })),
  ),
  baseArb.chain((b) =>
    fc.record({ snapshotIndex: u53Arb, nextOffset: u53Arb }).map((x) => ({ type: 'snapshot-response' as const, ...b, ...x })),
  ),
  baseArb.map((b) => ({ type: 'timeout-now' as const, ...b })),
);

export const handshakeArb: fc.Arbitrary<Handshake> = fc.oneof(
  fc.record({ protocolVersion: fc.integer({ min: 0, max: 0xffff }), clusterId: idArb, role: fc.constantFrom('peer' as const, 'server' as const), nodeId: idArb }),
  fc.record({ protocolVersion: fc.integer({ min: 0, max: 0xffff }), clusterId: idArb, role: fc.constant('client' as const), nodeId: fc.constant('') }),
);

export const clientRequestArb: fc.Arbitrary<ClientRequest> = fc
  .record({
    requestId: fc.nat({ max: 0xffff_ffff }),
    kind: fc.constantFrom('propose' as const, 'read' as const, 'status' as const),
    clientId: fc.oneof(fc.constant(''), idArb),
    seq: u53Arb,
    readMode: fc.constantFrom(undefined, 'linearizable' as const, 'follower' as const),
    firstUnackedSeq: fc.constantFrom(undefined, 1, 77),
    payload: bytesArb(128),
  })
  .map(({ readMode, firstUnackedSeq, ...r }) => ({
    ...r,
    ...(readMode !== undefined ? { readMode } : {}),
    ...(firstUnackedSeq !== undefined ? { firstUnackedSeq } : {}),
  }));

export const clientResponseArb: fc.Arbitrary<ClientResponse> = fc.oneof(
  fc.record({ requestId: fc.nat({ max: 0xffff_ffff }), ok: fc.constant(true as const), result: bytesArb(128), index: u53Arb }),
  fc
    .record({
      requestId: fc.nat({ max: 0xffff_ffff }),
      ok: fc.constant(false as const),
      code: fc.constantFrom('TM_NOT_LEADER', 'TM_BUSY', 'TM_UNKNOWN_OUTCOME'),
      message: fc.string({ maxLength: 50 }),
      outcome: fc.constantFrom('not-applied' as const, 'unknown' as const),
      leaderId: fc.option(idArb, { nil: undefined }),
      leaderAddress: fc.option(fc.constantFrom('127.0.0.1:7001', ''), { nil: undefined }),
      retryAfterMs: fc.option(fc.nat({ max: 0xffff_ffff }), { nil: undefined }),
    })
    .map(({ leaderId, leaderAddress, retryAfterMs, ...r }) => ({
      ...r,
      ...(leaderId !== undefined ? { leaderId } : {}),
      ...(leaderAddress !== undefined ? { leaderAddress } : {}),
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    })),
);
