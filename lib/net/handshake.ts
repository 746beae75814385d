/**
 * The handshake rules, pure: what an accepting node does with the first frame of a
 * connection, and what a dialing node accepts as the answer. The transport does the I/O;
 * this file decides. Every refusal has a stable reason (logged and counted by the
 * transport, sent to the other side in a REJECT frame).
 *
 * @packageDocumentation
 */
import type { NodeId } from '../core/types';
import { decodeHandshake, FrameTypes, PROTOCOL_VERSION, type Frame, type Handshake } from './codec';

/** What a node knows when it judges a handshake. */
export interface HandshakeContext {
  readonly nodeId: NodeId;
  readonly clusterId: string;
  /** Ids of the other members. */
  readonly peers: ReadonlySet<NodeId>;
}

/** Why a connection is refused during its handshake. */
export type HandshakeRefusal =
  | 'bad-frame'
  | 'not-handshake'
  | 'wrong-version'
  | 'wrong-cluster'
  | 'unknown-node'
  | 'wrong-direction'
  | 'not-allowed'
  | 'peer-mismatch';

/** The decision on a handshake. */
export type HandshakeVerdict =
  | { readonly ok: true; readonly role: 'peer'; readonly peerId: NodeId }
  | { readonly ok: true; readonly role: 'client' }
  | { readonly ok: false; readonly reason: HandshakeRefusal; readonly message: string };

/** True when `a` dials `b` (of two peers, the one whose id sorts first dials). */
export function dials(a: NodeId, b: NodeId): boolean {
  return a < b;
}

function refuse(reason: HandshakeRefusal, message: string): HandshakeVerdict {
  return { ok: false, reason, message };
}

function common(h: Handshake, ctx: HandshakeContext): HandshakeVerdict | null {
  if (h.protocolVersion !== PROTOCOL_VERSION) return refuse('wrong-version', `protocol version ${h.protocolVersion}, this node speaks ${PROTOCOL_VERSION}`);
  if (h.clusterId !== ctx.clusterId) return refuse('wrong-cluster', `cluster ${JSON.stringify(h.clusterId)}, this node is in ${JSON.stringify(ctx.clusterId)}`);
  return null;
}

/** Decodes the first frame of an accepted connection. Never throws. */
export function readHandshake(f: Frame): Handshake | HandshakeVerdict {
  if (f.type !== FrameTypes.HANDSHAKE) return refuse('not-handshake', `first frame has type ${f.type}`);
  try {
    return decodeHandshake(f.body);
  } catch (err) {
    return refuse('bad-frame', (err as Error).message);
  }
}

/** The accepting side's decision on the first frame of a connection. Never throws. */
export function judgeInbound(f: Frame, ctx: HandshakeContext): HandshakeVerdict {
  const h = readHandshake(f);
  if ('ok' in h) return h;
  const e = common(h, ctx);
  if (e !== null) return e;
  if (h.role === 'client') return { ok: true, role: 'client' };
  if (h.role !== 'peer') return refuse('not-allowed', `role ${h.role} cannot open a connection`);
  if (h.nodeId === ctx.nodeId || !ctx.peers.has(h.nodeId)) return refuse('unknown-node', `node ${JSON.stringify(h.nodeId)} is not a peer of ${ctx.nodeId}`);
  if (dials(ctx.nodeId, h.nodeId)) return refuse('wrong-direction', `${ctx.nodeId} dials ${h.nodeId}, not the other way round`);
  return { ok: true, role: 'peer', peerId: h.nodeId };
}

/** The dialing side's decision on the answer of `expected`. Never throws. */
export function judgeOutbound(f: Frame, expected: NodeId, ctx: HandshakeContext): HandshakeVerdict {
  const h = readHandshake(f);
  if ('ok' in h) return h;
  const e = common(h, ctx);
  if (e !== null) return e;
  if (h.role !== 'peer' || h.nodeId !== expected) return refuse('peer-mismatch', `dialed ${expected}, answered by ${h.role} ${JSON.stringify(h.nodeId)}`);
  return { ok: true, role: 'peer', peerId: h.nodeId };
}
