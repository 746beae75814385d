/**
 * The client's outcome rule as a property: against a server that gives each attempt of a
 * proposal a scripted fate (applied, refused as not applied, refused as unknown, connection
 * dropped after the request arrived), a rejection says TM_UNKNOWN_OUTCOME exactly when
 * some attempt's fate left it undecided, and otherwise carries the last refusal's code;
 * every attempt carries the same clientId and seq.
 */
import fc from 'fast-check';
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { isTidemarkError } from '../../lib/errors';
import { Client } from '../../lib/net/client';
import { decodeClientRequest, encodeClientResponse, encodeHandshake, FrameDecoder, FrameTypes, PROTOCOL_VERSION } from '../../lib/net/codec';
import type { ClientRequest } from '../../lib/net/api';
import { HOST } from './net-helpers';

type Fate = 'ok' | 'busy' | 'not-leader' | 'invalid' | 'unknown' | 'drop';
const UNDECIDED: readonly Fate[] = ['unknown', 'drop'];
const REFUSALS: Record<'busy' | 'not-leader' | 'invalid' | 'unknown', [string, 'not-applied' | 'unknown']> = {
  busy: ['TM_BUSY', 'not-applied'],
  'not-leader': ['TM_NOT_LEADER', 'not-applied'],
  invalid: ['TM_INVALID_ARGUMENT', 'not-applied'],
  unknown: ['TM_UNKNOWN_OUTCOME', 'unknown'],
};

/** A bare server speaking the client protocol, answering the n-th request with fates[n]. */
async function scriptedServer(fates: readonly Fate[]): Promise<{ address: string; seen: Array<{ req: ClientRequest; fate: Fate }>; close: () => Promise<void> }> {
  const seen: Array<{ req: ClientRequest; fate: Fate }> = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    const dec = new FrameDecoder(1 << 20);
    let shaken = false;
    s.on('data', (chunk: Buffer) => {
      dec.pushEach(chunk, (f) => {
        if (!shaken) {
          shaken = f.type === FrameTypes.HANDSHAKE;
          s.write(encodeHandshake({ protocolVersion: PROTOCOL_VERSION, clusterId: 'c', role: 'server', nodeId: 's1' }));
          return true;
        }
        const req = decodeClientRequest(f.body);
        const fate = fates[seen.length] ?? 'busy';
        seen.push({ req, fate });
        if (fate === 'drop') {
          s.destroy();
          return false;
        }
        if (fate === 'ok') s.write(encodeClientResponse({ requestId: req.requestId, ok: true, index: seen.length, result: new Uint8Array(0) }));
        else s.write(encodeClientResponse({ requestId: req.requestId, ok: false, code: REFUSALS[fate][0], message: fate, outcome: REFUSALS[fate][1] }));
        return true;
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, HOST, () => r()));
  return {
    address: `${HOST}:${(server.address() as net.AddressInfo).port}`,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe('client outcome rule', () => {
  it('TM_UNKNOWN_OUTCOME iff some attempt was left undecided; otherwise the last refusal; same seq throughout', async () => {
    const fateArb = fc.constantFrom<Fate>('ok', 'busy', 'not-leader', 'invalid', 'unknown', 'drop');
    await fc.assert(
      fc.asyncProperty(fc.array(fateArb, { minLength: 1, maxLength: 6 }), async (fates) => {
        const srv = await scriptedServer(fates);
        // generous per-attempt timeout: every fate answers or drops at once, so no attempt times out
        const client = new Client({ nodes: [srv.address], clusterId: 'c', timeoutMs: 10_000, totalTimeoutMs: 60_000, maxAttempts: fates.length, backoffBaseMs: 1, backoffMaxMs: 2, seed: 3 });
        try {
          let outcome: string;
          try {
            await client.propose(Buffer.from('cmd'));
            outcome = 'ok';
          } catch (err) {
            if (!isTidemarkError(err)) throw err;
            outcome = err.code;
          }
          const applied = srv.seen.map((x) => x.fate);
          const undecided = applied.some((f) => UNDECIDED.includes(f));
          if (outcome === 'ok') expect(applied[applied.length - 1]).toBe('ok');
          else if (outcome === 'TM_UNKNOWN_OUTCOME') expect(undecided).toBe(true);
          else {
            expect(undecided).toBe(false);
            const last = applied[applied.length - 1];
            expect(outcome).toBe(REFUSALS[last as 'busy'][0]);
          }
          if (outcome !== 'ok' && outcome !== 'TM_UNKNOWN_OUTCOME') expect(outcome).not.toBe('TM_UNAVAILABLE');
          if (undecided && outcome !== 'ok') expect(outcome).toBe('TM_UNKNOWN_OUTCOME');
          expect(new Set(srv.seen.map((x) => `${x.req.clientId}/${x.req.seq}`)).size).toBe(1);
        } finally {
          await client.close();
          await srv.close();
        }
      }),
      { numRuns: 40, seed: 99 },
    );
  });
});
