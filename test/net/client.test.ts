/**
 * Client against fake servers: TcpTransports whose onClientRequest is scripted. Redirects
 * are followed, retries reuse the seq, pipelined answers in any order reach their calls,
 * and a failed call says TM_UNKNOWN_OUTCOME exactly when a request was written and no
 * definite answer came back; otherwise a code that means "not applied".
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isTidemarkError } from '../../lib/errors';
import { Client, type ClientOptions } from '../../lib/index';
import type { ClientRequest, ClientResponse } from '../../lib/net/api';
import { freePorts, HOST, startNode, type TestNode } from './net-helpers';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((x) => x.close()));
});

interface Fake {
  readonly node: TestNode;
  readonly address: string;
  readonly requests: ClientRequest[];
  script: (req: ClientRequest, reply: (res: ClientResponse) => void, n: number) => void;
}

async function fakes(count: number, clusterId = 'test-cluster'): Promise<Fake[]> {
  const ports = await freePorts(count);
  const out: Fake[] = [];
  for (let i = 0; i < count; i++) {
    const node = await startNode(`s${i + 1}`, ports[i]!, {}, { clusterId });
    const fake: Fake = { node, address: `${HOST}:${ports[i]!}`, requests: [], script: () => {} };
    node.onClient = (req, reply) => {
      fake.requests.push(req);
      fake.script(req, reply, fake.requests.length);
    };
    open.push(node.transport);
    out.push(fake);
  }
  return out;
}

function client(opts: Partial<ClientOptions> & { nodes: string[] }): Client {
  // Generous timeouts (the machine is loaded); tests about timeouts set their own.
  const c = new Client({ clusterId: 'test-cluster', timeoutMs: 5000, totalTimeoutMs: 20_000, seed: 5, backoffBaseMs: 5, backoffMaxMs: 20, ...opts });
  open.push(c);
  return c;
}

const ok = (req: ClientRequest, index: number): ClientResponse => ({ requestId: req.requestId, ok: true, result: Buffer.from(req.payload).reverse(), index });
const no = (req: ClientRequest, code: string, outcome: 'not-applied' | 'unknown', extra: object = {}): ClientResponse => ({
  requestId: req.requestId, ok: false, code, message: `scripted ${code}`, outcome, ...extra,
});

async function rejection(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (isTidemarkError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a rejection');
}

describe('Client', () => {
  it('follows TM_NOT_LEADER redirects to the leader and then stays there', async () => {
    const [a, b, leader] = await fakes(3);
    for (const f of [a!, b!]) f.script = (req, reply) => reply(no(req, 'TM_NOT_LEADER', 'not-applied', { leaderId: 's3', leaderAddress: leader!.address }));
    leader!.script = (req, reply, n) => reply(ok(req, n));
    const c = client({ nodes: [a!.address, b!.address, leader!.address] });
    const r1 = await c.propose(Buffer.from('abc'));
    expect(Buffer.from(r1.result).toString()).toBe('cba');
    expect(r1.index).toBe(1);
    const before = a!.requests.length + b!.requests.length;
    expect(before).toBeLessThanOrEqual(1);
    for (let i = 0; i < 5; i++) await c.propose(Buffer.from(`x${i}`));
    expect(a!.requests.length + b!.requests.length).toBe(before);
    expect(leader!.requests.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(new Set(leader!.requests.map((r) => r.clientId))).toEqual(new Set([c.clientId]));
  });

  it('a retry after a lost answer or an unknown outcome reuses the same clientId and seq', async () => {
    const [s] = await fakes(1);
    s!.script = (req, reply, n) => {
      if (n === 1) return; // swallowed: the client times out after writing
      if (n === 2) return reply(no(req, 'TM_UNKNOWN_OUTCOME', 'unknown'));
      reply(ok(req, 10 + n));
    };
    const c = client({ nodes: [s!.address], timeoutMs: 300 });
    const r = await c.propose(Buffer.from('p'));
    // (a loaded machine may time out one more attempt: at least the three scripted ones)
    expect(s!.requests.length).toBeGreaterThanOrEqual(3);
    expect(r.index).toBeGreaterThanOrEqual(13);
    for (const q of s!.requests) expect([q.kind, q.clientId, q.seq]).toEqual(['propose', c.clientId, 1]);
    const seen = s!.requests.length;
    await c.propose(Buffer.from('q'));
    expect(s!.requests[seen]!.seq).toBe(2);
    expect(s!.requests[seen]!.firstUnackedSeq).toBe(2);
  });

  it('pipelines concurrent calls on one connection; answers in any order reach their callers', async () => {
    const [s] = await fakes(1);
    const held: Array<[ClientRequest, (r: ClientResponse) => void]> = [];
    s!.script = (req, reply) => {
      held.push([req, reply]);
      if (held.length === 100) for (const [q, rep] of held.reverse()) rep(ok(q, q.seq));
    };
    const c = client({ nodes: [s!.address] });
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => c.propose(Buffer.from(`cmd-${i}`))));
    results.forEach((r, i) => {
      expect(Buffer.from(r.result).toString()).toBe([...`cmd-${i}`].reverse().join(''));
      expect(r.index).toBe(i + 1);
    });
    expect(new Set(s!.requests.map((q) => q.seq)).size).toBe(100);
    expect(s!.node.transport.stats().connectionsAccepted).toBe(1);
  });

  it('TM_UNKNOWN_OUTCOME when requests were written and never answered', async () => {
    const [s] = await fakes(1);
    const c = client({ nodes: [s!.address], timeoutMs: 300, totalTimeoutMs: 800 });
    const e = await rejection(c.propose(Buffer.from('x')));
    expect(e.code).toBe('TM_UNKNOWN_OUTCOME');
    expect(s!.requests.length).toBeGreaterThanOrEqual(1);
  });

  it('TM_UNKNOWN_OUTCOME when the server closes the connection after the request arrived', async () => {
    const [s] = await fakes(1);
    s!.script = () => {
      void s!.node.transport.close();
    };
    const c = client({ nodes: [s!.address], timeoutMs: 300, totalTimeoutMs: 1000 });
    expect((await rejection(c.propose(Buffer.from('x')))).code).toBe('TM_UNKNOWN_OUTCOME');
  });

  it('an earlier unanswered attempt keeps the outcome unknown even if later ones are refused as not applied', async () => {
    const [s] = await fakes(1);
    s!.script = (req, reply, n) => {
      if (n > 1) reply(no(req, 'TM_BUSY', 'not-applied'));
    };
    const c = client({ nodes: [s!.address], timeoutMs: 300, maxAttempts: 4 });
    expect((await rejection(c.propose(Buffer.from('x')))).code).toBe('TM_UNKNOWN_OUTCOME');
    expect(s!.requests).toHaveLength(4);
  });

  it('not applied: every attempt refused gives the server code, a non-retryable code fails at once', async () => {
    const [s] = await fakes(1);
    s!.script = (req, reply) => reply(no(req, 'TM_BUSY', 'not-applied'));
    const c = client({ nodes: [s!.address], maxAttempts: 3 });
    expect((await rejection(c.propose(Buffer.from('x')))).code).toBe('TM_BUSY');
    expect(s!.requests).toHaveLength(3);
    s!.script = (req, reply) => reply(no(req, 'TM_INVALID_ARGUMENT', 'not-applied'));
    expect((await rejection(c.propose(Buffer.from('y')))).code).toBe('TM_INVALID_ARGUMENT');
    expect(s!.requests).toHaveLength(4);
  });

  it('not applied: no node reachable, or every node of another cluster, gives TM_UNAVAILABLE', async () => {
    const [dead1, dead2] = await freePorts(2);
    const c = client({ nodes: [`${HOST}:${dead1!}`, `${HOST}:${dead2!}`], timeoutMs: 300, totalTimeoutMs: 500 });
    expect((await rejection(c.propose(Buffer.from('x')))).code).toBe('TM_UNAVAILABLE');
    const [other] = await fakes(1, 'another-cluster');
    const c2 = client({ nodes: [other!.address], maxAttempts: 3 });
    const e = await rejection(c2.propose(Buffer.from('x')));
    expect(e.code).toBe('TM_UNAVAILABLE');
    expect(e.message).toMatch(/wrong-cluster/);
    expect(other!.requests).toHaveLength(0);
  });

  it('reads are retried but never report an unknown outcome', async () => {
    const [s] = await fakes(1);
    const c = client({ nodes: [s!.address], timeoutMs: 300, totalTimeoutMs: 700 });
    expect((await rejection(c.read(Buffer.from('k')))).code).toBe('TM_UNAVAILABLE');
    s!.script = (req, reply) => reply(ok(req, 7));
    const r = await c.read(Buffer.from('k'), { mode: 'follower' });
    expect(r.index).toBe(7);
    const last = s!.requests[s!.requests.length - 1]!;
    expect(last).toMatchObject({ kind: 'read', readMode: 'follower', seq: 0, clientId: '' });
  });

  it('close(): a written proposal rejects TM_UNKNOWN_OUTCOME; later calls TM_CLOSED', async () => {
    const [s] = await fakes(1);
    const c = client({ nodes: [s!.address] });
    const p = rejection(c.propose(Buffer.from('x')));
    while (s!.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    await c.close();
    expect((await p).code).toBe('TM_UNKNOWN_OUTCOME');
    expect((await rejection(c.propose(Buffer.from('y')))).code).toBe('TM_CLOSED');
  });

  it('status(node) returns the JSON document of that node', async () => {
    const [a, b] = await fakes(2);
    for (const f of [a!, b!]) f.script = (req, reply) => reply({ requestId: req.requestId, ok: true, index: 0, result: Buffer.from(JSON.stringify({ node: f.node.id, role: 'follower' })) });
    const c = client({ nodes: [a!.address, b!.address] });
    expect(await c.status(b!.address)).toEqual({ node: 's2', role: 'follower' });
    expect(await c.status(a!.address)).toEqual({ node: 's1', role: 'follower' });
  });

  it('bad options and arguments: TM_INVALID_ARGUMENT before anything is sent', async () => {
    expect(() => new Client({ nodes: [], clusterId: 'c' })).toThrow(/TM_INVALID_ARGUMENT/);
    expect(() => new Client({ nodes: ['nohost'], clusterId: 'c' })).toThrow(/TM_INVALID_ARGUMENT/);
    expect(() => new Client({ nodes: ['h:1'], clusterId: '' })).toThrow(/TM_INVALID_ARGUMENT/);
    expect(() => new Client({ nodes: ['h:1'], clusterId: 'c', timeoutMs: 0 })).toThrow(/TM_INVALID_ARGUMENT/);
    const c = client({ nodes: ['127.0.0.1:1'] });
    expect((await rejection(c.propose('x' as unknown as Uint8Array))).code).toBe('TM_INVALID_ARGUMENT');
  });
});
