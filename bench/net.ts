/**
 * The wire layer against baselines in the same run:
 *
 *   npx tsx bench/net.ts [-- --rounds 5]
 *
 * 1. codec: encode + decode of an append of 64 entries x 128 B, tidemark's binary codec
 *    against JSON (entry data as base64), the obvious alternative. Same messages, median
 *    of `rounds` interleaved rounds.
 * 2. one-way throughput on 127.0.0.1: 100,000 heartbeats from one TcpTransport to another,
 *    sent 1,000 per event-loop turn, until the last one is delivered; baseline: the same
 *    frames, pre-encoded, written on a bare net.Socket and split by a FrameDecoder on the
 *    other end (kernel + framing, no encoding, no validation, no queue).
 * 3. round trip on 127.0.0.1: 5,000 sequential heartbeat → heartbeat-response exchanges
 *    between two TcpTransports (p50, p99), against the same ping-pong on bare sockets.
 *
 * 4. Client calls against a TcpTransport that answers at once (no cluster behind it):
 *    calls/s at 1, 16 and 256 concurrent calls on one Client; the client-side and
 *    server-side cost of the wire layer a real cluster adds its consensus to. At 1 call
 *    the bare-socket ping-pong of (3) is the baseline.
 *
 * Numbers are only meaningful as the ratios in the same run (the machine is shared).
 */
import * as net from 'node:net';
import type { AppendMessage, Message } from '../lib/core/types';
import { decodeMessage, encodeMessage, FRAME_HEADER_BYTES, FrameDecoder } from '../lib/net/codec';
import { TcpTransport } from '../lib/net/transport';
import { Client } from '../lib/net/client';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}
const ROUNDS = option('rounds', 5);
const HOST = '127.0.0.1';
let sink = 0;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
}

// ---- 1. codec ------------------------------------------------------------------------
function codecBench(): void {
  const entries = Array.from({ length: 64 }, (_, i) => ({ index: 1000 + i, generation: 3, kind: 'normal' as const, data: new Uint8Array(128).fill(i) }));
  const m: AppendMessage = { type: 'append', from: 'n1', to: 'n2', clusterId: 'bench', generation: 3, prevIndex: 999, prevGeneration: 3, commit: 990, entries };
  const binary = (): void => {
    const f = encodeMessage(m);
    const d = decodeMessage(f[5]!, f.subarray(FRAME_HEADER_BYTES)) as AppendMessage;
    sink += d.entries.length;
  };
  const json = (): void => {
    const s = JSON.stringify({ ...m, entries: m.entries.map((e) => ({ ...e, data: Buffer.from(e.data).toString('base64') })) });
    const d = JSON.parse(s) as { entries: Array<{ data: string }> };
    const back = d.entries.map((e) => Buffer.from(e.data, 'base64'));
    sink += back.length;
  };
  const time = (fn: () => void, ms: number): number => {
    let n = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {
      for (let i = 0; i < 100; i++) fn();
      n += 100;
    }
    return ((performance.now() - t0) * 1e3) / n; // µs per op
  };
  time(binary, 200);
  time(json, 200);
  const b: number[] = [];
  const j: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    b.push(time(binary, 300));
    j.push(time(json, 300));
  }
  const bm = median(b);
  const jm = median(j);
  console.log(`codec, append of 64 x 128 B (encode + decode): binary ${bm.toFixed(1)} µs, JSON+base64 ${jm.toFixed(1)} µs, JSON/binary = ${(jm / bm).toFixed(1)}x; wire bytes ${encodeMessage(m).length}`);
}

// ---- transports ----------------------------------------------------------------------
async function pair(): Promise<{ a: TcpTransport; b: TcpTransport; onB: (fn: (m: Message) => void) => void; onA: (fn: (m: Message) => void) => void }> {
  let toB: (m: Message) => void = () => {};
  let toA: (m: Message) => void = () => {};
  const b = new TcpTransport({ nodeId: 'n2', clusterId: 'bench', listen: { host: HOST, port: 0 }, peers: { n1: { host: HOST, port: 1 } } });
  await b.start({ onMessage: (m) => toB(m), onPeerDisconnected: () => {}, onClientRequest: () => {} });
  const a = new TcpTransport({ nodeId: 'n1', clusterId: 'bench', listen: { host: HOST, port: 0 }, peers: { n2: b.address() } });
  await a.start({ onMessage: (m) => toA(m), onPeerDisconnected: () => {}, onClientRequest: () => {} });
  while (!a.isConnected('n2') || !b.isConnected('n1')) await new Promise((r) => setTimeout(r, 5));
  return { a, b, onB: (fn) => (toB = fn), onA: (fn) => (toA = fn) };
}

