/** Small helpers for the wire tests: normalising decoded values, decoding any frame. */
import {
  decodeClientRequest,
  decodeClientResponse,
  decodeHandshake,
  decodeMessage,
  decodeReject,
  FrameTypes,
  isMessageFrameType,
  type Frame,
} from '../../lib/net/codec';

/** Deep copy with every Uint8Array (Buffer or view) turned into a plain array, for toEqual. */
export function norm(x: unknown): unknown {
  if (x instanceof Uint8Array) return { bytes: Array.from(x) };
  if (Array.isArray(x)) return x.map(norm);
  if (x !== null && typeof x === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) out[k] = norm(v);
    return out;
  }
  return x;
}

/** Decodes a frame's body by its type. @throws TM_BAD_FRAME */
export function decodeAny(f: Frame): unknown {
  if (isMessageFrameType(f.type)) return decodeMessage(f.type, f.body);
  switch (f.type) {
    case FrameTypes.HANDSHAKE:
      return decodeHandshake(f.body);
    case FrameTypes.REJECT:
      return decodeReject(f.body);
    case FrameTypes.CLIENT_REQUEST:
      return decodeClientRequest(f.body);
    case FrameTypes.CLIENT_RESPONSE:
      return decodeClientResponse(f.body);
    default:
      throw new Error(`no decoder for type ${f.type}`);
  }
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}
