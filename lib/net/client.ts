/**
 * {@link Client}: talks to a tidemark cluster over TCP. It finds the leader, follows
 * `TM_NOT_LEADER` redirects, retries with a timeout per attempt and jittered backoff, and
 * tags every proposal with its client id and a sequence number, reused by every retry of
 * that proposal, so that the server's Idempotent Receiver applies it once.
 *
 * ## What a failed call means
 *
 * A {@link Client.propose} either resolves (the command was applied, at `index`) or rejects
 * with a {@link TidemarkError} whose code says whether it may have taken effect:
 *
 * - `TM_UNKNOWN_OUTCOME`: it may or may not have been applied. This is the answer when, for
 *   ANY attempt of the call, the request was written to a connection that had completed its
 *   handshake and then no definite answer came back: the attempt timed out, the connection
 *   closed, the client was closed, or the server answered with outcome `'unknown'`. A later
 *   attempt that is answered "not applied" does not undo that doubt (the earlier copy may
 *   still commit); only a success does.
 * - any other code: it definitely was not applied. `TM_UNAVAILABLE` when no attempt got an
 *   answer from a server and no request was ever written (nodes down, refused, handshakes
 *   failed or timed out); the server's own code (`TM_BUSY`, `TM_NOT_LEADER`,
 *   `TM_INVALID_ARGUMENT`, ...) when the last attempt was answered with outcome
 *   `'not-applied'` and either the code is not one worth retrying or the attempts ran out;
 *   `TM_CLOSED` when the client was closed before the request was written;
 *   `TM_INVALID_ARGUMENT` for bad arguments (checked before anything is sent).
 *
 * Reads and status requests change nothing, so they never report `TM_UNKNOWN_OUTCOME`: an
 * attempt without an answer is simply retried, and running out gives `TM_UNAVAILABLE` (or
 * the server's code).
 *
 * After `TM_UNKNOWN_OUTCOME` the sequence number is spent: calling `propose` again makes a
 * new command with a new sequence number, which the server will apply even if the first
 * one was applied too.
 *
 * @packageDocumentation
 */
import { randomInt, randomUUID } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { SeededRandom } from '../core/random';
import { ErrorCodes, TidemarkError, type TidemarkErrorCode } from '../errors';
import type { ClientRequest, ClientResponse, Logger } from './api';
import {
  decodeClientResponse,
  decodeHandshake,
  decodeReject,
  encodeClientRequest,
  encodeHandshake,
  FrameDecoder,
  FrameTypes,
  HANDSHAKE_MAX_FRAME_BYTES,
  ID_MAX_BYTES,
  PEER_MAX_FRAME_BYTES_DEFAULT,
  PROTOCOL_VERSION,
  type Frame,
} from './codec';

/** Options of {@link Client}. */
export interface ClientOptions {
  /** Addresses of the cluster's nodes, `'host:port'` (IPv6 as `'[::1]:7001'`). At least one. */
  readonly nodes: readonly string[];
  readonly clusterId: string;
  /** Session id sent with every proposal. Default: a random UUID. At most 255 UTF-8 bytes. */
  readonly clientId?: string;
  /** Time one attempt (connect, handshake, request, answer) may take. Default 2000 ms. */
  readonly timeoutMs?: number;
  /** Time a whole call may take, over all its attempts. Default 5 × timeoutMs. */
  readonly totalTimeoutMs?: number;
  /** Most attempts per call. Default 50. */
  readonly maxAttempts?: number;
  /** First retry delay before jitter. Default 10 ms. */
  readonly backoffBaseMs?: number;
  /** Largest retry delay before jitter. Default 500 ms. */
  readonly backoffMaxMs?: number;
  /** Seed of the retry jitter. Default: random. */
  readonly seed?: number;
  /** Largest response frame accepted. Default 64 MiB. */
  readonly maxFrameBytes?: number;
  readonly logger?: Logger;
  /**
   * TLS to the nodes: their certificates must be signed by `ca` (the host name is not
   * checked: node certificates name node ids). `cert`/`key` are this client's own, for
   * clusters that require client certificates.
   */
  readonly tls?: ClientTls;
}

/** TLS options of a {@link Client}. */
export interface ClientTls {
  readonly ca: string | Buffer | ReadonlyArray<string | Buffer>;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
}

/** The answer to a proposal or a read. */
export interface ClientResult {
  /** The state machine's result bytes. */
  readonly result: Uint8Array;
  /** Log index the command was applied at, or the read served at. */
  readonly index: number;
}