async function rawPair(): Promise<{ client: net.Socket; server: net.Socket; close: () => Promise<void> }> {
  let accepted!: (s: net.Socket) => void;
  const got = new Promise<net.Socket>((r) => (accepted = r));
  const srv = net.createServer({ noDelay: true }, (s) => accepted(s));
  await new Promise<void>((r) => srv.listen(0, HOST, () => r()));
  const client = net.connect({ host: HOST, port: (srv.address() as net.AddressInfo).port, noDelay: true });
  const server = await got;
  return {
    client,
    server,
    close: async () => {
      client.destroy();
      server.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
}

const hb = (i: number): Message => ({ type: 'heartbeat', from: 'n1', to: 'n2', clusterId: 'bench', generation: 1, commit: i, readRound: 0 });
const N = 100_000;
const PER_TURN = 1000;

async function throughputTransport(): Promise<number> {
  const { a, b, onB } = await pair();
  let got = 0;
  const done = new Promise<void>((r) => onB(() => (++got === N ? r() : undefined)));
  const t0 = performance.now();
  for (let i = 0; i < N; i += PER_TURN) {
    for (let k = 0; k < PER_TURN; k++) a.send(hb(i + k));
    await new Promise((r) => setImmediate(r));
  }
  await done;
  const s = (performance.now() - t0) / 1e3;
  await a.close();
  await b.close();
  return N / s;
}

async function throughputRaw(): Promise<number> {
  const { client, server, close } = await rawPair();
  const frames = Array.from({ length: PER_TURN }, (_, k) => encodeMessage(hb(k)));
  const dec = new FrameDecoder(1 << 20);
  let got = 0;
  const done = new Promise<void>((r) => server.on('data', (c: Buffer) => {
    got += dec.push(c).frames.length;
    if (got === N) r();
  }));
  const t0 = performance.now();
  for (let i = 0; i < N; i += PER_TURN) {
    client.cork();
    for (const f of frames) client.write(f);
    client.uncork();
    await new Promise((r) => setImmediate(r));
  }
  await done;
  const s = (performance.now() - t0) / 1e3;
  await close();
  return N / s;
}

const RTT_N = 5000;
async function rttTransport(): Promise<number[]> {
  const { a, b, onA, onB } = await pair();
  onB((m) => b.send({ type: 'heartbeat-response', from: 'n2', to: 'n1', clusterId: 'bench', generation: 1, readRound: (m as { commit: number }).commit }));
  const lat: number[] = [];
  for (let i = 0; i < RTT_N; i++) {
    const t0 = performance.now();
    await new Promise<void>((r) => {
      onA(() => r());
      a.send(hb(i));
    });
    lat.push((performance.now() - t0) * 1e3);
  }
  await a.close();
  await b.close();
  return lat;
}

async function rttRaw(): Promise<number[]> {
  const { client, server, close } = await rawPair();
  const ping = encodeMessage(hb(1));
  const pong = encodeMessage({ type: 'heartbeat-response', from: 'n2', to: 'n1', clusterId: 'bench', generation: 1, readRound: 1 });
  const ds = new FrameDecoder(1 << 20);
  server.on('data', (c: Buffer) => {
    for (let k = ds.push(c).frames.length; k > 0; k--) server.write(pong);
  });
  const dc = new FrameDecoder(1 << 20);
  let wake: () => void = () => {};
  client.on('data', (c: Buffer) => {
    if (dc.push(c).frames.length > 0) wake();
  });
  const lat: number[] = [];
  for (let i = 0; i < RTT_N; i++) {
    const t0 = performance.now();
    await new Promise<void>((r) => {
      wake = r;
      client.write(ping);
    });
    lat.push((performance.now() - t0) * 1e3);
  }
  await close();
  return lat;
}

async function main(): Promise<void> {
  codecBench();
  const t: number[] = [];
  const r: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    t.push(await throughputTransport());
    r.push(await throughputRaw());
  }
  console.log(`one-way heartbeats: TcpTransport ${Math.round(median(t)).toLocaleString('en')}/s, bare socket ${Math.round(median(r)).toLocaleString('en')}/s, transport/bare = ${(median(t) / median(r)).toFixed(2)}`);
  const lt: number[] = [];
  const lr: number[] = [];
  for (let i = 0; i < Math.min(ROUNDS, 3); i++) {
    lt.push(...(await rttTransport()));
    lr.push(...(await rttRaw()));
  }
  console.log(`round trip: TcpTransport p50 ${pct(lt, 0.5).toFixed(0)} µs p99 ${pct(lt, 0.99).toFixed(0)} µs; bare socket p50 ${pct(lr, 0.5).toFixed(0)} µs p99 ${pct(lr, 0.99).toFixed(0)} µs; p50 ratio ${(pct(lt, 0.5) / pct(lr, 0.5)).toFixed(2)}`);
  await clientBench(pct(lr, 0.5));
  if (sink === -1) console.log(sink);
}

async function clientBench(bareRttUs: number): Promise<void> {
  const t = new TcpTransport({ nodeId: 's', clusterId: 'bench', listen: { host: HOST, port: 0 }, peers: {} });
  await t.start({ onMessage() {}, onPeerDisconnected() {}, onClientRequest: (req, reply) => reply({ requestId: req.requestId, ok: true, index: req.seq, result: req.payload }) });
  const c = new Client({ nodes: [`${HOST}:${t.address().port}`], clusterId: 'bench' });
  const payload = new Uint8Array(128);
  const out: string[] = [];
  for (const conc of [1, 16, 256]) {
    const n = conc === 1 ? 10_000 : 50_000;
    let issued = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: conc }, async () => {
      while (issued < n) {
        issued++;
        await c.propose(payload);
      }
    }));
    const perS = n / ((performance.now() - t0) / 1e3);
    out.push(`${conc}: ${Math.round(perS).toLocaleString('en')}/s`);
    if (conc === 1) out.push(`(mean ${(1e6 / perS).toFixed(0)} µs per call vs bare ping-pong p50 ${bareRttUs.toFixed(0)} µs)`);
  }
  console.log(`Client propose of 128 B against an answering TcpTransport, calls at once ${out.join(', ')}`);
  await c.close();
  await t.close();
}

void main();
