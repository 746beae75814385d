/**
 * An in-process {@link Transport} for tests and examples: nodes of one
 * {@link MemoryNetwork} exchange messages through the event loop (each delivery
 * in its own macrotask, like a socket read). A node can be cut off
 * (`isolate`) and healed; cutting a node off, or closing its transport, tells
 * its peers `onPeerDisconnected`, as a kernel closing a killed process's
 * sockets does. Clients call {@link MemoryNetwork.request}.
 *
 * @packageDocumentation
 */
import { TidemarkError } from '../errors';
import type { Message, NodeId } from '../core/types';
import type { ClientRequest, ClientResponse, Endpoint, Transport, TransportHandlers } from '../net/api';

/** A set of in-process transports that can reach each other. */
export class MemoryNetwork {
  private readonly handlers = new Map<NodeId, TransportHandlers>();
  private readonly isolated = new Set<NodeId>();
  private nextPort = 1;
  /** Messages delivered and dropped (for tests). */
  readonly counts = { delivered: 0, dropped: 0 };
  /** Optional filter: return false to drop a message. */
  filter: ((m: Message) => boolean) | undefined;

  /** The transport of node `id` (one per id at a time). */
  transport(id: NodeId): Transport {
    const port = this.nextPort++;
    let started = false;
    return {
      start: (h: TransportHandlers): Promise<void> => {
        if (this.handlers.has(id)) return Promise.reject(TidemarkError.invalidArgument(`node ${id} is already on this network`));
        this.handlers.set(id, h);
        started = true;
        return Promise.resolve();
      },
      send: (m: Message): void => {
        if (started) this.deliver(m);
      },
      address: (): Endpoint => ({ host: 'memory', port }),
      close: (): Promise<void> => {
        if (started && this.handlers.get(id) !== undefined) {
          started = false;
          this.handlers.delete(id);
          this.announceGone(id);
        }
        return Promise.resolve();
      },
    };
  }

  private announceGone(id: NodeId): void {
    for (const [peer, h] of this.handlers) if (peer !== id) setImmediate(() => h.onPeerDisconnected(id));
  }

  private deliver(m: Message): void {
    if (this.isolated.has(m.from) || this.isolated.has(m.to) || (this.filter !== undefined && !this.filter(m))) {
      this.counts.dropped++;
      return;
    }
    setImmediate(() => {
      const h = this.handlers.get(m.to);
      if (h === undefined || this.isolated.has(m.from) || this.isolated.has(m.to)) {
        this.counts.dropped++;
        return;
      }
      this.counts.delivered++;
      h.onMessage(m);
    });
  }

  /** Cuts `id` off from every peer (messages both ways dropped); peers hear it disconnected. */
  isolate(id: NodeId): void {
    if (this.isolated.has(id)) return;
    this.isolated.add(id);
    this.announceGone(id);
    const h = this.handlers.get(id);
    if (h !== undefined) for (const peer of this.handlers.keys()) if (peer !== id) setImmediate(() => h.onPeerDisconnected(peer));
  }

  /** Reconnects a node cut off by {@link isolate}. */
  heal(id: NodeId): void {
    this.isolated.delete(id);
  }

  /** Sends a client request to node `to`; rejects TM_CLOSED if no such node is up. */
  request(to: NodeId, req: ClientRequest): Promise<ClientResponse> {
    const h = this.handlers.get(to);
    if (h === undefined) return Promise.reject(TidemarkError.closed(`node ${to}`));
    return new Promise<ClientResponse>((resolve) => {
      let replied = false;
      setImmediate(() =>
        h.onClientRequest(req, (res) => {
          if (replied) throw new Error(`node ${to} replied twice to request ${req.requestId}`);
          replied = true;
          resolve(res);
        }),
      );
    });
  }
}
