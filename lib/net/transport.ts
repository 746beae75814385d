/**
 * {@link TcpTransport}: a node's network endpoint over TCP. One listening socket serves
 * both peers and clients (the handshake says which); one connection per peer pair
 * carries messages both ways.
 *
 * ## One connection per pair
 *
 * Of two peers, the one whose node id sorts first (JavaScript string order) dials; the
 * other only accepts, and refuses a peer handshake from a node whose id sorts after its
 * own (`wrong-direction`). If a second connection from the same peer completes its
 * handshake (the peer restarted and the old socket is not yet known dead), the newest
 * one wins and the old one is closed: the dialer holds at most one connection, so the
 * newest is its current one.
 *
 * ## Sending
 *
 * {@link TcpTransport.send} encodes at once and queues the frame for its peer. Frames
 * queued in one turn of the event loop are written together under `cork()` (one
 * `writev`). When 1 MiB is buffered in the socket (Node's buffer, beyond the kernel's)
 * the transport waits for `drain`; meanwhile frames wait in the queue, which is bounded by
 * `limits.maxSendQueueBytes`: past it the OLDEST frames are dropped (Raft resends). While
 * a peer is not connected its queue keeps only the newest 1 MiB
 * ({@link DISCONNECTED_QUEUE_BYTES_MAX}) and is flushed on connect; a connection that
 * closes takes its queue with it.
 *
 * ## Refusals
 *
 * A connection is closed, with a warning through the logger and a count in
 * {@link TcpTransport.stats}`().rejected[reason]`, for: `too-many-connections`,
 * `handshake-timeout`, `bad-frame` (bad CRC, unknown version or type, oversized length,
 * malformed body), `not-handshake` (first frame is something else), `wrong-version`,
 * `wrong-cluster`, `unknown-node`, `wrong-direction`, `bad-sender` (a message whose
 * `from`, `to` or `clusterId` does not match the handshake), `not-allowed` (a frame the
 * connection's role does not allow), `slow-reader` (a client whose unread responses pass
 * the send-queue bound), `buffer-limit` (incomplete frames over all connections past
 * `limits.maxBufferedBytes`), and `rejected-by-peer` / `peer-mismatch` on the dialing side.
 * With TLS ({@link TransportTls}) also: `tls-error` (the TLS handshake failed or timed
 * out), `tls-unauthorized` (no certificate from the cluster CA where one is required) and
 * `tls-identity` (a peer's certificate does not name the node id its handshake claims).
 * Where it can, the refusing side sends a REJECT frame first, so the other side's log
 * says why.
 *
 * @packageDocumentation
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { SeededRandom } from '../core/random';
import type { Message, NodeId } from '../core/types';
import { TidemarkError, ErrorCodes } from '../errors';
import type { ClientRequest, ClientResponse, Endpoint, Logger, Transport, TransportHandlers } from './api';
import { dials, judgeInbound, judgeOutbound, type HandshakeContext, type HandshakeVerdict } from './handshake';
import {
  CLIENT_MAX_FRAME_BYTES_DEFAULT,
  decodeClientRequest,
  decodeMessage,
  decodeReject,
  encodeClientResponse,
  encodeHandshake,
  encodeMessage,
  encodeReject,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameTypes,
  HANDSHAKE_MAX_FRAME_BYTES,
  isMessageFrameType,
  PEER_MAX_FRAME_BYTES_DEFAULT,
  PROTOCOL_VERSION,
  type Frame,
} from './codec';

/** Named limits of a transport. Every one has a safe default. */
export interface TransportLimits {
  /** Largest frame body accepted from (and sent to) a peer. Default 64 MiB. */
  readonly maxFrameBytes: number;
  /** Largest frame body accepted from a client. Default 4 MiB. */
  readonly maxClientFrameBytes: number;
  /** Most accepted sockets open at once (handshaking, peers and clients). Default 1024. */
  readonly maxConnections: number;
  /** Most bytes queued per peer, or unread per client connection. Default 32 MiB. */
  readonly maxSendQueueBytes: number;
  /** Time a connection has to complete its handshake. Default 5000 ms. */
  readonly handshakeTimeoutMs: number;
  /** Most unanswered requests per client connection; more are answered TM_BUSY. Default 4096. */
  readonly maxClientInflight: number;
  /**
   * Most bytes of incomplete frames held over all connections together; the connection
   * whose bytes would pass it is closed (`buffer-limit`). Default 256 MiB.
   */
  readonly maxBufferedBytes: number;
}