/** Options of {@link Client.read}. */
export interface ReadOptions {
  /** `'linearizable'` (default): read index on the leader. `'follower'`: any node, at its high-water mark. */
  readonly mode?: 'linearizable' | 'follower';
}

type AttemptOutcome =
  | { readonly kind: 'response'; readonly res: ClientResponse }
  | { readonly kind: 'failed'; readonly written: boolean; readonly error: TidemarkError };

/** Codes a server may answer with where another attempt (maybe elsewhere) can succeed. */
/** The longest a server's TM_BUSY `retryAfterMs` hint makes the client wait before its next attempt. */
const MAX_RETRY_AFTER_MS = 5000;
const RETRYABLE = new Set<string>([ErrorCodes.NOT_LEADER, ErrorCodes.BUSY, ErrorCodes.UNAVAILABLE, ErrorCodes.CLOSED, ErrorCodes.UNKNOWN_OUTCOME]);

function positive(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v <= 0) throw TidemarkError.invalidArgument(`Client: ${name} must be a positive integer, got ${String(v)}`);
  return v;
}

/** Splits `'host:port'` / `'[v6]:port'`. @throws `TM_INVALID_ARGUMENT` */
export function parseAddress(address: string): { host: string; port: number } {
  const m = typeof address === 'string' ? /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address) : null;
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || port < 1 || port > 65535) throw TidemarkError.invalidArgument(`Client: address must be 'host:port', got ${JSON.stringify(address)}`);
  return { host: (m[1] ?? m[2])!, port };
}

function codeOf(code: string): TidemarkErrorCode {
  return (Object.values(ErrorCodes) as string[]).includes(code) ? (code as TidemarkErrorCode) : ErrorCodes.UNAVAILABLE;
}

/** One connection to one node, with its pipelined requests. */
class NodeConnection {
  private readonly socket: net.Socket;
  private readonly decoder = new FrameDecoder(HANDSHAKE_MAX_FRAME_BYTES);
  private readonly pending = new Map<number, (o: AttemptOutcome) => void>();
  private readonly waiting: Array<() => void> = [];
  private nextRequestId = 1;
  state: 'handshake' | 'ready' | 'closed' = 'handshake';
  private closeError: TidemarkError | null = null;
  /** Node id the server named in its handshake. */
  serverId = '';

  constructor(
    readonly address: string,
    private readonly clusterId: string,
    private readonly maxFrameBytes: number,
    private readonly onGone: (c: NodeConnection) => void,
    private readonly logger: Logger | undefined,
    tlsOptions: ClientTls | undefined,
  ) {
    const { host, port } = parseAddress(address);
    if (tlsOptions !== undefined) {
      this.socket = tls.connect({
        host,
        port,
        ca: tlsOptions.ca as tls.SecureContextOptions['ca'],
        ...(tlsOptions.cert !== undefined ? { cert: tlsOptions.cert } : {}),
        ...(tlsOptions.key !== undefined ? { key: tlsOptions.key } : {}),
        minVersion: 'TLSv1.2',
        checkServerIdentity: () => undefined, // the CA is the trust; node certificates name node ids, not hosts
      });
      this.socket.setNoDelay(true);
    } else {
      this.socket = net.connect({ host, port, noDelay: true });
    }
    this.socket.on('error', (err) => this.fail(new TidemarkError(ErrorCodes.UNAVAILABLE, `${address}: ${err.message}`, { cause: err })));
    this.socket.on('close', () => this.fail(new TidemarkError(ErrorCodes.UNAVAILABLE, `${address}: connection closed`)));
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.write(encodeHandshake({ protocolVersion: PROTOCOL_VERSION, clusterId, role: 'client', nodeId: '' }));
  }

