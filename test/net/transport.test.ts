/**
 * TcpTransport on 127.0.0.1: pairs and trios exchange messages over one connection per
 * pair, reconnect after a restart, report disconnects; hostile connections are closed with
 * a logged, counted reason while a good peer keeps exchanging messages.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeId } from '../../lib/core/types';
import {
  encodeFrame,
  encodeHandshake,
  encodeMessage,
  decodeReject,
  decodeClientResponse,
  decodeMessage,
  encodeClientRequest,
  FrameTypes,
  PROTOCOL_VERSION,
} from '../../lib/net/codec';
import { DISCONNECTED_QUEUE_BYTES_MAX, TcpTransport } from '../../lib/net/transport';
import { freePorts, heartbeat, HOST, rawConnect, startNode, waitFor, type RawConn, type TestNode } from './net-helpers';

const nodes: TestNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.transport.close()));
});

async function cluster(ids: NodeId[], extra: Parameters<typeof startNode>[3] = {}): Promise<{ nodes: TestNode[]; ports: Record<NodeId, number> }> {
  const list = await freePorts(ids.length);
  const ports: Record<NodeId, number> = {};
  ids.forEach((id, i) => (ports[id] = list[i]!));
  const started: TestNode[] = [];
  for (const id of ids) {
    const peers = Object.fromEntries(ids.filter((p) => p !== id).map((p) => [p, { host: HOST, port: ports[p]! }]));
    const n = await startNode(id, ports[id]!, peers, extra);
    nodes.push(n);
    started.push(n);
  }
  return { nodes: started, ports };
}

function peersOf(ids: NodeId[], me: NodeId, ports: Record<NodeId, number>) {
  return Object.fromEntries(ids.filter((p) => p !== me).map((p) => [p, { host: HOST, port: ports[p]! }]));
}

describe('TcpTransport between real sockets', () => {
  it('a trio exchanges messages in both directions over exactly one connection per pair', async () => {
    const { nodes: [a, b, c] } = await cluster(['n1', 'n2', 'n3']);
    for (const from of [a!, b!, c!]) {
      for (const to of [a!, b!, c!]) if (from !== to) for (let i = 1; i <= 50; i++) from.transport.send(heartbeat(from.id, to.id, i));
    }
    for (const n of [a!, b!, c!]) await waitFor(() => n.received.length === 100, `${n.id} to get 100 messages`);
    for (const n of [a!, b!, c!]) {
      for (const from of ['n1', 'n2', 'n3'].filter((x) => x !== n.id)) {
        // in order per sender
        expect(n.received.filter((m) => m.from === from).map((m) => (m.type === 'heartbeat' ? m.commit : -1))).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      }
    }
    // the smaller id dials: n1 accepts nothing, n2 accepts n1, n3 accepts n1 and n2
    expect(a!.transport.stats().connectionsAccepted).toBe(0);
    expect(b!.transport.stats().connectionsAccepted).toBe(1);
    expect(c!.transport.stats().connectionsAccepted).toBe(2);
    for (const n of [a!, b!, c!]) expect(n.transport.stats().peerConnections).toBe(2);
  });

  it('reconnects after the accepting peer restarts, and after the dialing peer restarts; reports each disconnect', async () => {
    const ids = ['n1', 'n2'];
    const { nodes: [a, b], ports } = await cluster(ids, { reconnectBaseMs: 10, reconnectMaxMs: 100 });
    a!.transport.send(heartbeat('n1', 'n2', 1));
    await waitFor(() => b!.received.length === 1, 'first message');

    // the acceptor (n2) goes away and comes back on the same port
    await b!.transport.close();
    nodes.splice(nodes.indexOf(b!), 1);
    await waitFor(() => a!.disconnects.includes('n2'), 'n1 to see n2 disconnect');
    const b2 = await startNode('n2', ports.n2!, peersOf(ids, 'n2', ports), { reconnectBaseMs: 10, reconnectMaxMs: 100 });
    nodes.push(b2);
    await waitFor(() => a!.transport.isConnected('n2'), 'n1 to reconnect to n2');
    a!.transport.send(heartbeat('n1', 'n2', 2));
    b2.transport.send(heartbeat('n2', 'n1', 3));
    await waitFor(() => b2.received.length === 1 && a!.received.length === 1, 'messages after restart');

    // the dialer (n1) goes away and comes back
    await a!.transport.close();
    nodes.splice(nodes.indexOf(a!), 1);
    await waitFor(() => b2.disconnects.includes('n1'), 'n2 to see n1 disconnect');
    const a2 = await startNode('n1', ports.n1!, peersOf(ids, 'n1', ports), { reconnectBaseMs: 10, reconnectMaxMs: 100 });
    nodes.push(a2);
    a2.transport.send(heartbeat('n1', 'n2', 4)); // queued while dialing, flushed on connect
    await waitFor(() => b2.received.length === 2, 'message queued during the dial');
    expect(b2.received[1]).toMatchObject({ type: 'heartbeat', commit: 4 });
  });

  it('a down peer: its send queue stays under the byte bound (oldest dropped) and send never throws', async () => {
    const [port, dead] = await freePorts(2);
    const n = await startNode('n1', port!, { n2: { host: HOST, port: dead! } }, { limits: { maxSendQueueBytes: 10_000 } });
    nodes.push(n);
    for (let i = 0; i < 1000; i++) n.transport.send(heartbeat('n1', 'n2', i));
    n.transport.send(heartbeat('n1', 'nobody', 1));
    const s = n.transport.stats();
    expect(s.peers.n2!.queuedBytes).toBeLessThanOrEqual(10_000);
    expect(s.peers.n2!.queuedBytes).toBeGreaterThan(9_000);
    expect(s.messagesDropped).toBeGreaterThan(800);
    // with the default (32 MiB) bound, a peer that is not connected keeps only the newest 1 MiB
    const [port2] = await freePorts(1);
    const m = await startNode('n1', port2!, { n2: { host: HOST, port: dead! } });
    nodes.push(m);
    for (let i = 0; i < 50_000; i++) m.transport.send(heartbeat('n1', 'n2', i));
    expect(m.transport.stats().peers.n2!.queuedBytes).toBeLessThanOrEqual(DISCONNECTED_QUEUE_BYTES_MAX);
    expect(m.transport.stats().peers.n2!.queuedBytes).toBeGreaterThan(DISCONNECTED_QUEUE_BYTES_MAX - 100);
  });

  it('refuses bad options with TM_INVALID_ARGUMENT', () => {
    expect(() => new TcpTransport({ nodeId: '', clusterId: 'c', listen: { host: HOST, port: 0 }, peers: {} })).toThrow(/TM_INVALID_ARGUMENT/);
    expect(() => new TcpTransport({ nodeId: 'a', clusterId: 'c', listen: { host: HOST, port: 0 }, peers: { a: { host: HOST, port: 1 } } })).toThrow(/TM_INVALID_ARGUMENT/);
    expect(() => new TcpTransport({ nodeId: 'a', clusterId: 'c', listen: { host: HOST, port: 70000 }, peers: {} })).toThrow(/TM_INVALID_ARGUMENT/);
    expect(() => new TcpTransport({ nodeId: 'a', clusterId: 'c', listen: { host: HOST, port: 0 }, peers: {}, limits: { maxConnections: 0 } })).toThrow(/TM_INVALID_ARGUMENT/);
  });
});

describe('hostile connections are closed with a logged reason while a good peer keeps talking', () => {
  const hs = (over: Partial<{ protocolVersion: number; clusterId: string; role: 'peer' | 'client'; nodeId: string }> = {}) =>
    encodeHandshake({ protocolVersion: PROTOCOL_VERSION, clusterId: 'test-cluster', role: 'peer', nodeId: 'n0', ...over });

  it('each hostile case, one after another, against a live node', async () => {
    // n2 knows n1 (real, dials n2), n0 (never started: its identity is used by the fake peer
    // below) and n3 (never started; n2 would dial it, so n3 must not dial n2).
    const [p1, p2, p0, p3] = await freePorts(4);
    const n2 = await startNode('n2', p2!, { n1: { host: HOST, port: p1! }, n0: { host: HOST, port: p0! }, n3: { host: HOST, port: p3! } }, { limits: { handshakeTimeoutMs: 1500, maxConnections: 12 } });
    nodes.push(n2);
    const n1 = await startNode('n1', p1!, { n2: { host: HOST, port: p2! } });
    nodes.push(n1);
    // the good peer sends a message every 5 ms throughout
    let sent = 0;
    const pump = setInterval(() => n1.transport.send(heartbeat('n1', 'n2', ++sent)), 5);
    try {
      await waitFor(() => n2.received.length > 5, 'good peer flowing');
      const oversized = Buffer.alloc(10);
      oversized.writeUInt32LE(1 << 30);
      oversized[4] = PROTOCOL_VERSION;
      oversized[5] = FrameTypes.HANDSHAKE;
      const badCrc = Buffer.from(hs());
      badCrc[badCrc.length - 1]! ^= 0xff;
      const cases: Array<{ name: string; reason: string; bytes: Buffer[] }> = [
        { name: 'wrong cluster id', reason: 'wrong-cluster', bytes: [hs({ clusterId: 'other' })] },
        { name: 'wrong protocol version (handshake field)', reason: 'wrong-version', bytes: [hs({ protocolVersion: 9 })] },
        { name: 'wrong protocol version (frame header)', reason: 'bad-frame', bytes: [Buffer.from([...hs().subarray(0, 4), 2, ...hs().subarray(5)])] },
        { name: 'unknown node id', reason: 'unknown-node', bytes: [hs({ nodeId: 'n9' })] },
        { name: 'peer that should be dialed, not dial', reason: 'wrong-direction', bytes: [hs({ nodeId: 'n3' })] },
        { name: 'garbage', reason: 'bad-frame', bytes: [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')] },
        { name: 'oversized length', reason: 'bad-frame', bytes: [oversized] },
        { name: 'bad CRC', reason: 'bad-frame', bytes: [badCrc] },
        { name: 'a message before the handshake', reason: 'not-handshake', bytes: [encodeMessage(heartbeat('n0', 'n2', 1))] },
        { name: 'a message from another sender', reason: 'bad-sender', bytes: [hs(), encodeMessage(heartbeat('n1', 'n2', 1))] },
        { name: 'a message of another cluster', reason: 'bad-sender', bytes: [hs(), encodeMessage(heartbeat('n0', 'n2', 1, 'other'))] },
        { name: 'a malformed body after a good handshake', reason: 'bad-frame', bytes: [hs(), encodeFrame(FrameTypes.HEARTBEAT, Buffer.from([1, 2, 3]))] },
        { name: 'a client sending a peer message', reason: 'not-allowed', bytes: [hs({ role: 'client', nodeId: '' }), encodeMessage(heartbeat('n0', 'n2', 1))] },
        { name: 'slowloris: 3 bytes, then nothing', reason: 'handshake-timeout', bytes: [hs().subarray(0, 3)] },
      ];
      for (const c of cases) {
        const before = n2.transport.stats().rejected[c.reason] ?? 0;
        const received = n2.received.length;
        const raw = await rawConnect(p2!);
        for (const b of c.bytes) raw.socket.write(b);
        await raw.closedPromise;
        expect(n2.transport.stats().rejected[c.reason], c.name).toBe(before + 1);
        expect(n2.log.lines.some((l) => l.level === 'warn' && l.obj.reason === c.reason), c.name).toBe(true);
        const reject = raw.frames.find((f) => f.type === FrameTypes.REJECT);
        expect(reject && decodeReject(reject.body).reason, c.name).toBe(c.reason);
        // the good peer is still connected and its messages still arrive
        await waitFor(() => n2.received.length > received + 2, `good peer after ${c.name}`);
        expect(n2.transport.isConnected('n1')).toBe(true);
      }
      expect(n2.received.every((m) => m.from === 'n1')).toBe(true);
      expect(n2.disconnects.filter((p) => p === 'n1')).toEqual([]); // n0 (the fake peer) did connect, then was thrown out

      // idle connections beyond the limit: the excess is refused at once, the idle ones time out
      const idle = await Promise.all(Array.from({ length: 20 }, () => rawConnect(p2!)));
      await waitFor(() => idle.every((r) => r.closed), 'every idle connection closed');
      const r = n2.transport.stats().rejected;
      expect(r['too-many-connections']).toBeGreaterThanOrEqual(9); // 12 slots, 1 taken by n1
      expect(r['handshake-timeout']).toBeGreaterThanOrEqual(2 + 1);
      const received = n2.received.length;
      await waitFor(() => n2.received.length > received + 2, 'good peer after the idle flood');
      expect(n2.transport.stats().connectionsOpen).toBe(1);
    } finally {
      clearInterval(pump);
    }
  });
});

describe('bounded queues and backpressure', () => {
  const hsAs = (nodeId: string, role: 'peer' | 'client' = 'peer') =>
    encodeHandshake({ protocolVersion: PROTOCOL_VERSION, clusterId: 'test-cluster', role, nodeId: role === 'client' ? '' : nodeId });

  it('a peer that stops reading: the queue stays under its bound, the oldest frames are dropped, the newest arrive in order', async () => {
    const [p2, p0] = await freePorts(2);
    const limit = 2 * 1024 * 1024;
    const n2 = await startNode('n2', p2!, { n0: { host: HOST, port: p0! } }, { limits: { maxSendQueueBytes: limit } });
    nodes.push(n2);
    const raw = await rawConnect(p2!);
    raw.socket.write(hsAs('n0'));
    await waitFor(() => raw.frames.length === 1 && n2.transport.isConnected('n0'), 'fake n0 connected');
    raw.socket.pause();
    const data = new Uint8Array(256 * 1024).fill(7);
    const total = 200;
    for (let i = 1; i <= total; i++) {
      n2.transport.send({ type: 'append', from: 'n2', to: 'n0', clusterId: 'test-cluster', generation: 1, prevIndex: i - 1, prevGeneration: 1, commit: i, entries: [{ index: i, generation: 1, kind: 'normal', data }] });
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5)); // let the socket push back
      expect(n2.transport.stats().peers.n0!.queuedBytes).toBeLessThanOrEqual(limit);
    }
    const dropped = n2.transport.stats().messagesDropped;
    expect(dropped).toBeGreaterThan(0);
    raw.socket.resume();
    await waitFor(() => raw.frames.length - 1 === total - dropped, 'every frame not dropped');
    const commits = raw.frames.slice(1).map((f) => f.body.length > 0 && (decodeMessageOf(f) as { commit: number }).commit);
    for (let i = 1; i < commits.length; i++) expect(commits[i]).toBeGreaterThan(commits[i - 1] as number);
    expect(commits[commits.length - 1]).toBe(total); // the newest is never the one dropped
  });

  it('incomplete frames over all connections past maxBufferedBytes: the connection that passes it is closed, the others are not', async () => {
    const [p] = await freePorts(1);
    const n = await startNode('n1', p!, {}, { limits: { maxClientFrameBytes: 1 << 20, maxBufferedBytes: 2_500_000 } });
    nodes.push(n);
    const header = Buffer.alloc(10);
    header.writeUInt32LE(1 << 20);
    header[4] = PROTOCOL_VERSION;
    header[5] = FrameTypes.CLIENT_REQUEST;
    const partial = Buffer.concat([header, Buffer.alloc(900_000, 1)]);
    const raws = [];
    for (let i = 0; i < 3; i++) {
      const raw = await rawConnect(p!);
      raw.socket.write(hsAs('', 'client'));
      await waitFor(() => raw.frames.length === 1, 'handshake answer');
      raw.socket.write(partial);
      raws.push(raw);
      if (i < 2) await waitFor(() => n.transport.stats().bufferedBytes >= (i + 1) * 900_000, `client ${i} buffered`);
    }
    await raws[2]!.closedPromise;
    expect(n.transport.stats().rejected['buffer-limit']).toBe(1);
    expect(raws[0]!.closed || raws[1]!.closed).toBe(false);
    expect(n.transport.stats().bufferedBytes).toBeLessThanOrEqual(2_500_000);
    for (const r of raws) r.socket.destroy();
    await Promise.all(raws.map((r) => r.closedPromise));
    await waitFor(() => n.transport.stats().bufferedBytes === 0, 'budget given back');
  });

  it('a client with more than maxClientInflight unanswered requests gets TM_BUSY (not applied) for the excess', async () => {
    const [p] = await freePorts(1);
    const n = await startNode('n1', p!, {}, { limits: { maxClientInflight: 2 } });
    nodes.push(n);
    n.onClient = () => {}; // never answers
    const raw = await rawConnect(p!);
    raw.socket.write(hsAs('', 'client'));
    for (let i = 1; i <= 3; i++) raw.socket.write(encodeClientRequest({ requestId: i, kind: 'propose', clientId: 'c', seq: i, payload: new Uint8Array(1) }));
    await waitFor(() => raw.frames.length === 2, 'handshake answer and one response');
    expect(decodeClientResponse(raw.frames[1]!.body)).toMatchObject({ requestId: 3, ok: false, code: 'TM_BUSY', outcome: 'not-applied' });
    raw.socket.destroy();
  });

  it('a client that never reads its responses is closed as a slow reader', async () => {
    const [p] = await freePorts(1);
    const n = await startNode('n1', p!, {}, { limits: { maxSendQueueBytes: 1024 * 1024 } });
    nodes.push(n);
    const big = new Uint8Array(64 * 1024);
    n.onClient = (req, reply) => reply({ requestId: req.requestId, ok: true, index: 1, result: big });
    const raw = await rawConnect(p!);
    raw.socket.pause();
    raw.socket.write(hsAs('', 'client'));
    for (let i = 1; i <= 1000 && !raw.closed; i++) {
      raw.socket.write(encodeClientRequest({ requestId: i, kind: 'read', clientId: '', seq: 0, payload: new Uint8Array(0) }));
      if (i % 50 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await waitFor(() => (n.transport.stats().rejected['slow-reader'] ?? 0) === 1, 'slow-reader refusal');
    raw.socket.destroy();
  });
});

function decodeMessageOf(f: { type: number; body: Uint8Array }) {
  return decodeMessage(f.type, f.body);
}

describe('frames right behind the handshake', () => {
  it('a big message in the same chunk as the handshake answer is read under the peer limit, not the handshake limit', async () => {
    const net = await import('node:net');
    const [p1, p2] = await freePorts(2);
    const append = encodeMessage({
      type: 'append', from: 'n2', to: 'n1', clusterId: 'test-cluster', generation: 1, prevIndex: 0, prevGeneration: 0, commit: 0,
      entries: [{ index: 1, generation: 1, kind: 'normal', data: new Uint8Array(100_000).fill(3) }],
    });
    const answer = Buffer.concat([encodeHandshake({ protocolVersion: PROTOCOL_VERSION, clusterId: 'test-cluster', role: 'peer', nodeId: 'n2' }), append]);
    const sockets: import('node:net').Socket[] = [];
    const fake = net.createServer((s) => {
      sockets.push(s);
      s.on('error', () => {});
      s.once('data', () => s.write(answer)); // one write: handshake answer and a 100 kB append
    });
    await new Promise<void>((r) => fake.listen(p2!, HOST, () => r()));
    try {
      const n1 = await startNode('n1', p1!, { n2: { host: HOST, port: p2! } });
      nodes.push(n1);
      await waitFor(() => n1.received.length === 1, 'the append');
      expect(n1.received[0]).toMatchObject({ type: 'append', from: 'n2' });
      expect(n1.transport.stats().rejected).toEqual({});
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => fake.close(() => r()));
    }
  });
});

describe('a flood of idle connections', () => {
  it('2,000 idle connections against a limit of 200: never more than 200 open, all closed, the good peer keeps talking', async () => {
    const [p1, p2] = await freePorts(2);
    const n2 = await startNode('n2', p2!, { n1: { host: HOST, port: p1! } }, { limits: { maxConnections: 200, handshakeTimeoutMs: 1000 } });
    nodes.push(n2);
    const n1 = await startNode('n1', p1!, { n2: { host: HOST, port: p2! } });
    nodes.push(n1);
    await waitFor(() => n2.transport.isConnected('n1'), 'good peer');
    let sent = 0;
    let maxOpen = 0;
    const pump = setInterval(() => {
      n1.transport.send(heartbeat('n1', 'n2', ++sent));
      maxOpen = Math.max(maxOpen, n2.transport.stats().connectionsOpen);
    }, 5);
    try {
      const idle: RawConn[] = [];
      for (let batch = 0; batch < 20; batch++) idle.push(...(await Promise.all(Array.from({ length: 100 }, () => rawConnect(p2!)))));
      await Promise.all(idle.map((r) => r.closedPromise));
      const r = n2.transport.stats().rejected;
      expect((r['too-many-connections'] ?? 0) + (r['handshake-timeout'] ?? 0)).toBe(2000);
      expect(r['too-many-connections']).toBeGreaterThan(0);
      expect(maxOpen).toBeLessThanOrEqual(200);
      const got = n2.received.length;
      await waitFor(() => n2.received.length > got + 2, 'good peer after the flood');
      expect(n2.transport.isConnected('n1')).toBe(true);
      expect(n2.transport.stats().connectionsOpen).toBe(1);
    } finally {
      clearInterval(pump);
    }
  });
});
