/**
 * Hostile connections against a real node process (the leader of a three-node plain-TCP
 * cluster) while a real client keeps writing: a peer of another cluster, a wrong protocol
 * version, an unknown node id, a node id that must not dial this node, garbage, a truncated
 * frame, oversized frames (before and after a client handshake), a bad CRC, a peer message
 * before any handshake, a peer message on a client connection, a slowloris handshake, and
 * 2,000 idle connections. Each is closed by the node with the reason in its JSON log and in
 * `tidemark_connections_refused_total{reason}` of its /metrics; its RSS stays bounded; the
 * client's writes go on being acknowledged and every acknowledged write is there at the end.
 */
import * as fs from 'node:fs';
import type * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { sleep } from '../../lib/cli/local-cluster';
import { readAll, startLoad, verify } from '../../lib/cli/load';
import { encodeMessage, FRAME_HEADER_BYTES, PROTOCOL_VERSION } from '../../lib/net/codec';
import { clientHandshake, closedWith, connectRaw, loggedRefusals, peerHandshake, refusalMetrics, rssKiB, type Raw } from './edge';
import { eventually, testCluster } from './harness';

const CLUSTER = 'tidemark';
const IDLE = 2000;

/** A frame header claiming `length` body bytes (version 1, handshake type, CRC not checked before the body). */
function header(length: number): Buffer {
  const b = Buffer.alloc(FRAME_HEADER_BYTES);
  b.writeUInt32LE(length, 0);
  b.writeUInt8(PROTOCOL_VERSION, 4);
  b.writeUInt8(1, 5);
  return b;
}