  /** Sends `req` (requestId assigned here) and waits at most `timeoutMs` for its answer. Never rejects. */
  request(req: Omit<ClientRequest, 'requestId'>, timeoutMs: number): Promise<AttemptOutcome> {
    return new Promise<AttemptOutcome>((resolve) => {
      let written = false;
      let requestId = 0;
      let done = false;
      const finish = (o: AttemptOutcome): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (written) this.pending.delete(requestId);
        this.refreshRef();
        resolve(o);
      };
      const timer = setTimeout(() => {
        finish({
          kind: 'failed',
          written,
          error: new TidemarkError(
            ErrorCodes.UNAVAILABLE,
            `${this.address}: no ${written ? 'answer' : 'handshake'} within ${timeoutMs} ms`,
          ),
        });
      }, timeoutMs);
      const send = (): void => {
        if (done) return;
        if (this.state !== 'ready') {
          finish({ kind: 'failed', written: false, error: this.closeError ?? TidemarkError.closed('connection') });
          return;
        }
        requestId = this.nextRequestId;
        this.nextRequestId = this.nextRequestId >= 0xffff_ffff ? 1 : this.nextRequestId + 1;
        const frame = encodeClientRequest({ ...req, requestId });
        this.pending.set(requestId, (o) => finish(o));
        written = true;
        this.refreshRef();
        this.write(frame);
      };
      if (this.state === 'handshake') this.waiting.push(send);
      else send();
    });
  }

  close(): void {
    this.fail(TidemarkError.closed('client'));
  }

  private corked = false;
  /** Requests issued in one turn go out in one writev. */
  private write(frame: Buffer): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(frame);
  }

  // A method, so that TypeScript does not narrow `state` across calls that change it.
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private refreshRef(): void {
    if (this.state === 'closed') return;
    if (this.pending.size > 0 || this.waiting.length > 0) this.socket.ref();
    else this.socket.unref(); // an idle client does not keep the process alive
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    const error = this.decoder.pushEach(chunk, (f) => {
      this.onFrame(f);
      return !this.isClosed();
    });
    if (error !== null) this.fail(new TidemarkError(ErrorCodes.UNAVAILABLE, `${this.address}: ${error.message}`, { cause: error }));
  }

  private onFrame(f: Frame): void {
    try {
      if (f.type === FrameTypes.REJECT) {
        const r = decodeReject(f.body);
        this.fail(new TidemarkError(ErrorCodes.UNAVAILABLE, `${this.address} refused the connection: ${r.reason}: ${r.message}`));
        return;
      }
      if (this.state === 'handshake') {
        const h = f.type === FrameTypes.HANDSHAKE ? decodeHandshake(f.body) : null;
        if (h === null || h.role !== 'server' || h.clusterId !== this.clusterId || h.protocolVersion !== PROTOCOL_VERSION) {
          this.fail(new TidemarkError(ErrorCodes.UNAVAILABLE, `${this.address}: unexpected handshake answer`));
          return;
        }
        this.serverId = h.nodeId;
        this.state = 'ready';
        this.decoder.setMaxFrameBytes(this.maxFrameBytes);
        for (const send of this.waiting.splice(0)) send();
        this.refreshRef();
        return;
      }
      if (f.type !== FrameTypes.CLIENT_RESPONSE) {
        this.fail(new TidemarkError(ErrorCodes.UNAVAILABLE, `${this.address}: unexpected frame type ${f.type}`));
        return;
      }
      const res = decodeClientResponse(f.body);
      const cb = this.pending.get(res.requestId);
      if (cb === undefined) {
        this.logger?.debug({ address: this.address, requestId: res.requestId }, 'tidemark client: late or unknown response ignored');
        return;
      }
      cb({ kind: 'response', res });
    } catch (err) {
      this.fail(new TidemarkError(ErrorCodes.UNAVAILABLE, `${this.address}: ${(err as Error).message}`, { cause: err }));
    }
  }

  private fail(err: TidemarkError): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closeError = err;
    this.socket.destroy();
    this.onGone(this);
    for (const send of this.waiting.splice(0)) send(); // each finishes as not written
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const cb of pending) cb({ kind: 'failed', written: true, error: err });
  }
}

/**
 * A client of a tidemark cluster. Calls may run concurrently (they are pipelined on one
 * connection per node). See the module documentation for what each error code means.
 *
 * ```ts
 * const client = new Client({ nodes: ['127.0.0.1:7001', '127.0.0.1:7002'], clusterId: 'demo' });
 * const { index } = await client.propose(Buffer.from('put k v'));
 * await client.close();
 * ```
 */
export class Client {
  /** The session id every proposal carries. */
  readonly clientId: string;
  private readonly nodes: string[];
  private readonly clusterId: string;
  private readonly timeoutMs: number;
  private readonly totalTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly maxFrameBytes: number;
  private readonly random: SeededRandom;
  private readonly logger: Logger | undefined;
  private readonly tls: ClientTls | undefined;
  private readonly conns = new Map<string, NodeConnection>();
  private leader: string | null = null;
  private next = 0;
  private nextSeq = 1;
  private readonly outstanding = new Set<number>();
  private closed = false;

