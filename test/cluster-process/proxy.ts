/**
 * A TCP proxy the partition test puts between every two nodes (one per directed
 * pair: node A dials B through proxy A→B). `cut()` severs the link: existing
 * connections are reset and new ones are accepted but black-holed (bytes read and
 * dropped, nothing forwarded), as a network partition looks to the node that dials.
 * `heal()` resets the black-holed connections and forwards new ones again.
 */
import * as net from 'node:net';
import type { Endpoint } from '../../lib/net/api';

export class TcpProxy {
  private readonly server: net.Server;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  private readonly holes = new Set<net.Socket>();
  private severed = false;
  /** Connections accepted so far (forwarded or black-holed). */
  accepted = 0;

  private constructor(private readonly target: Endpoint) {
    this.server = net.createServer((client) => this.accept(client));
  }

  /** A proxy on 127.0.0.1 (a free port) forwarding to `target`. */
  static async start(target: Endpoint): Promise<TcpProxy> {
    const p = new TcpProxy(target);
    await new Promise<void>((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(0, '127.0.0.1', () => resolve());
    });
    return p;
  }

  /** Where nodes should dial. */
  endpoint(): Endpoint {
    return { host: '127.0.0.1', port: (this.server.address() as net.AddressInfo).port };
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    client.on('error', () => undefined);
    if (this.severed) {
      this.holes.add(client);
      client.on('data', () => undefined);
      client.on('close', () => this.holes.delete(client));
      return;
    }
    const upstream = net.connect(this.target.port, this.target.host);
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    upstream.on('error', () => undefined);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    this.pairs.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const done = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', done);
    upstream.on('close', done);
  }

  /** Severs the link (see the file comment). */
  cut(): void {
    this.severed = true;
    for (const [a, b] of this.pairs) {
      a.resetAndDestroy();
      b.resetAndDestroy();
    }
    this.pairs.clear();
  }

  /** Restores the link. */
  heal(): void {
    this.severed = false;
    for (const s of this.holes) s.resetAndDestroy();
    this.holes.clear();
  }

  /** Closes the listener and every connection. */
  async close(): Promise<void> {
    this.cut();
    for (const s of this.holes) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
