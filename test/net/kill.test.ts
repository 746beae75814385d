/**
 * A SIGKILLed peer process: the kernel closes its sockets at once, so the survivor reports
 * onPeerDisconnected without waiting for any timeout (the early-election signal of issue 9),
 * whichever side dialed; after a restart on the same port the pair reconnects.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnTs, type TsChild } from '../helpers';
import { freePorts, heartbeat, HOST, startNode, waitFor, type TestNode } from './net-helpers';

const CHILD = join(__dirname, 'peer-child.ts');
const children: TsChild[] = [];
const nodes: TestNode[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill();
  await Promise.all(nodes.splice(0).map((n) => n.transport.close()));
});

describe('SIGKILL of a peer process', () => {
  for (const [me, other, role, restart] of [['n2', 'n1', 'the dialer', false], ['n1', 'n2', 'the acceptor', true]] as const) {
    it(`killing ${role} (${other}) is reported by ${me} without a timeout${restart ? ', and the pair reconnects after a restart' : ''}`, async () => {
      const [pMe, pOther] = await freePorts(2);
      const node = await startNode(me, pMe!, { [other]: { host: HOST, port: pOther! } }, { reconnectBaseMs: 10, reconnectMaxMs: 100 });
      nodes.push(node);
      const start = (): TsChild => {
        const c = spawnTs(CHILD, [other, String(pOther), me, String(pMe)]);
        children.push(c);
        return c;
      };
      const child = start();
      await child.waitFor((l) => l === 'connected');
      await waitFor(() => node.transport.isConnected(other), 'connected');
      node.transport.send(heartbeat(me, other, 1));
      await waitFor(() => node.received.some((m) => m.type === 'heartbeat-response'), 'echo');
      child.kill('SIGKILL');
      const killedAt = performance.now();
      // the transport has no liveness timer on an established connection: this comes from the socket closing
      await waitFor(() => node.disconnects.includes(other), 'onPeerDisconnected after SIGKILL');
      expect(node.transport.isConnected(other)).toBe(false);
      if (process.env.TIDEMARK_PRINT_KILL_GAP === '1') console.log(`${role}: disconnect seen ${(performance.now() - killedAt).toFixed(1)} ms after SIGKILL returned`);
      if (!restart) return;
      const again = start();
      await again.waitFor((l) => l === 'connected');
      const before = node.received.length;
      node.transport.send(heartbeat(me, other, 2));
      await waitFor(() => node.received.length > before, 'echo after the restart');
    });
  }
});