  constructor(options: ClientOptions) {
    if (!Array.isArray(options?.nodes) || options.nodes.length === 0) throw TidemarkError.invalidArgument('Client: nodes must be a non-empty array of host:port');
    for (const a of options.nodes) parseAddress(a);
    if (typeof options.clusterId !== 'string' || options.clusterId.length === 0 || Buffer.byteLength(options.clusterId) > ID_MAX_BYTES) {
      throw TidemarkError.invalidArgument('Client: clusterId must be a string of 1..255 bytes');
    }
    const clientId = options.clientId ?? randomUUID();
    if (typeof clientId !== 'string' || clientId.length === 0 || Buffer.byteLength(clientId) > ID_MAX_BYTES) {
      throw TidemarkError.invalidArgument('Client: clientId must be a string of 1..255 bytes');
    }
    this.clientId = clientId;
    this.nodes = [...options.nodes];
    this.clusterId = options.clusterId;
    this.timeoutMs = positive('timeoutMs', options.timeoutMs, 2000);
    this.totalTimeoutMs = positive('totalTimeoutMs', options.totalTimeoutMs, 5 * this.timeoutMs);
    this.maxAttempts = positive('maxAttempts', options.maxAttempts, 50);
    this.backoffBaseMs = positive('backoffBaseMs', options.backoffBaseMs, 10);
    this.backoffMaxMs = positive('backoffMaxMs', options.backoffMaxMs, 500);
    this.maxFrameBytes = positive('maxFrameBytes', options.maxFrameBytes, PEER_MAX_FRAME_BYTES_DEFAULT);
    this.random = new SeededRandom(options.seed ?? randomInt(0x7fff_ffff));
    this.logger = options.logger;
    this.tls = options.tls;
    this.next = this.random.int(this.nodes.length);
  }

  /**
   * Proposes a command; resolves once the cluster applied it.
   * @throws `TM_UNKNOWN_OUTCOME` when it may have been applied; another code when it was not (see the module docs).
   */
  async propose(payload: Uint8Array): Promise<ClientResult> {
    checkPayload(payload);
    const seq = this.nextSeq++;
    this.outstanding.add(seq);
    try {
      return await this.call('propose', payload, seq, undefined, null);
    } finally {
      this.outstanding.delete(seq);
    }
  }

  /** Reads through the state machine. Never `TM_UNKNOWN_OUTCOME` (a read changes nothing). */
  async read(payload: Uint8Array, options: ReadOptions = {}): Promise<ClientResult> {
    checkPayload(payload);
    const mode = options.mode ?? 'linearizable';
    if (mode !== 'linearizable' && mode !== 'follower') throw TidemarkError.invalidArgument(`Client.read: mode must be 'linearizable' or 'follower'`);
    return this.call('read', payload, 0, mode, null);
  }

