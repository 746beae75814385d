/**
 * A TcpTransport in its own process, for the SIGKILL test: `peer-child.ts <id> <port> <peerId> <peerPort>`.
 * Prints `listening`, then `connected` once its peer connection is up; answers every
 * heartbeat with a heartbeat-response.
 */
import { TcpTransport } from '../../lib/net/transport';

const [id, port, peerId, peerPort] = process.argv.slice(2);
const t = new TcpTransport({
  nodeId: id!,
  clusterId: 'test-cluster',
  listen: { host: '127.0.0.1', port: Number(port) },
  peers: { [peerId!]: { host: '127.0.0.1', port: Number(peerPort) } },
  reconnectBaseMs: 10,
  reconnectMaxMs: 100,
});
void t
  .start({
    onMessage: (m) => {
      if (m.type === 'heartbeat') t.send({ type: 'heartbeat-response', from: id!, to: m.from, clusterId: m.clusterId, generation: m.generation, readRound: m.commit });
    },
    onPeerDisconnected: () => {},
    onClientRequest: () => {},
  })
  .then(() => {
    console.log('listening');
    const poll = setInterval(() => {
      if (t.isConnected(peerId!)) {
        clearInterval(poll);
        console.log('connected');
      }
    }, 5);
  });
