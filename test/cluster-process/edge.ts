/**
 * Helpers of the network-edge tests against real node processes: raw (plain or TLS)
 * connections that record the frames they get and the close, the refusals a node logged
 * (its JSON log lines) and counted (its Prometheus text), its RSS from /proc.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { LocalCluster } from '../../lib/cli/local-cluster';
import { encodeKvCommand } from '../../lib/cluster/kv';
import type { ClientResponse } from '../../lib/net/api';
import { decodeClientResponse, decodeReject, encodeClientRequest, encodeHandshake, FrameDecoder, FrameTypes, PROTOCOL_VERSION, type Frame } from '../../lib/net/codec';

/** A raw connection: frames received, whether and when the other side closed. */
export interface Raw {
  readonly socket: net.Socket;
  readonly frames: Frame[];
  closed: boolean;
  readonly closedPromise: Promise<void>;
}

/** Connects to 127.0.0.1:`port` (with `tlsOptions`: over TLS, not checking the host name). */
export async function connectRaw(port: number, tlsOptions?: tls.ConnectionOptions): Promise<Raw> {
  const socket: net.Socket = tlsOptions === undefined ? net.connect({ host: '127.0.0.1', port }) : tls.connect({ host: '127.0.0.1', port, checkServerIdentity: () => undefined, ...tlsOptions });
  const dec = new FrameDecoder(1 << 20);
  let resolveClosed!: () => void;
  const raw: Raw = { socket, frames: [], closed: false, closedPromise: new Promise((r) => (resolveClosed = r)) };
  socket.on('data', (c: Buffer) => {
    try {
      raw.frames.push(...dec.push(c).frames);
    } catch {
      /* not ours to judge */
    }
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    raw.closed = true;
    resolveClosed();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once(tlsOptions === undefined ? 'connect' : 'secureConnect', resolve);
    socket.once('error', reject);
    socket.once('close', () => resolve()); // refused during the TLS handshake: closed
  });
  return raw;
}

/** Waits (bounded) for the node to close `raw`; returns the REJECT reason it sent, if any. */
export async function closedWith(raw: Raw, timeoutMs = 15_000): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([raw.closedPromise, new Promise<void>((_, reject) => (timer = setTimeout(() => reject(new Error(`connection not closed within ${timeoutMs} ms`)), timeoutMs)))]);
  clearTimeout(timer);
  const rej = raw.frames.find((f) => f.type === FrameTypes.REJECT);
  return rej === undefined ? undefined : decodeReject(rej.body).reason;
}

/** A peer handshake frame. */
export function peerHandshake(clusterId: string, nodeId: string, protocolVersion = PROTOCOL_VERSION): Buffer {
  return encodeHandshake({ protocolVersion, clusterId, role: 'peer', nodeId });
}

/** A client handshake frame. */
export function clientHandshake(clusterId: string): Buffer {
  return encodeHandshake({ protocolVersion: PROTOCOL_VERSION, clusterId, role: 'client', nodeId: '' });
}

/** The reasons of the connections the node logged as closed or refused, counted. */
export function loggedRefusals(cluster: LocalCluster, id: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of fs.readFileSync(cluster.logFile(id), 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    let o: { msg?: string; reason?: unknown };
    try {
      o = JSON.parse(line) as typeof o;
    } catch {
      continue;
    }
    if (typeof o.reason === 'string' && /connection (closed|refused)/.test(o.msg ?? '')) out[o.reason] = (out[o.reason] ?? 0) + 1;
  }
  return out;
}

/** `tidemark_connections_refused_total{reason=...}` from a node's Prometheus text. */
export function refusalMetrics(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^tidemark_connections_refused_total\{reason="([^"]+)"\} (\d+)$/gm)) out[m[1] as string] = Number(m[2]);
  return out;
}

/** One gauge/counter without labels from Prometheus text. */
export function metricValue(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m === null ? undefined : Number(m[1]);
}

/** The process's resident set size in KiB (VmRSS of /proc/PID/status). */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** One answered request of a {@link RawClient}. */
export interface RawAnswer {
  readonly res: ClientResponse;
  /** performance.now() when sent and when answered. */
  readonly sentAt: number;
  readonly answeredAt: number;
}

/**
 * A client connection speaking the wire protocol by hand: pipelined proposals with no
 * session (clientId ''), every answer kept with its latency. Cheap enough to offer a node far
 * more than it can commit from one test process.
 */
export class RawClient {
  readonly answers: RawAnswer[] = [];
  private readonly sent = new Map<number, number>();
  private nextId = 1;
  private readonly dec = new FrameDecoder(1 << 24);
  private constructor(readonly raw: Raw) {
    raw.socket.removeAllListeners('data');
    raw.socket.on('data', (c: Buffer) => {
      const now = performance.now();
      for (const f of this.dec.push(c).frames) {
        if (f.type !== FrameTypes.CLIENT_RESPONSE) continue;
        const res = decodeClientResponse(f.body);
        const sentAt = this.sent.get(res.requestId);
        if (sentAt === undefined) continue;
        this.sent.delete(res.requestId);
        this.answers.push({ res, sentAt, answeredAt: now });
      }
    });
  }

  static async open(port: number, clusterId: string): Promise<RawClient> {
    const raw = await connectRaw(port);
    raw.socket.write(clientHandshake(clusterId));
    return new RawClient(raw);
  }

  /** Sends `n` proposals (KV puts of `key` + a counter) in one write. */
  propose(n: number, key: string, valueBytes = 64): void {
    const frames: Buffer[] = [];
    const now = performance.now();
    for (let i = 0; i < n; i++) {
      const requestId = this.nextId++;
      const payload = encodeKvCommand({ op: 'put', key: `${key}/${requestId}`, value: new Uint8Array(valueBytes).fill(requestId & 0xff) });
      frames.push(encodeClientRequest({ requestId, kind: 'propose', clientId: '', seq: 0, payload }));
      this.sent.set(requestId, now);
    }
    this.raw.socket.write(Buffer.concat(frames));
  }

  /** Requests sent and not answered yet. */
  get outstanding(): number {
    return this.sent.size;
  }

  close(): void {
    this.raw.socket.destroy();
  }
}