  /**
   * A node's status document (JSON, as the node writes it). `node` is an address; default:
   * the node the client talks to now. Not redirected: the answer is that node's view.
   */
  async status(node?: string): Promise<Record<string, unknown>> {
    if (node !== undefined) parseAddress(node);
    const { result } = await this.call('status', new Uint8Array(0), 0, undefined, node ?? null);
    try {
      return JSON.parse(Buffer.from(result).toString('utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new TidemarkError(ErrorCodes.BAD_FRAME, 'Client.status: the node answered with a document that is not JSON', { cause: err });
    }
  }

  /** Closes every connection. Calls in flight reject (`TM_UNKNOWN_OUTCOME` if a proposal was sent, else `TM_CLOSED`). */
  async close(): Promise<void> {
    this.closed = true;
    for (const c of [...this.conns.values()]) c.close();
    this.conns.clear();
  }

  private connection(address: string): NodeConnection {
    let c = this.conns.get(address);
    if (c === undefined || c.state === 'closed') {
      c = new NodeConnection(address, this.clusterId, this.maxFrameBytes, (gone) => {
        if (this.conns.get(address) === gone) this.conns.delete(address);
      }, this.logger, this.tls);
      this.conns.set(address, c);
    }
    return c;
  }

  private target(): string {
    if (this.leader !== null) return this.leader;
    const a = this.nodes[this.next % this.nodes.length]!;
    return a;
  }

  private moveOn(address: string): void {
    if (this.leader === address) this.leader = null;
    if (this.nodes[this.next % this.nodes.length] === address) this.next++;
  }

  private backoff(attempt: number): number {
    const cap = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** Math.min(attempt, 20));
    return Math.ceil(cap / 2) + this.random.int(Math.floor(cap / 2) + 1);
  }

  private async call(
    kind: ClientRequest['kind'],
    payload: Uint8Array,
    seq: number,
    readMode: ClientRequest['readMode'],
    fixedNode: string | null,
  ): Promise<ClientResult> {
    const deadline = performance.now() + this.totalTimeoutMs;
    let uncertain = false; // some attempt may have reached the state machine
    let last: TidemarkError | null = null;
    let lastFromServer = false;
    let attempts = 0;
    let redirects = 0;
    const changes = kind === 'propose';
    const fail = (why: string): TidemarkError => {
      if (changes && uncertain) {
        return new TidemarkError(ErrorCodes.UNKNOWN_OUTCOME, `${kind} seq ${seq} of ${this.clientId}: ${why}; it may or may not have been applied (last: ${last?.message ?? 'none'})`, { cause: last ?? undefined });
      }
      if (last !== null && (lastFromServer || last.code === ErrorCodes.CLOSED)) return last;
      return new TidemarkError(ErrorCodes.UNAVAILABLE, `${kind}: ${why} (last: ${last?.message ?? 'none'})`, { cause: last ?? undefined });
    };
    for (;;) {
      if (this.closed) {
        last = TidemarkError.closed('client');
        throw fail('the client was closed');
      }
      const remaining = deadline - performance.now();
      if (attempts >= this.maxAttempts) throw fail(`${attempts} attempts failed`);
      if (remaining <= 0) throw fail(`no answer within ${this.totalTimeoutMs} ms over ${attempts} attempts`);
      attempts++;
      const address = fixedNode ?? this.target();
      const req: Omit<ClientRequest, 'requestId'> = {
        kind,
        clientId: changes ? this.clientId : '',
        seq,
        ...(readMode !== undefined ? { readMode } : {}),
        ...(changes ? { firstUnackedSeq: this.firstUnacked() } : {}),
        payload,
      };
      const outcome = await this.connection(address).request(req, Math.max(1, Math.min(this.timeoutMs, Math.ceil(remaining))));
      if (outcome.kind === 'response' && outcome.res.ok) {
        // Only a proposal or a linearizable read proves `address` led (a follower read or a status does not).
        if (fixedNode === null && (kind === 'propose' || (kind === 'read' && readMode === 'linearizable'))) this.leader = address;
        return { result: outcome.res.result, index: outcome.res.index };
      }
      let delay = this.backoff(attempts - 1);
      if (outcome.kind === 'failed') {
        if (outcome.written) uncertain = true;
        last = outcome.error;
        lastFromServer = false;
        if (fixedNode === null) this.moveOn(address);
        this.logger?.debug({ address, kind, seq, attempt: attempts, written: outcome.written, err: outcome.error.message }, 'tidemark client: attempt failed');
      } else {
        const res = outcome.res;
        if (res.ok) throw new Error('unreachable');
        if (res.outcome === 'unknown') uncertain = true;
        last = new TidemarkError(codeOf(res.code), `${address}: ${res.message}`, res.leaderId !== undefined ? { leaderId: res.leaderId } : {});
        lastFromServer = true;
        this.logger?.debug({ address, kind, seq, attempt: attempts, code: res.code, outcome: res.outcome, leader: res.leaderAddress }, 'tidemark client: attempt refused');
        if (!RETRYABLE.has(res.code)) throw fail(`refused with ${res.code}`);
        if (res.code === ErrorCodes.NOT_LEADER && fixedNode === null) {
          const hint = res.leaderAddress;
          if (hint !== undefined && hint !== '' && hint !== address && isAddress(hint)) {
            this.leader = hint;
            if (redirects++ < this.nodes.length) delay = 0; // a fresh hint: go at once
          } else {
            this.moveOn(address);
          }
        } else if (res.code === ErrorCodes.BUSY) {
          // Admission control: wait at least as long as the server asks (capped), on the same node.
          if (res.retryAfterMs !== undefined) delay = Math.max(delay, Math.min(res.retryAfterMs, MAX_RETRY_AFTER_MS));
        } else if (fixedNode === null) {
          this.moveOn(address);
        }
      }
      if (delay > 0) {
        const left = deadline - performance.now();
        if (left <= 0) continue; // the loop reports the deadline
        await sleep(Math.min(delay, left));
      }
    }
  }

  private firstUnacked(): number {
    let min = this.nextSeq;
    for (const s of this.outstanding) if (s < min) min = s;
    return min;
  }
}

function isAddress(a: string): boolean {
  try {
    parseAddress(a);
    return true;
  } catch {
    return false;
  }
}

function checkPayload(payload: unknown): void {
  if (!(payload instanceof Uint8Array)) throw TidemarkError.invalidArgument('Client: payload must be a Uint8Array (or Buffer)');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
