/**
 * Mutual TLS (issue 13) as an option of TcpTransport and Client: peers authenticate with
 * certificates from the cluster CA that name their node id; a valid certificate of one node
 * cannot be used to pose as another; a certificate from another CA, plain TCP, and clients
 * without a certificate (when one is required) are refused, each with a counted reason,
 * while the real peers keep talking.
 */
import * as tls from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '../../lib/index';
import { encodeHandshake, FrameDecoder, FrameTypes, PROTOCOL_VERSION, decodeReject } from '../../lib/net/codec';
import { certificateNames } from '../../lib/net/transport';
import { makePki, type TestPki } from './certs';
import { freePorts, heartbeat, HOST, rawConnect, startNode, waitFor, type TestNode } from './net-helpers';

let pki: TestPki;
let rogue: TestPki;
beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-tls-'));
  const rogueDir = mkdtempSync(join(tmpdir(), 'tidemark-tls-rogue-'));
  try {
    pki = makePki(dir, 'tidemark test CA', ['n1', 'n2', 'n3', 'client']);
    rogue = makePki(rogueDir, 'rogue CA', ['n1', 'n2']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(rogueDir, { recursive: true, force: true });
  }
});

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((x) => x.close()));
});

const tlsFor = (name: string, extra: { requireClientCert?: boolean } = {}) => ({ ...pki.certs[name]!, ca: pki.ca, ...extra });

async function tlsPair(extra: { requireClientCert?: boolean } = {}): Promise<{ n1: TestNode; n2: TestNode; p1: number; p2: number }> {
  const [p1, p2] = await freePorts(2);
  const n2 = await startNode('n2', p2!, { n1: { host: HOST, port: p1! } }, { tls: tlsFor('n2', extra), limits: { handshakeTimeoutMs: 3000 } });
  open.push(n2.transport);
  const n1 = await startNode('n1', p1!, { n2: { host: HOST, port: p2! } }, { tls: tlsFor('n1') });
  open.push(n1.transport);
  return { n1, n2, p1: p1!, p2: p2! };
}

/** A TLS connection with the given credentials that sends `bytes` and records what comes back. */
async function tlsRaw(port: number, creds: { key?: string; cert?: string; ca: string }, bytes: Buffer): Promise<{ frames: ReturnType<FrameDecoder['push']>['frames']; closed: Promise<void> }> {
  const socket = tls.connect({ host: HOST, port, ...creds, checkServerIdentity: () => undefined });
  const dec = new FrameDecoder(1 << 20);
  const frames: ReturnType<FrameDecoder['push']>['frames'] = [];
  socket.on('data', (c: Buffer) => frames.push(...dec.push(c).frames));
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.on('close', () => r()));
  await new Promise<void>((resolve) => {
    socket.once('secureConnect', resolve);
    socket.once('close', resolve);
  });
  if (!socket.destroyed) socket.write(bytes);
  return { frames, closed };
}

const hsAs = (nodeId: string) => encodeHandshake({ protocolVersion: PROTOCOL_VERSION, clusterId: 'test-cluster', role: 'peer', nodeId });

