/**
 * Helpers for the network tests: free loopback ports, a recording logger, polling with a
 * bounded wait, transports wired to recording handlers, and a raw socket that records
 * the frames and the close it gets.
 */
import * as net from 'node:net';
import type { Message, NodeId } from '../../lib/core/types';
import type { ClientRequest, ClientResponse, Endpoint, Logger } from '../../lib/net/api';
import { FrameDecoder, type Frame } from '../../lib/net/codec';
import { TcpTransport, type TcpTransportOptions } from '../../lib/net/transport';

export const HOST = '127.0.0.1';

/** `n` distinct ports that were free a moment ago on 127.0.0.1. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Server>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, HOST, () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

export interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: Record<string, unknown>;
  readonly msg: string | undefined;
}

/** A pino-compatible logger that keeps every line. */
export function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine['level']) => (obj: object, msg?: string) => {
    lines.push({ level, obj: obj as Record<string, unknown>, msg });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Polls `cond` every 10 ms until it holds; fails after `timeoutMs` (generous: the machine is loaded). */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A transport with handlers that record what arrives. */
export interface TestNode {
  readonly id: NodeId;
  readonly transport: TcpTransport;
  readonly received: Message[];
  readonly disconnects: NodeId[];
  readonly log: ReturnType<typeof recordingLogger>;
  onClient: (req: ClientRequest, reply: (res: ClientResponse) => void) => void;
}

export async function startNode(
  id: NodeId,
  port: number,
  peers: Record<NodeId, Endpoint>,
  extra: Partial<TcpTransportOptions> = {},
): Promise<TestNode> {
  const log = recordingLogger();
  const transport = new TcpTransport({ nodeId: id, clusterId: 'test-cluster', listen: { host: HOST, port }, peers, logger: log, seed: 42, ...extra });
  const node: TestNode = {
    id,
    transport,
    received: [],
    disconnects: [],
    log,
    onClient: (req, reply) => reply({ requestId: req.requestId, ok: false, code: 'TM_NOT_LEADER', message: 'test', outcome: 'not-applied' }),
  };
  await transport.start({
    onMessage: (m) => node.received.push(m),
    onPeerDisconnected: (p) => node.disconnects.push(p),
    onClientRequest: (req, reply) => node.onClient(req, reply),
  });
  return node;
}

export function heartbeat(from: NodeId, to: NodeId, commit: number, clusterId = 'test-cluster'): Message {
  return { type: 'heartbeat', from, to, clusterId, generation: 1, commit, readRound: 0 };
}

/** A raw TCP connection that records decoded frames, and whether and when the other side closed. */
export interface RawConn {
  readonly socket: net.Socket;
  readonly frames: Frame[];
  closed: boolean;
  readonly closedPromise: Promise<void>;
}

export async function rawConnect(port: number): Promise<RawConn> {
  const socket = net.connect({ host: HOST, port });
  const dec = new FrameDecoder(1 << 20);
  let resolveClosed!: () => void;
  const raw: RawConn = { socket, frames: [], closed: false, closedPromise: new Promise((r) => (resolveClosed = r)) };
  socket.on('data', (c: Buffer) => raw.frames.push(...dec.push(c).frames));
  socket.on('error', () => {});
  socket.on('close', () => {
    raw.closed = true;
    resolveClosed();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return raw;
}