describe('cluster processes: hostile connections', () => {
  it('closes each with a logged and counted reason; memory bounded; a real client keeps writing', { timeout: 120_000 }, async () => {
    const { cluster, kv } = await testCluster({ metrics: true });
    const leader = await cluster.waitForLeader(30_000);
    const target = leader.id;
    const port = cluster.endpoint(target).port;
    const pid = cluster.pid(target) as number;
    for (const id of cluster.ids()) await eventually(`${id} warns of plain TCP in its log`, () => fs.readFileSync(cluster.logFile(id), 'utf8').includes('PLAIN TCP'));

    const load = startLoad(kv([cluster.endpoint(target)]), 4, 'hostile');
    await eventually('first writes', () => load.acked.size >= 20, 20_000);
    await sleep(500);
    const rssBefore = rssKiB(pid);
    const tAttack = performance.now();

    // Each case: bytes to send on a fresh connection, and the reason the node must give.
    const other = cluster.ids().filter((id) => id !== target);
    const dialer = other.find((id) => id < target); // a peer id allowed to dial the target, if any
    const hs = peerHandshake(CLUSTER, dialer ?? 'n0');
    const badCrc = Buffer.from(hs);
    badCrc[6] = (badCrc[6] as number) ^ 0xff;
    const heartbeat = encodeMessage({ type: 'heartbeat', from: other[0] as string, to: target, clusterId: CLUSTER, generation: 1, commit: 0, readRound: 0 });
    const cases: Array<{ name: string; bytes: Buffer; reason: string }> = [
      { name: 'another cluster', bytes: peerHandshake('some-other-cluster', other[0] as string), reason: 'wrong-cluster' },
      { name: 'wrong protocol version', bytes: peerHandshake(CLUSTER, other[0] as string, PROTOCOL_VERSION + 7), reason: 'wrong-version' },
      { name: 'unknown node id', bytes: peerHandshake(CLUSTER, 'n9'), reason: 'unknown-node' },
      { name: 'garbage', bytes: Buffer.from('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'), reason: 'bad-frame' },
      { name: 'oversized frame before the handshake', bytes: header(100 * 1024 * 1024), reason: 'bad-frame' },
      { name: 'oversized client frame', bytes: Buffer.concat([clientHandshake(CLUSTER), header(64 * 1024 * 1024)]), reason: 'bad-frame' },
      { name: 'bad CRC', bytes: badCrc, reason: 'bad-frame' },
      { name: 'peer message before a handshake', bytes: heartbeat, reason: 'not-handshake' },
      { name: 'peer message on a client connection', bytes: Buffer.concat([clientHandshake(CLUSTER), heartbeat]), reason: 'not-allowed' },
      { name: 'truncated frame', bytes: hs.subarray(0, hs.length - 3), reason: 'handshake-timeout' },
    ];
    if (dialer === undefined) cases.push({ name: 'a node id that must not dial this node', bytes: peerHandshake(CLUSTER, other[0] as string), reason: 'wrong-direction' });
    const expected: Record<string, number> = {};
    const results = await Promise.all(
      cases.map(async (c) => {
        const raw = await connectRaw(port);
        raw.socket.write(c.bytes);
        expected[c.reason] = (expected[c.reason] ?? 0) + 1;
        return { name: c.name, want: c.reason, got: await closedWith(raw, 20_000) };
      }),
    );
    for (const r of results) expect(r.got, r.name).toBe(r.want);

    // Slowloris: a valid handshake, one byte every 300 ms: closed at the handshake deadline anyway.
    const slow = await connectRaw(port);
    const slowBytes = clientHandshake(CLUSTER);
    let i = 0;
    const drip = setInterval(() => {
      if (!slow.closed && i < slowBytes.length - 1) slow.socket.write(slowBytes.subarray(i, ++i));
    }, 300);
    try {
      expect(await closedWith(slow, 20_000)).toBe('handshake-timeout');
      expect(i, 'the slowloris was still sending when it was cut off').toBeLessThan(slowBytes.length - 1);
    } finally {
      clearInterval(drip);
    }
    expected['handshake-timeout'] = (expected['handshake-timeout'] ?? 0) + 1;

    // 2,000 idle connections: past maxConnections (1024) refused at once, the rest cut at the handshake deadline.
    const acksBeforeFlood = load.acked.size;
    const idle: Raw[] = [];
    for (let b = 0; b < IDLE; b += 200) idle.push(...(await Promise.all(Array.from({ length: Math.min(200, IDLE - b) }, () => connectRaw(port)))));
    const rssFlood = rssKiB(pid);
    await eventually('every idle connection closed by the node', () => idle.every((r) => r.closed), 30_000);
    for (const r of idle) (r.socket as net.Socket).destroy();
    const floodRefusals = loggedRefusals(cluster, target);
    expect((floodRefusals['too-many-connections'] ?? 0) + (floodRefusals['handshake-timeout'] ?? 0)).toBeGreaterThanOrEqual(IDLE + (expected['handshake-timeout'] ?? 0) - 64);
    expect(floodRefusals['too-many-connections'] ?? 0).toBeGreaterThan(0);

    // The client kept writing through all of it, after the flood too.
    const tFloodEnd = performance.now();
    await eventually('writes after the flood', () => load.ackTimes.some((t) => t > tFloodEnd + 200), 20_000);
    expect(load.acked.size).toBeGreaterThan(acksBeforeFlood);
    const duringAttack = load.ackTimes.filter((t) => t > tAttack).length;
    load.stop = true;
    await load.done;
    await sleep(500);
    const rssAfter = rssKiB(pid);

    const logged = loggedRefusals(cluster, target);
    const metrics = refusalMetrics(await cluster.metrics(target));
    for (const [reason, n] of Object.entries(expected)) {
      expect(logged[reason] ?? 0, `logged ${reason}`).toBeGreaterThanOrEqual(n);
      expect(metrics[reason] ?? 0, `metric ${reason}`).toBeGreaterThanOrEqual(n);
    }
    expect(metrics['too-many-connections'] ?? 0).toBe(logged['too-many-connections'] ?? 0);
    const read = await readAll(kv([cluster.endpoint(target)]), false, 'hostile');
    expect(verify(read, load).slice(0, 5)).toEqual([]);
    process.stdout.write(
      `[hostile] leader ${target} pid ${pid}: RSS ${Math.round(rssBefore / 1024)} MiB before, ${Math.round(rssFlood / 1024)} MiB with ${IDLE} idle connections, ${Math.round(rssAfter / 1024)} MiB after; ` +
        `${duringAttack} writes acknowledged during the attack (${load.acked.size} in all, failures ${JSON.stringify(Object.fromEntries(load.failures))}); refusals ${JSON.stringify(metrics)}\n`,
    );
    expect(rssFlood, 'RSS with 2,000 idle connections (generous bound)').toBeLessThan(rssBefore + 200 * 1024);
    expect(rssAfter, 'RSS after (generous bound)').toBeLessThan(rssBefore + 200 * 1024);
    expect(load.unknown.size).toBe(0);
  });
});