describe('mutual TLS', () => {
  it('certificate names: SAN DNS entries and the CN', () => {
    expect(certificateNames({ subject: { CN: 'n1' }, subjectaltname: 'DNS:n1, IP Address:127.0.0.1, DNS:alias' } as unknown as tls.PeerCertificate)).toEqual(['n1', 'alias', 'n1']);
    expect(certificateNames(undefined)).toEqual([]);
  });

  it('peers exchange messages over mutual TLS', async () => {
    const { n1, n2 } = await tlsPair();
    await waitFor(() => n1.transport.isConnected('n2') && n2.transport.isConnected('n1'), 'TLS peers connected');
    n1.transport.send(heartbeat('n1', 'n2', 1));
    n2.transport.send(heartbeat('n2', 'n1', 2));
    await waitFor(() => n1.received.length === 1 && n2.received.length === 1, 'messages both ways');
    expect(n2.log.lines.some((l) => l.msg?.includes('mutual TLS'))).toBe(true);
  });

  it('refuses impersonation with another node\'s valid certificate, a rogue CA, plain TCP; the real peer keeps talking', async () => {
    const { n1, n2, p2 } = await tlsPair();
    await waitFor(() => n2.transport.isConnected('n1'), 'n1 connected');
    let sent = 0;
    const pump = setInterval(() => n1.transport.send(heartbeat('n1', 'n2', ++sent)), 5);
    try {
      // n3's real certificate, claiming to be n1
      const imp = await tlsRaw(p2, { ...pki.certs.n3!, ca: pki.ca }, hsAs('n1'));
      await imp.closed;
      expect(n2.transport.stats().rejected['tls-identity']).toBe(1);
      expect(imp.frames.map((f) => f.type === FrameTypes.REJECT && decodeReject(f.body).reason)).toContain('tls-identity');
      // a certificate for "n1" from another CA
      const rog = await tlsRaw(p2, { ...rogue.certs.n1!, ca: pki.ca }, hsAs('n1'));
      await rog.closed;
      expect(n2.transport.stats().rejected['tls-unauthorized']).toBe(1);
      // no certificate at all
      const none = await tlsRaw(p2, { ca: pki.ca }, hsAs('n1'));
      await none.closed;
      expect(n2.transport.stats().rejected['tls-unauthorized']).toBe(2);
      // plain TCP speaking tidemark to the TLS port
      const plain = await rawConnect(p2);
      plain.socket.write(hsAs('n1'));
      await plain.closedPromise;
      await waitFor(() => (n2.transport.stats().rejected['tls-error'] ?? 0) === 1, 'tls-error counted');
      const got = n2.received.length;
      await waitFor(() => n2.received.length > got + 2, 'real n1 still talking');
      expect(n2.received.every((m) => m.from === 'n1')).toBe(true);
      expect(n2.disconnects).toEqual([]);
    } finally {
      clearInterval(pump);
    }
  });

  it('the dialing side refuses a server whose certificate does not name the peer it dialed', async () => {
    const [p1, p2] = await freePorts(2);
    // at n2's address listens a node holding n3's certificate
    const fake = await startNode('n2', p2!, { n1: { host: HOST, port: p1! } }, { tls: tlsFor('n3') });
    open.push(fake.transport);
    const n1 = await startNode('n1', p1!, { n2: { host: HOST, port: p2! } }, { tls: tlsFor('n1'), reconnectBaseMs: 50, reconnectMaxMs: 200 });
    open.push(n1.transport);
    await waitFor(() => n1.log.lines.some((l) => l.obj.reason === 'tls-error' && String(l.obj.detail).includes('does not name n2')), 'n1 refuses the impostor');
    expect(n1.transport.isConnected('n2')).toBe(false);
    expect(fake.received).toEqual([]);
  });

  it('clients: CA-verified TLS; when client certificates are required, one without is refused', async () => {
    const { n2, p2 } = await tlsPair({ requireClientCert: true });
    n2.onClient = (req, reply) => reply({ requestId: req.requestId, ok: true, index: 5, result: req.payload });
    const noCert = new Client({ nodes: [`${HOST}:${p2}`], clusterId: 'test-cluster', tls: { ca: pki.ca }, timeoutMs: 5000, maxAttempts: 2 });
    open.push(noCert);
    await expect(noCert.propose(Buffer.from('x'))).rejects.toMatchObject({ code: 'TM_UNAVAILABLE' });
    expect(n2.transport.stats().rejected['tls-unauthorized']).toBeGreaterThanOrEqual(1);
    const withCert = new Client({ nodes: [`${HOST}:${p2}`], clusterId: 'test-cluster', tls: { ca: pki.ca, ...pki.certs.client! }, timeoutMs: 5000 });
    open.push(withCert);
    const r = await withCert.propose(Buffer.from('hello'));
    expect(Buffer.from(r.result).toString()).toBe('hello');
    expect(r.index).toBe(5);
  });

  it('reloadTls: new connections use the new material, open ones keep working; bad PEM is refused', async () => {
    const { n1, n2, p2 } = await tlsPair();
    await waitFor(() => n2.transport.isConnected('n1'), 'n1 connected');
    expect(() => n2.transport.reloadTls({ key: 'not a key', cert: 'nope', ca: pki.ca })).toThrow(/TM_INVALID_ARGUMENT/);
    n2.transport.reloadTls({ ...rogue.certs.n2!, ca: rogue.ca }); // a whole new CA
    const verifies = (ca: string) =>
      new Promise<boolean>((resolve) => {
        const s = tls.connect({ host: HOST, port: p2, ca, checkServerIdentity: () => undefined });
        s.once('secureConnect', () => {
          resolve(true);
          s.destroy();
        });
        s.once('error', () => resolve(false));
      });
    expect(await verifies(rogue.ca)).toBe(true);
    expect(await verifies(pki.ca)).toBe(false);
    const got = n2.received.length;
    n1.transport.send(heartbeat('n1', 'n2', 99));
    await waitFor(() => n2.received.length > got, 'the open connection still works');
    expect(n1.transport.isConnected('n2')).toBe(true);
  });
});