/** Defaults of {@link TransportLimits}. */
export const TRANSPORT_LIMITS_DEFAULT: TransportLimits = {
  maxFrameBytes: PEER_MAX_FRAME_BYTES_DEFAULT,
  maxClientFrameBytes: CLIENT_MAX_FRAME_BYTES_DEFAULT,
  maxConnections: 1024,
  maxSendQueueBytes: 32 * 1024 * 1024,
  handshakeTimeoutMs: 5000,
  maxClientInflight: 4096,
  maxBufferedBytes: 256 * 1024 * 1024,
};

/**
 * Mutual TLS for every connection of a transport (peers and clients). Peers must present a
 * certificate signed by `ca` that NAMES the node id they claim in the handshake (a DNS
 * subject alternative name or the common name equal to the id), so a node with a valid
 * certificate cannot pose as another node; the dialing side checks the same of the node it
 * dialed. Clients must present a certificate only when `requireClientCert` is set.
 */
export interface TransportTls {
  /** This node's private key (PEM). */
  readonly key: string | Buffer;
  /** This node's certificate (PEM), naming its node id. */
  readonly cert: string | Buffer;
  /** The CA(s) that sign the cluster's certificates (PEM). */
  readonly ca: string | Buffer | ReadonlyArray<string | Buffer>;
  /** Refuse clients without a certificate signed by `ca`. Default false. */
  readonly requireClientCert?: boolean;
}

/** The names a certificate gives its holder: DNS subject alternative names and the common name. */
export function certificateNames(cert: tls.PeerCertificate | undefined): string[] {
  if (cert === undefined || cert === null || Object.keys(cert).length === 0) return [];
  const names: string[] = [];
  for (const part of (cert.subjectaltname ?? '').split(',')) {
    const t = part.trim();
    if (t.startsWith('DNS:')) names.push(t.slice(4));
  }
  const cn = cert.subject?.CN;
  if (typeof cn === 'string') names.push(cn);
  else if (Array.isArray(cn)) names.push(...(cn as string[]));
  return names;
}

/** Options of {@link TcpTransport}. */
export interface TcpTransportOptions {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  /** Where to listen; port 0 picks a free port (see {@link TcpTransport.address}). */
  readonly listen: Endpoint;
  /** Every other member and where to reach it. Must not contain `nodeId`. */
  readonly peers: Readonly<Record<NodeId, Endpoint>>;
  readonly logger?: Logger;
  readonly limits?: Partial<TransportLimits>;
  /** Seed of the reconnect jitter. Default 1. */
  readonly seed?: number;
  /** First reconnect delay before jitter. Default 20 ms. */
  readonly reconnectBaseMs?: number;
  /** Largest reconnect delay before jitter. Default 1000 ms. */
  readonly reconnectMaxMs?: number;
  /** Mutual TLS; without it the transport is plain TCP (and says so in its log). */
  readonly tls?: TransportTls;
}

/** Counters of a transport, for metrics and tests. */
export interface TransportStats {
  /** Connections closed by this side, by reason (see the module documentation). */
  readonly rejected: Record<string, number>;
  readonly connectionsAccepted: number;
  readonly connectionsOpen: number;
  /** Bytes of incomplete frames held now, over all connections. */
  readonly bufferedBytes: number;
  readonly peerConnections: number;
  readonly peerDisconnects: number;
  readonly framesSent: number;
  readonly framesReceived: number;
  readonly bytesReceived: number;
  /** Messages not sent: queue over its bound, unknown peer, unencodable or oversized. */
  readonly messagesDropped: number;
  readonly peers: Record<NodeId, { readonly connected: boolean; readonly queuedBytes: number }>;
}

type ConnState = 'handshake' | 'peer' | 'client' | 'closed';

interface Conn {
  readonly socket: net.Socket;
  readonly decoder: FrameDecoder;
  readonly inbound: boolean;
  readonly remote: string;
  state: ConnState;
  /** The peer this connection is (or, when dialing, should be) with. */
  peerId: NodeId | null;
  timer: NodeJS.Timeout | null;
  corked: boolean;
  inflight: number;
  /** Bytes of an incomplete frame this connection's decoder holds (counted in `bufferedBytes`). */
  buffered: number;
}

interface Peer {
  readonly id: NodeId;
  readonly endpoint: Endpoint;
  readonly dials: boolean;
  conn: Conn | null; // established
  dialing: Conn | null;
  queue: Buffer[];
  queueHead: number;
  queueBytes: number;
  blocked: boolean;
  flushScheduled: boolean;
  attempts: number;
  reconnectTimer: NodeJS.Timeout | null;
}

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v <= 0) throw TidemarkError.invalidArgument(`TcpTransport: ${name} must be a positive integer, got ${String(v)}`);
  return v;
}

