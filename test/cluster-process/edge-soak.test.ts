/**
 * Soak of the network edge of live node processes: for a bounded time
 * (TIDEMARK_EDGE_SOAK_MS, default 20 s) eight attackers connect to random nodes of a
 * three-node cluster over and over and send random streams: garbage, frames from net's
 * fast-check generators (messages, handshakes, client requests) as they are or with bytes
 * flipped, cut short or with a bogus length, before or after a client handshake, with small
 * random pauses. Meanwhile a real client keeps writing. After: no node process died or
 * restarted, every acknowledged write is there, writes were acknowledged until the end, and
 * each node's RSS stayed flat (generous bound). Seeded (TIDEMARK_SEED) and printed.
 */
import fc from 'fast-check';
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sleep } from '../../lib/cli/local-cluster';
import { readAll, startLoad, verify } from '../../lib/cli/load';
import { encodeClientRequest, encodeHandshake, encodeMessage } from '../../lib/net/codec';
import { Rng } from '../helpers';
import { clientRequestArb, handshakeArb, messageArb } from '../net/arbitraries';
import { clientHandshake, connectRaw, refusalMetrics, rssKiB } from './edge';
import { eventually, testCluster, testSeed } from './harness';

const SOAK_MS = Number(process.env.TIDEMARK_EDGE_SOAK_MS ?? 20_000);
const ATTACKERS = 8;

describe('cluster processes: edge soak', () => {
  it(`random and mutated frames for ${SOAK_MS / 1000} s: no crash, no lost acknowledged write, RSS flat`, { timeout: SOAK_MS + 90_000 }, async () => {
    const seed = testSeed(13);
    const rng = new Rng(seed);
    const { cluster, kv } = await testCluster({ metrics: true });
    const leader = await cluster.waitForLeader(30_000);
    const pids = Object.fromEntries(cluster.ids().map((id) => [id, cluster.pid(id) as number]));

    // A pool of frames from net's generators, seeded.
    const pool: Buffer[] = [
      ...fc.sample(messageArb, { seed, numRuns: 300 }).map((m) => encodeMessage({ ...m, clusterId: rng.next32() % 2 === 0 ? 'tidemark' : m.clusterId })),
      ...fc.sample(handshakeArb, { seed: seed + 1, numRuns: 200 }).map((h) => encodeHandshake(h)),
      ...fc.sample(clientRequestArb, { seed: seed + 2, numRuns: 300 }).map((r) => encodeClientRequest(r)),
    ];
    const pick = () => pool[rng.next32() % pool.length] as Buffer;
    const mutate = (f: Buffer): Buffer => {
      const b = Buffer.from(f);
      switch (rng.next32() % 5) {
        case 0:
          return b; // as it is
        case 1: {
          for (let n = 1 + (rng.next32() % 3); n > 0; n--) {
            const at = rng.next32() % b.length;
            b[at] = (b[at] as number) ^ (1 + (rng.next32() % 255));
          }
          return b;
        }
        case 2:
          return b.subarray(0, rng.next32() % b.length); // cut short
        case 3:
          b.writeUInt32LE(rng.next32(), 0); // bogus length
          return b;
        default: {
          const g = Buffer.alloc(1 + (rng.next32() % 256));
          for (let i = 0; i < g.length; i++) g[i] = rng.next32() & 0xff;
          return g; // garbage
        }
      }
    };

    const load = startLoad(kv([cluster.endpoint(leader.id)]), 4, 'soak');
    await eventually('first writes', () => load.acked.size >= 10, 20_000);
    await sleep(1000);
    const rssStart = Object.fromEntries(cluster.ids().map((id) => [id, rssKiB(pids[id] as number)]));
    const rssMax = { ...rssStart };

    let connections = 0;
    let frames = 0;
    const tEnd = performance.now() + SOAK_MS;
    const attacker = async () => {
      while (performance.now() < tEnd) {
        const id = cluster.ids()[rng.next32() % 3] as string;
        let raw;
        try {
          raw = await connectRaw(cluster.endpoint(id).port);
        } catch {
          await sleep(50); // e.g. too many connections at once
          continue;
        }
        connections++;
        if (rng.next32() % 2 === 0) raw.socket.write(clientHandshake('tidemark'));
        for (let n = 1 + (rng.next32() % 20); n > 0 && !raw.closed; n--) {
          raw.socket.write(mutate(pick()));
          frames++;
          if (rng.next32() % 4 === 0) await sleep(rng.next32() % 30);
        }
        await Promise.race([raw.closedPromise, sleep(rng.next32() % 200)]);
        raw.socket.destroy();
      }
    };
    const sampler = (async () => {
      while (performance.now() < tEnd) {
        await sleep(1000);
        for (const id of cluster.ids()) rssMax[id] = Math.max(rssMax[id] as number, rssKiB(pids[id] as number));
      }
    })();
    await Promise.all([...Array.from({ length: ATTACKERS }, attacker), sampler]);
    const tStop = performance.now();
    await eventually('writes after the soak', () => load.ackTimes.some((t) => t > tStop), 20_000);
    const lastQuarter = load.ackTimes.filter((t) => t > tEnd - SOAK_MS / 4 && t <= tEnd).length;
    load.stop = true;
    await load.done;

    for (const id of cluster.ids()) {
      expect(cluster.pid(id), `${id} still the same process`).toBe(pids[id]);
      expect(fs.readFileSync(cluster.logFile(id), 'utf8')).not.toMatch(/# exit|"level":50/);
    }
    const read = await readAll(kv([cluster.endpoint(leader.id)]), false, 'soak');
    expect(verify(read, load).slice(0, 5)).toEqual([]);
    const refused: Record<string, number> = {};
    for (const id of cluster.ids()) for (const [r, n] of Object.entries(refusalMetrics(await cluster.metrics(id)))) refused[r] = (refused[r] ?? 0) + n;
    const rssEnd = Object.fromEntries(cluster.ids().map((id) => [id, rssKiB(pids[id] as number)]));
    const mib = (o: Record<string, number>) => cluster.ids().map((id) => `${id} ${Math.round((o[id] as number) / 1024)}`).join(', ');
    process.stdout.write(
      `[edge-soak] seed ${seed}, ${SOAK_MS / 1000} s: ${connections} connections, ${frames} frames; refusals ${JSON.stringify(refused)}; ` +
        `client ${load.acked.size} acked (${lastQuarter} in the last quarter), ${load.unknown.size} unknown, failures ${JSON.stringify(Object.fromEntries(load.failures))}; ` +
        `RSS MiB start [${mib(rssStart)}] max [${mib(rssMax)}] end [${mib(rssEnd)}]\n`,
    );
    expect(connections).toBeGreaterThan(100);
    expect(lastQuarter, 'writes acknowledged in the last quarter of the soak').toBeGreaterThan(0);
    for (const id of cluster.ids()) expect(rssMax[id] as number, `${id} RSS (generous bound)`).toBeLessThan((rssStart[id] as number) + 150 * 1024);
  });
});
