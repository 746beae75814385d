/**
 * The network edge after the handshake, fuzzed against a live transport: a peer that
 * handshakes correctly then sends a mix of valid messages, mutated frames, frames of the
 * wrong type or sender, and garbage. An oracle (the pure codec plus the sender rules)
 * says which messages must be delivered and why the connection must close; the live
 * node must agree, while a good peer keeps talking to it throughout.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Message } from '../../lib/core/types';
import { decodeMessage, encodeFrame, encodeHandshake, encodeMessage, FrameDecoder, FrameTypes, isMessageFrameType, PEER_MAX_FRAME_BYTES_DEFAULT, PROTOCOL_VERSION } from '../../lib/net/codec';
import { messageArb } from './arbitraries';
import { freePorts, heartbeat, HOST, rawConnect, startNode, waitFor, type TestNode } from './net-helpers';
import { norm } from './wire-helpers';

const live: TestNode[] = [];
afterEach(async () => {
  await Promise.all(live.splice(0).map((n) => n.transport.close()));
});

/** One frame of the fuzzed stream. */
const frameArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  // valid messages from n0 to n2 of this cluster (delivered)
  { weight: 4, arbitrary: messageArb.map((m) => encodeMessage({ ...m, from: 'n0', to: 'n2', clusterId: 'test-cluster' } as Message)) },
  // messages with a wrong sender, receiver or cluster (bad-sender)
  { weight: 1, arbitrary: messageArb.map((m) => encodeMessage({ ...m, clusterId: m.clusterId === 'test-cluster' ? 'x' : m.clusterId } as Message)) },
  // one byte flipped (bad CRC, bad header, or a length that waits)
  {
    weight: 1,
    arbitrary: fc.tuple(messageArb, fc.nat(), fc.integer({ min: 1, max: 255 })).map(([m, at, x]) => {
      const f = Buffer.from(encodeMessage({ ...m, from: 'n0', to: 'n2', clusterId: 'test-cluster' } as Message));
      f[at % f.length]! ^= x;
      return f;
    }),
  },
  // any type with a random body and a valid CRC (malformed body, or not allowed)
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...Object.values(FrameTypes)), fc.uint8Array({ maxLength: 80 })).map(([t, b]) => encodeFrame(t, b)) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 40 }) },
);

/** What the node must do with `stream` after a good handshake: messages delivered, then the close reason (null: stays open). */
function oracle(stream: Uint8Array): { delivered: Message[]; reason: string | null } {
  const delivered: Message[] = [];
  let reason: string | null = null;
  const error = new FrameDecoder(PEER_MAX_FRAME_BYTES_DEFAULT).pushEach(stream, (f) => {
    if (f.type === FrameTypes.REJECT) reason = 'rejected-by-peer';
    else if (!isMessageFrameType(f.type)) reason = 'not-allowed';
    else {
      try {
        const m = decodeMessage(f.type, f.body);
        if (m.from !== 'n0' || m.to !== 'n2' || m.clusterId !== 'test-cluster') reason = 'bad-sender';
        else delivered.push(m);
      } catch {
        reason = 'bad-frame';
      }
    }
    return reason === null;
  });
  if (reason === null && error !== null) reason = 'bad-frame';
  return { delivered, reason };
}

describe('soak: fuzzed frames from a handshaken peer', () => {
  it('the live node delivers exactly what the oracle says and closes for the oracle\'s reason', async () => {
    const [p1, p2, p0] = await freePorts(3);
    const n2 = await startNode('n2', p2!, { n0: { host: HOST, port: p0! }, n1: { host: HOST, port: p1! } });
    live.push(n2);
    const n1 = await startNode('n1', p1!, { n2: { host: HOST, port: p2! } });
    live.push(n1);
    let sent = 0;
    const pump = setInterval(() => n1.transport.send(heartbeat('n1', 'n2', ++sent)), 5);
    const reasons = new Set<string>();
    try {
      await waitFor(() => n2.received.length > 0, 'good peer');
      await fc.assert(
        fc.asyncProperty(fc.array(frameArb, { minLength: 1, maxLength: 12 }), async (frames) => {
          const stream = Buffer.concat(frames);
          const want = oracle(stream);
          reasons.add(want.reason ?? 'open');
          const fromN0 = (): Message[] => n2.received.filter((m) => m.from === 'n0');
          const before = fromN0().length;
          const rejectedBefore = want.reason === null ? 0 : (n2.transport.stats().rejected[want.reason] ?? 0);
          const raw = await rawConnect(p2!);
          raw.socket.write(encodeHandshake({ protocolVersion: PROTOCOL_VERSION, clusterId: 'test-cluster', role: 'peer', nodeId: 'n0' }));
          await waitFor(() => raw.frames.length > 0, 'handshake answer');
          raw.socket.write(stream);
          if (want.reason !== null) {
            await raw.closedPromise;
            expect(n2.transport.stats().rejected[want.reason]).toBe(rejectedBefore + 1);
          } else {
            await waitFor(() => fromN0().length === before + want.delivered.length, 'every valid message');
            raw.socket.destroy();
            await raw.closedPromise;
          }
          expect(norm(fromN0().slice(before))).toEqual(norm(want.delivered));
        }),
        { numRuns: 60, seed: 7 },
      );
      for (const r of ['open', 'bad-frame', 'bad-sender']) expect([...reasons]).toContain(r);
      const got = n2.received.length;
      await waitFor(() => n2.received.length > got + 2, 'good peer still talking');
      expect(n2.transport.isConnected('n1')).toBe(true);
    } finally {
      clearInterval(pump);
    }
  });
});