function checkEndpoint(what: string, e: Endpoint | undefined): Endpoint {
  if (e === null || typeof e !== 'object' || typeof e.host !== 'string' || !Number.isInteger(e.port) || e.port < 0 || e.port > 65535) {
    throw TidemarkError.invalidArgument(`TcpTransport: ${what} must be { host: string, port: 0..65535 }`);
  }
  return { host: e.host, port: e.port };
}

/** The TCP implementation of {@link Transport}. Never throws from `send`, never crashes on a socket error. */
export class TcpTransport implements Transport {
  private readonly nodeId: NodeId;
  private readonly clusterId: string;
  private readonly listenAt: Endpoint;
  private readonly limits: TransportLimits;
  private readonly logger: Logger | undefined;
  private readonly random: SeededRandom;
  private readonly reconnectBaseMs: number;
  private readonly reconnectMaxMs: number;
  private readonly peers = new Map<NodeId, Peer>();
  private readonly handshakeContext: HandshakeContext;
  private readonly inbound = new Set<Conn>();
  private readonly outbound = new Set<Conn>();
  private server: net.Server | null = null;
  private tls: TransportTls | undefined;
  /** Accepted sockets open (before and after their TLS and tidemark handshakes). */
  private readonly accepted = new Set<net.Socket>();
  private handlers: TransportHandlers | null = null;
  private closing = false;
  /** Sum of every connection's `buffered`. */
  private bufferedBytes = 0;
  private readonly counters = {
    connectionsAccepted: 0,
    peerConnections: 0,
    peerDisconnects: 0,
    framesSent: 0,
    framesReceived: 0,
    bytesReceived: 0,
    messagesDropped: 0,
  };
  private readonly rejected: Record<string, number> = {};

  constructor(options: TcpTransportOptions) {
    if (typeof options?.nodeId !== 'string' || options.nodeId.length === 0) throw TidemarkError.invalidArgument('TcpTransport: nodeId must be a non-empty string');
    if (typeof options.clusterId !== 'string' || options.clusterId.length === 0) throw TidemarkError.invalidArgument('TcpTransport: clusterId must be a non-empty string');
    this.nodeId = options.nodeId;
    this.clusterId = options.clusterId;
    this.listenAt = checkEndpoint('listen', options.listen);
    const l = options.limits ?? {};
    const d = TRANSPORT_LIMITS_DEFAULT;
    this.limits = {
      maxFrameBytes: positiveInt('limits.maxFrameBytes', l.maxFrameBytes, d.maxFrameBytes),
      maxClientFrameBytes: positiveInt('limits.maxClientFrameBytes', l.maxClientFrameBytes, d.maxClientFrameBytes),
      maxConnections: positiveInt('limits.maxConnections', l.maxConnections, d.maxConnections),
      maxSendQueueBytes: positiveInt('limits.maxSendQueueBytes', l.maxSendQueueBytes, d.maxSendQueueBytes),
      handshakeTimeoutMs: positiveInt('limits.handshakeTimeoutMs', l.handshakeTimeoutMs, d.handshakeTimeoutMs),
      maxClientInflight: positiveInt('limits.maxClientInflight', l.maxClientInflight, d.maxClientInflight),
      maxBufferedBytes: positiveInt('limits.maxBufferedBytes', l.maxBufferedBytes, d.maxBufferedBytes),
    };
    this.logger = options.logger;
    this.tls = options.tls;
    this.random = new SeededRandom(options.seed ?? 1);
    this.reconnectBaseMs = positiveInt('reconnectBaseMs', options.reconnectBaseMs, 20);
    this.reconnectMaxMs = positiveInt('reconnectMaxMs', options.reconnectMaxMs, 1000);
    this.handshakeContext = { nodeId: this.nodeId, clusterId: this.clusterId, peers: new Set(Object.keys(options.peers ?? {})) };
    for (const [id, endpoint] of Object.entries(options.peers ?? {})) {
      if (id === this.nodeId) throw TidemarkError.invalidArgument(`TcpTransport: peers must not contain this node (${id})`);
      this.peers.set(id, {
        id,
        endpoint: checkEndpoint(`peers.${id}`, endpoint),
        dials: dials(this.nodeId, id),
        conn: null,
        dialing: null,
        queue: [],
        queueHead: 0,
        queueBytes: 0,
        blocked: false,
        flushScheduled: false,
        attempts: 0,
        reconnectTimer: null,
      });
    }
  }

