/**
 * The contract between the transport (lib/net) and the node (lib/cluster).
 * lib/net implements these; lib/cluster consumes them. Neither imports the
 * other's internals: only this file.
 *
 * @packageDocumentation
 */
import type { Message, NodeId } from '../core/types';

/** Where a node listens or a peer is reached. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

/** Optional pino-compatible logger; library code never writes to the console. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * A client command as it crosses the wire. `clientId` + `seq` make a retried
 * command idempotent (Idempotent Receiver). The payload is opaque to lib/net.
 */
export interface ClientRequest {
  /** Correlates the response on one connection; chosen by the client. */
  readonly requestId: number;
  readonly kind: 'propose' | 'read' | 'status';
  /** Client session id (random, chosen by the client). Empty for reads/status. */
  readonly clientId: string;
  /** Sequence number of this command in the session (1, 2, ...). 0 for reads/status. */
  readonly seq: number;
  /**
   * Optional (added after the first version of this contract): every seq of this session
   * below this value has been answered to the client's caller, so the server may forget
   * their cached results (Raft thesis §6.3 "discard responses"). Absent: unknown.
   */
  readonly firstUnackedSeq?: number;
  /**
   * For `read`: 'linearizable' (read index on the leader) or 'follower'
   * (served at this node's high-water mark, never above it).
   */
  readonly readMode?: 'linearizable' | 'follower';
  /** State-machine command (propose) or query (read); empty for status. */
  readonly payload: Uint8Array;
}

/** The answer to one {@link ClientRequest}. */
export type ClientResponse =
  | {
      readonly requestId: number;
      readonly ok: true;
      /** State-machine result (propose/read) or a JSON status document (status). */
      readonly result: Uint8Array;
      /** Log index the command was applied at, or the read was served at. */
      readonly index: number;
    }
  | {
      readonly requestId: number;
      readonly ok: false;
      /** A TidemarkError code: TM_NOT_LEADER, TM_BUSY, TM_UNKNOWN_OUTCOME, TM_INVALID_ARGUMENT, ... */
      readonly code: string;
      readonly message: string;
      /**
       * 'not-applied': the command definitely did not and will not happen (safe to retry anywhere).
       * 'unknown': it may or may not have been applied (retry with the SAME clientId/seq).
       */
      readonly outcome: 'not-applied' | 'unknown';
      /** For TM_NOT_LEADER: the leader's id and client address, when known. */
      readonly leaderId?: string;
      readonly leaderAddress?: string;
      /** For TM_BUSY (admission control): how long the server suggests waiting before a retry. */
      readonly retryAfterMs?: number;
    };

/** Events the transport reports to the node. */
export interface TransportHandlers {
  /** A replication message from a peer (already checked: cluster id, sender = handshake id). */
  onMessage(msg: Message): void;
  /**
   * The connection to `peer` closed (the kernel's word: a killed process's sockets
   * close at once). The node may start a pre-vote early.
   */
  onPeerDisconnected(peer: NodeId): void;
  /** A client request; call `reply` exactly once. */
  onClientRequest(req: ClientRequest, reply: (res: ClientResponse) => void): void;
}

/** A node's network endpoint: one listening socket, one connection per peer pair. */
export interface Transport {
  /** Starts listening and connecting to peers. Resolves once listening. */
  start(handlers: TransportHandlers): Promise<void>;
  /** Queues `msg` for `msg.to`. Never throws: a full queue or a down peer drops it (Raft tolerates loss). */
  send(msg: Message): void;
  /** Bound address (useful with port 0). */
  address(): Endpoint;
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}
