/** The partition test's TCP proxy: forwards both ways; cut resets and black-holes; heal forwards again. */
import { describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { TcpProxy } from './proxy';

function echoServer(): Promise<net.Server> {
  const s = net.createServer((c) => {
    c.on('error', () => undefined);
    c.pipe(c);
  });
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve(s)));
}

/** Connects, writes `text`, resolves with what came back within `ms` and whether the socket closed. */
function roundTrip(port: number, text: string, ms = 300): Promise<{ got: string; closed: boolean }> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    let got = '';
    let closed = false;
    c.on('data', (d) => (got += d.toString()));
    c.on('error', () => undefined);
    c.on('close', () => (closed = true));
    c.on('connect', () => c.write(text));
    setTimeout(() => {
      c.destroy();
      resolve({ got, closed });
    }, ms);
  });
}

describe('TcpProxy', () => {
  it('forwards, black-holes while cut, resets open connections, forwards again after heal', async () => {
    const echo = await echoServer();
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port: (echo.address() as net.AddressInfo).port });
    try {
      const port = proxy.endpoint().port;
      expect((await roundTrip(port, 'hello')).got).toBe('hello');

      const open = net.connect(port, '127.0.0.1');
      const openClosed = new Promise<void>((resolve) => open.on('close', () => resolve()));
      open.on('error', () => undefined);
      await new Promise<void>((resolve) => open.on('connect', () => resolve()));
      proxy.cut();
      await openClosed;

      const during = await roundTrip(port, 'lost');
      expect(during.got).toBe('');
      expect(during.closed).toBe(false);

      proxy.heal();
      expect((await roundTrip(port, 'again')).got).toBe('again');
    } finally {
      await proxy.close();
      echo.close();
    }
  });
});