  /** Starts listening, then dials every peer whose id sorts after this node's. */
  async start(handlers: TransportHandlers): Promise<void> {
    if (this.handlers !== null) throw TidemarkError.invalidArgument('TcpTransport: start() was already called');
    if (this.closing) throw TidemarkError.closed('transport');
    this.handlers = handlers;
    let server: net.Server;
    if (this.tls !== undefined) {
      const t = this.tls;
      server = tls.createServer({
        key: t.key,
        cert: t.cert,
        ca: t.ca as tls.SecureContextOptions['ca'],
        requestCert: true,
        rejectUnauthorized: false, // checked per role after the tidemark handshake
        handshakeTimeout: this.limits.handshakeTimeoutMs,
        minVersion: 'TLSv1.2',
      });
      server.on('secureConnection', (socket: tls.TLSSocket) => this.onAccept(socket));
      server.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
        this.count('tls-error');
        this.logger?.warn({ nodeId: this.nodeId, remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, reason: 'tls-error', detail: err.message }, 'tidemark transport: connection closed');
      });
    } else {
      server = net.createServer({ noDelay: true });
    }
    server.on('connection', (raw: net.Socket) => this.onRawConnection(raw));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(new TidemarkError(ErrorCodes.IO, `TcpTransport: cannot listen on ${this.listenAt.host}:${this.listenAt.port}: ${err.message}`, { cause: err, ...errnoOf(err) }));
      server.once('error', onError);
      server.listen(this.listenAt.port, this.listenAt.host, () => {
        server.off('error', onError);
        server.on('error', (err) => this.logger?.error({ err: err.message, nodeId: this.nodeId }, 'tidemark transport: listener error'));
        resolve();
      });
    });
    if (this.tls !== undefined) this.logger?.info({ nodeId: this.nodeId, address: this.address(), tls: true }, 'tidemark transport: listening (mutual TLS)');
    else this.logger?.warn({ nodeId: this.nodeId, address: this.address(), tls: false }, 'tidemark transport: listening on PLAIN TCP: not encrypted, peers not authenticated (use the tls option off loopback)');
    for (const peer of this.peers.values()) if (peer.dials) this.dial(peer);
  }

  address(): Endpoint {
    const a = this.server?.address();
    if (a === null || a === undefined || typeof a === 'string') return this.listenAt;
    return { host: a.address, port: a.port };
  }

  send(msg: Message): void {
    const peer = this.peers.get(msg.to);
    if (peer === undefined || this.closing) {
      this.counters.messagesDropped++;
      if (peer === undefined) this.logger?.debug({ to: msg.to, type: msg.type }, 'tidemark transport: message to an unknown peer dropped');
      return;
    }
    let frame: Buffer;
    try {
      frame = encodeMessage(msg);
    } catch (err) {
      this.counters.messagesDropped++;
      this.logger?.error({ to: msg.to, type: msg.type, err: (err as Error).message }, 'tidemark transport: message cannot be encoded; dropped');
      return;
    }
    if (frame.length - FRAME_HEADER_BYTES > this.limits.maxFrameBytes) {
      this.counters.messagesDropped++;
      this.logger?.warn({ to: msg.to, type: msg.type, bytes: frame.length }, 'tidemark transport: message over maxFrameBytes dropped');
      return;
    }
    this.enqueue(peer, frame);
  }

  /** Counters since start (a copy). */
  stats(): TransportStats {
    const peers: Record<NodeId, { connected: boolean; queuedBytes: number }> = {};
    for (const p of this.peers.values()) peers[p.id] = { connected: p.conn !== null, queuedBytes: p.queueBytes };
    return {
      ...this.counters,
      rejected: { ...this.rejected },
      connectionsOpen: this.accepted.size,
      bufferedBytes: this.bufferedBytes,
      peers,
    };
  }

  /**
   * Replaces the key, certificate and CA (e.g. on SIGHUP) without a restart: connections
   * accepted or dialed from now on use them; open connections keep theirs.
   * @throws `TM_INVALID_ARGUMENT` when the transport was built without TLS (it cannot
   *   switch from plain TCP) or the new material does not load.
   */
  reloadTls(next: TransportTls): void {
    if (this.tls === undefined) throw TidemarkError.invalidArgument('TcpTransport.reloadTls: this transport was started without tls');
    const requireClientCert = next.requireClientCert ?? this.tls.requireClientCert;
    const options = { key: next.key, cert: next.cert, ca: next.ca as tls.SecureContextOptions['ca'] };
    try {
      tls.createSecureContext(options); // fails here, not on the next connection, if the PEM is bad
    } catch (err) {
      throw new TidemarkError(ErrorCodes.INVALID_ARGUMENT, `TcpTransport.reloadTls: ${(err as Error).message}`, { cause: err });
    }
    if (this.server instanceof tls.Server) this.server.setSecureContext(options);
    this.tls = { ...next, ...(requireClientCert !== undefined ? { requireClientCert } : {}) };
    this.logger?.info({ nodeId: this.nodeId }, 'tidemark transport: TLS material reloaded');
  }

  /** Whether a handshaken connection to `peer` is open now. */
  isConnected(peer: NodeId): boolean {
    return this.peers.get(peer)?.conn != null;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const peer of this.peers.values()) {
      if (peer.reconnectTimer !== null) clearTimeout(peer.reconnectTimer);
      peer.reconnectTimer = null;
      peer.queue = [];
      peer.queueHead = 0;
      peer.queueBytes = 0;
    }
    for (const c of [...this.inbound, ...this.outbound]) this.destroy(c);
    for (const raw of [...this.accepted]) raw.destroy(); // e.g. still in their TLS handshake
    const server = this.server;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  // ---- connections -------------------------------------------------------------------

  private newConn(socket: net.Socket, inbound: boolean, peerId: NodeId | null): Conn {
    const conn: Conn = {
      socket,
      decoder: new FrameDecoder(HANDSHAKE_MAX_FRAME_BYTES),
      inbound,
      remote: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`,
      state: 'handshake',
      peerId,
      timer: null,
      corked: false,
      inflight: 0,
      buffered: 0,
    };
    socket.setNoDelay(true);
    socket.on('error', (err) => {
      this.logger?.debug({ nodeId: this.nodeId, remote: conn.remote, peer: conn.peerId, err: err.message }, 'tidemark transport: socket error');
    });
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('close', () => this.onClose(conn));
    conn.timer = setTimeout(() => {
      conn.timer = null;
      if (conn.state === 'handshake') this.reject(conn, 'handshake-timeout', `no handshake within ${this.limits.handshakeTimeoutMs} ms`);
    }, this.limits.handshakeTimeoutMs);
    conn.timer.unref();
    return conn;
  }

  /** Every accepted TCP socket, before TLS: the connection limit applies here. */
  private onRawConnection(raw: net.Socket): void {
    if (this.closing || this.accepted.size >= this.limits.maxConnections) {
      this.count('too-many-connections');
      this.logger?.warn(
        { nodeId: this.nodeId, remote: `${raw.remoteAddress ?? '?'}:${raw.remotePort ?? '?'}`, reason: 'too-many-connections', limit: this.limits.maxConnections },
        'tidemark transport: connection refused',
      );
      raw.on('error', () => {});
      raw.destroy();
      return;
    }
    this.accepted.add(raw);
    raw.once('close', () => this.accepted.delete(raw));
    raw.on('error', () => {}); // reported on the connection (or the TLS error) instead
    if (this.tls === undefined) this.onAccept(raw);
  }

  private onAccept(socket: net.Socket): void {
    if (socket.destroyed) return;
    this.counters.connectionsAccepted++;
    const conn = this.newConn(socket, true, null);
    this.inbound.add(conn);
  }

  private dial(peer: Peer): void {
    if (this.closing || peer.dialing !== null || peer.conn !== null) return;
    let socket: net.Socket;
    if (this.tls !== undefined) {
      const t = this.tls;
      socket = tls.connect({
        host: peer.endpoint.host,
        port: peer.endpoint.port,
        key: t.key,
        cert: t.cert,
        ca: t.ca as tls.SecureContextOptions['ca'],
        minVersion: 'TLSv1.2',
        // The node id, not the host name, is what a peer's certificate must name.
        checkServerIdentity: (_host, cert) =>
          certificateNames(cert).includes(peer.id) ? undefined : new Error(`certificate of ${peer.endpoint.host}:${peer.endpoint.port} does not name ${peer.id} (names: ${certificateNames(cert).join(', ') || 'none'})`),
      });
      socket.on('error', (err) => this.logger?.warn({ nodeId: this.nodeId, peer: peer.id, reason: 'tls-error', detail: err.message }, 'tidemark transport: cannot connect to peer'));
    } else {
      socket = net.connect({ host: peer.endpoint.host, port: peer.endpoint.port, noDelay: true });
    }
    const conn = this.newConn(socket, false, peer.id);
    this.outbound.add(conn);
    peer.dialing = conn;
    socket.write(encodeHandshake({ protocolVersion: PROTOCOL_VERSION, clusterId: this.clusterId, role: 'peer', nodeId: this.nodeId }));
  }

  private scheduleReconnect(peer: Peer): void {
    if (this.closing || peer.reconnectTimer !== null || peer.conn !== null || peer.dialing !== null) return;
    const cap = Math.min(this.reconnectMaxMs, this.reconnectBaseMs * 2 ** Math.min(peer.attempts, 20));
    const delay = Math.ceil(cap / 2) + this.random.int(Math.floor(cap / 2) + 1);
    peer.attempts++;
    peer.reconnectTimer = setTimeout(() => {
      peer.reconnectTimer = null;
      this.dial(peer);
    }, delay);
    peer.reconnectTimer.unref();
  }

  private onData(conn: Conn, chunk: Buffer): void {
    if (conn.state === 'closed') return;
    this.counters.bytesReceived += chunk.length;
    // Frame by frame: a handshake changes the limit for the frames right behind it.
    const error = conn.decoder.pushEach(chunk, (f) => {
      this.counters.framesReceived++;
      this.onFrame(conn, f);
      return !isClosed(conn);
    });
    if (error !== null) return this.reject(conn, 'bad-frame', error.message);
    if (isClosed(conn)) return;
    const held = conn.decoder.bufferedBytes();
    this.bufferedBytes += held - conn.buffered;
    conn.buffered = held;
    if (this.bufferedBytes > this.limits.maxBufferedBytes) {
      this.reject(conn, 'buffer-limit', `${this.bufferedBytes} bytes of incomplete frames held over all connections, limit ${this.limits.maxBufferedBytes}`);
    }
  }

  private onFrame(conn: Conn, f: Frame): void {
    // A REJECT is the other side's reason for closing; as the first frame of an accepted
    // connection it is just not a handshake (the judge says so below).
    if (f.type === FrameTypes.REJECT && !(conn.inbound && conn.state === 'handshake')) {
      let why = 'unreadable reason';
      try {
        const r = decodeReject(f.body);
        why = `${r.reason}: ${r.message}`;
      } catch {
        // keep the placeholder
      }
      this.closeConn(conn, 'rejected-by-peer', why);
      return;
    }
    if (conn.state === 'handshake') {
      if (conn.inbound) this.onInboundHandshake(conn, judgeInbound(f, this.handshakeContext));
      else this.onOutboundHandshake(conn, judgeOutbound(f, conn.peerId ?? '', this.handshakeContext));
      return;
    }
    if (conn.state === 'peer') {
      if (!isMessageFrameType(f.type)) {
        this.reject(conn, 'not-allowed', `frame type ${f.type} on a peer connection`);
        return;
      }
      const msg = this.decodeOrReject(conn, () => decodeMessage(f.type, f.body));
      if (msg === null) return;
      if (msg.from !== conn.peerId || msg.to !== this.nodeId || msg.clusterId !== this.clusterId) {
        this.reject(conn, 'bad-sender', `message from ${msg.from} to ${msg.to} of cluster ${msg.clusterId} on the connection of ${conn.peerId ?? '?'}`);
        return;
      }
      this.handlers?.onMessage(msg);
      return;
    }
    if (conn.state === 'client') {
      if (f.type !== FrameTypes.CLIENT_REQUEST) {
        this.reject(conn, 'not-allowed', `frame type ${f.type} on a client connection`);
        return;
      }
      const req = this.decodeOrReject(conn, () => decodeClientRequest(f.body));
      if (req !== null) this.onClientRequest(conn, req);
    }
  }

  /** Runs a body decoder; a TM_BAD_FRAME closes the connection and gives null. */
  private decodeOrReject<T>(conn: Conn, decode: () => T): T | null {
    try {
      return decode();
    } catch (err) {
      this.reject(conn, 'bad-frame', (err as Error).message);
      return null;
    }
  }

  private onInboundHandshake(conn: Conn, v: HandshakeVerdict): void {
    if (!v.ok) return this.reject(conn, v.reason, v.message);
    if (this.tls !== undefined) {
      const socket = conn.socket as tls.TLSSocket;
      if (v.role === 'peer' || this.tls.requireClientCert === true) {
        if (!socket.authorized) return this.reject(conn, 'tls-unauthorized', `no certificate signed by the cluster CA (${String(socket.authorizationError ?? 'none presented')})`);
      }
      if (v.role === 'peer') {
        const names = certificateNames(socket.getPeerCertificate());
        if (!names.includes(v.peerId)) return this.reject(conn, 'tls-identity', `handshake claims ${v.peerId}, certificate names ${names.join(', ') || 'nobody'}`);
      }
    }
    if (v.role === 'client') {
      this.established(conn, 'client');
      conn.decoder.setMaxFrameBytes(this.limits.maxClientFrameBytes);
      this.write(conn, encodeHandshake({ protocolVersion: PROTOCOL_VERSION, clusterId: this.clusterId, role: 'server', nodeId: this.nodeId }));
      return;
    }
    const peer = this.peers.get(v.peerId)!;
    conn.peerId = peer.id;
    const old = peer.conn;
    if (old !== null) {
      this.logger?.info({ nodeId: this.nodeId, peer: peer.id, old: old.remote, new: conn.remote }, 'tidemark transport: a newer connection from the peer replaces the old one');
      peer.conn = null;
      this.destroy(old);
      this.peerLost(peer);
    }
    this.write(conn, encodeHandshake({ protocolVersion: PROTOCOL_VERSION, clusterId: this.clusterId, role: 'peer', nodeId: this.nodeId }));
    this.peerUp(peer, conn);
  }

  private onOutboundHandshake(conn: Conn, v: HandshakeVerdict): void {
    if (!v.ok) return this.closeConn(conn, v.reason, v.message);
    const peer = this.peers.get(conn.peerId!)!;
    if (peer.dialing === conn) peer.dialing = null;
    this.peerUp(peer, conn);
  }

  private established(conn: Conn, state: 'peer' | 'client'): void {
    conn.state = state;
    if (conn.timer !== null) clearTimeout(conn.timer);
    conn.timer = null;
  }

  private peerUp(peer: Peer, conn: Conn): void {
    this.established(conn, 'peer');
    conn.decoder.setMaxFrameBytes(this.limits.maxFrameBytes);
    peer.conn = conn;
    peer.attempts = 0;
    peer.blocked = false;
    this.counters.peerConnections++;
    conn.socket.on('drain', () => {
      if (peer.conn !== conn) return;
      peer.blocked = false;
      this.flush(peer);
    });
    this.logger?.info({ nodeId: this.nodeId, peer: peer.id, remote: conn.remote }, 'tidemark transport: peer connected');
    this.flush(peer);
  }

  private peerLost(peer: Peer): void {
    this.counters.peerDisconnects++;
    this.logger?.info({ nodeId: this.nodeId, peer: peer.id }, 'tidemark transport: peer disconnected');
    if (!this.closing) this.handlers?.onPeerDisconnected(peer.id);
  }

  private onClose(conn: Conn): void {
    const wasPeer = conn.state === 'peer';
    conn.state = 'closed';
    this.release(conn);
    if (conn.timer !== null) clearTimeout(conn.timer);
    conn.timer = null;
    this.inbound.delete(conn);
    this.outbound.delete(conn);
    const peer = conn.peerId === null ? undefined : this.peers.get(conn.peerId);
    if (peer === undefined) return;
    if (peer.dialing === conn) peer.dialing = null;
    if (peer.conn === conn) {
      peer.conn = null;
      peer.blocked = false;
      peer.queue = [];
      peer.queueHead = 0;
      peer.queueBytes = 0;
      if (wasPeer) this.peerLost(peer);
    }
    if (peer.dials) this.scheduleReconnect(peer);
  }

  /** Closes a connection this side refuses, telling the other side why first. */
  private reject(conn: Conn, reason: string, message: string): void {
    if (conn.state === 'closed') return;
    this.closeConn(conn, reason, message, encodeReject({ reason, message }));
  }

  private closeConn(conn: Conn, reason: string, message: string, last?: Buffer): void {
    if (conn.state === 'closed') return;
    this.count(reason);
    this.logger?.warn({ nodeId: this.nodeId, remote: conn.remote, peer: conn.peerId, reason, detail: message }, 'tidemark transport: connection closed');
    const socket = conn.socket;
    this.detach(conn); // no later frame of this connection is acted on; onClose still runs

    if (last !== undefined && socket.writable) {
      socket.end(last);
      setTimeout(() => socket.destroy(), 1000).unref();
    } else {
      socket.destroy();
    }
  }

  /** Stops acting on a connection's frames and forgets it as a peer's (the close event finishes up). */
  private detach(conn: Conn): void {
    const peer = conn.peerId === null ? undefined : this.peers.get(conn.peerId);
    const wasPeer = conn.state === 'peer';
    conn.state = 'closed';
    this.release(conn);
    conn.socket.pause();
    if (conn.timer !== null) clearTimeout(conn.timer);
    conn.timer = null;
    if (peer !== undefined && peer.conn === conn) {
      peer.conn = null;
      peer.queue = [];
      peer.queueHead = 0;
      peer.queueBytes = 0;
      if (wasPeer) this.peerLost(peer);
    }
  }

  /** Gives back a closing connection's share of the buffered-bytes budget. */
  private release(conn: Conn): void {
    this.bufferedBytes -= conn.buffered;
    conn.buffered = 0;
  }

  private destroy(conn: Conn): void {
    if (conn.state !== 'closed') this.detach(conn);
    conn.socket.destroy();
  }

  private count(reason: string): void {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
  }

  // ---- writing -----------------------------------------------------------------------

  /** Writes `frame` under a cork released at the end of this turn (one writev per turn). */
  private write(conn: Conn, frame: Buffer): boolean {
    if (!conn.corked) {
      conn.corked = true;
      conn.socket.cork();
      process.nextTick(() => {
        conn.corked = false;
        conn.socket.uncork();
      });
    }
    this.counters.framesSent++;
    return conn.socket.write(frame);
  }

  private enqueue(peer: Peer, frame: Buffer): void {
    if (frame.length > this.limits.maxSendQueueBytes) {
      this.counters.messagesDropped++;
      return;
    }
    // While the peer is not connected only the newest DISCONNECTED_QUEUE_BYTES_MAX wait
    // (flushed on connect): what an hour-long outage queues is stale by then.
    const bound = peer.conn === null ? Math.min(this.limits.maxSendQueueBytes, DISCONNECTED_QUEUE_BYTES_MAX) : this.limits.maxSendQueueBytes;
    if (frame.length > bound) {
      this.counters.messagesDropped++;
      return;
    }
    peer.queue.push(frame);
    peer.queueBytes += frame.length;
    while (peer.queueBytes > bound) {
      const dropped = peer.queue[peer.queueHead]!;
      peer.queue[peer.queueHead++] = EMPTY;
      peer.queueBytes -= dropped.length;
      this.counters.messagesDropped++;
    }
    if (peer.conn !== null && !peer.blocked && !peer.flushScheduled) {
      peer.flushScheduled = true;
      process.nextTick(() => {
        peer.flushScheduled = false;
        this.flush(peer);
      });
    }
  }

  private flush(peer: Peer): void {
    const conn = peer.conn;
    if (conn === null || conn.state !== 'peer') return;
    while (peer.queueHead < peer.queue.length && !peer.blocked) {
      const frame = peer.queue[peer.queueHead]!;
      peer.queue[peer.queueHead++] = EMPTY;
      peer.queueBytes -= frame.length;
      // write() says false past the socket's 16 KiB high-water mark, and under cork a whole
      // turn's batch is buffered; keep going up to SOCKET_BUFFER_BYTES, then wait for drain.
      if (!this.write(conn, frame) && conn.socket.writableLength >= SOCKET_BUFFER_BYTES) peer.blocked = true;
    }
    if (peer.queueHead === peer.queue.length) {
      peer.queue = [];
      peer.queueHead = 0;
    } else if (peer.queueHead > 1024 && peer.queueHead * 2 > peer.queue.length) {
      peer.queue = peer.queue.slice(peer.queueHead);
      peer.queueHead = 0;
    }
  }

  // ---- clients -----------------------------------------------------------------------

  private onClientRequest(conn: Conn, req: ClientRequest): void {
    if (conn.inflight >= this.limits.maxClientInflight) {
      this.write(
        conn,
        encodeClientResponse({
          requestId: req.requestId,
          ok: false,
          code: ErrorCodes.BUSY,
          message: `more than ${this.limits.maxClientInflight} requests in flight on this connection`,
          outcome: 'not-applied',
        }),
      );
      return;
    }
    conn.inflight++;
    let answered = false;
    const reply = (res: ClientResponse): void => {
      if (answered) throw new Error('TcpTransport: reply() called twice for one client request');
      answered = true;
      conn.inflight--;
      if (conn.state !== 'client') return;
      const frame = encodeClientResponse(res.requestId === req.requestId ? res : { ...res, requestId: req.requestId });
      this.write(conn, frame);
      if (conn.socket.writableLength > this.limits.maxSendQueueBytes) {
        this.reject(conn, 'slow-reader', `${conn.socket.writableLength} bytes of responses unread`);
      }
    };
    this.handlers?.onClientRequest(req, reply);
  }
}

const EMPTY = Buffer.alloc(0);
/** Bytes written to a peer's socket (buffered by Node) before the transport waits for `drain`. */
const SOCKET_BUFFER_BYTES = 1024 * 1024;
/** Most bytes queued for a peer that is not connected (see `enqueue`). */
export const DISCONNECTED_QUEUE_BYTES_MAX = 1024 * 1024;

// A function, so that TypeScript does not narrow `conn.state` across calls that change it.
function isClosed(conn: Conn): boolean {
  return conn.state === 'closed';
}

function errnoOf(err: unknown): { errno?: string } {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? { errno: code } : {};
}

