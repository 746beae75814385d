/**
 * Mutual TLS between real node processes, with certificates made by `tidemark certs`:
 * three nodes elect a leader and commit with client certificates required; a client
 * without a certificate is refused (and the node logs and counts why); a connection with a
 * valid certificate of the cluster that claims another node's id is refused
 * (`tls-identity`); a certificate replaced on disk is served to new connections after a
 * SIGHUP, without a restart. Also `tidemark certs`' clear error without openssl.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { makeCertificates } from '../../lib/cli/certs-command';
import { openKv, probeStatus } from '../../lib/cli/wiring';
import { closedWith, connectRaw, loggedRefusals, peerHandshake, refusalMetrics } from './edge';
import { eventually, testCluster } from './harness';

const root = path.join(__dirname, '..', '..');
const cli = [process.execPath, '--import', 'tsx', path.join(root, 'lib', 'cli', 'main.ts')];

function tmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-tls-'));
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

describe('cluster processes: mutual TLS', () => {
  it('tidemark certs: a cluster elects and commits; no client cert, or a stolen identity, is refused; SIGHUP reloads', { timeout: 90_000 }, async () => {
    const certDir = tmp();
    // Through the CLI, as a user would.
    const out = execFileSync(cli[0] as string, [...cli.slice(1), 'certs', '--dir', certDir, '--nodes', 'n1,n2,n3', '--clients', 'c1', '--days', '2'], { encoding: 'utf8' });
    expect(out).toContain('created CA');
    for (const f of ['ca.crt', 'ca.key', 'n1.crt', 'n1.key', 'n2.crt', 'n3.crt', 'c1.crt', 'c1.key']) expect(fs.existsSync(path.join(certDir, f)), f).toBe(true);
    expect(fs.statSync(path.join(certDir, 'n1.key')).mode & 0o077).toBe(0);
    expect(new X509Certificate(fs.readFileSync(path.join(certDir, 'n2.crt'))).subjectAltName).toBe('DNS:n2');

    const pem = (f: string) => fs.readFileSync(path.join(certDir, f), 'utf8');
    const clientTls = { ca: pem('ca.crt'), cert: pem('c1.crt'), key: pem('c1.key') };
    const { cluster } = await testCluster({
      metrics: true,
      nodeArgsFor: (id) => ['--tls-cert', path.join(certDir, `${id}.crt`), '--tls-key', path.join(certDir, `${id}.key`), '--tls-ca', path.join(certDir, 'ca.crt'), '--require-client-cert'],
      probe: (e, t, c) => probeStatus(e, t, c, clientTls),
    });
    const leader = await cluster.waitForLeader(30_000);
    const kv = openKv(cluster.endpoints(), { timeoutMs: 5000, tls: clientTls });
    onTestFinished(() => kv.close());
    for (let i = 0; i < 20; i++) await kv.put(`k${i}`, `v${i}`);
    expect((await kv.get('k19')).value).toBe('v19');
    for (const id of cluster.ids()) {
      await eventually(`${id} logs mutual TLS`, () => fs.readFileSync(cluster.logFile(id), 'utf8').includes('listening (mutual TLS)'));
      expect(fs.readFileSync(cluster.logFile(id), 'utf8')).not.toContain('PLAIN TCP');
    }

    // A client with the CA but no certificate of its own: refused.
    const port = cluster.endpoint(leader.id).port;
    const noCert = openKv([cluster.endpoint(leader.id)], { timeoutMs: 2000, tls: { ca: pem('ca.crt') } });
    const err = await noCert.put('nope', 'x').then(() => undefined, (e: unknown) => e as { code?: string });
    await noCert.close();
    expect(err?.code).toBe('TM_UNAVAILABLE');
    await eventually('tls-unauthorized logged', () => (loggedRefusals(cluster, leader.id)['tls-unauthorized'] ?? 0) > 0);
    expect(refusalMetrics(await cluster.metrics(leader.id))['tls-unauthorized']).toBeGreaterThan(0);

    // Node n1's valid certificate presented to n3 by a connection claiming to be n2 (n2 dials n3): refused.
    const imp = await connectRaw(cluster.endpoint('n3').port, { ca: pem('ca.crt'), cert: pem('n1.crt'), key: pem('n1.key') });
    imp.socket.write(peerHandshake('tidemark', 'n2'));
    expect(await closedWith(imp)).toBe('tls-identity');
    // The node's log file can trail the refusal by a moment: wait for the line (as above).
    await eventually('tls-identity logged', () => (loggedRefusals(cluster, 'n3')['tls-identity'] ?? 0) > 0);
    expect(refusalMetrics(await cluster.metrics('n3'))['tls-identity']).toBeGreaterThan(0);
    // A certificate from another CA ("another cluster"): the TLS layer refuses it.
    const rogueDir = tmp();
    const rogue = makeCertificates({ dir: rogueDir, nodes: ['n2'], days: 2 });
    const r2 = await connectRaw(cluster.endpoint('n3').port, { ca: pem('ca.crt'), cert: fs.readFileSync(rogue.certs.n2!.cert), key: fs.readFileSync(rogue.certs.n2!.key) });
    if (!r2.closed) r2.socket.write(peerHandshake('tidemark', 'n2'));
    await closedWith(r2);
    await eventually('rogue CA refused', () => (loggedRefusals(cluster, 'n3')['tls-unauthorized'] ?? 0) + (loggedRefusals(cluster, 'n3')['tls-error'] ?? 0) > 0);

    // SIGHUP: n1's certificate replaced on disk is what new connections see; no restart.
    const fingerprint = async () => {
      const c = await connectRaw(cluster.endpoint('n1').port, { ca: pem('ca.crt'), cert: pem('c1.crt'), key: pem('c1.key') });
      const fp = (c.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256;
      c.socket.destroy();
      return fp;
    };
    const oldFp = new X509Certificate(pem('n1.crt')).fingerprint256;
    expect(await fingerprint()).toBe(oldFp);
    const pid = cluster.pid('n1');
    makeCertificates({ dir: certDir, nodes: ['n1'], days: 2 }); // same CA, new key and certificate
    const newFp = new X509Certificate(pem('n1.crt')).fingerprint256;
    expect(newFp).not.toBe(oldFp);
    expect(await fingerprint(), 'before SIGHUP the node still serves its old certificate').toBe(oldFp);
    cluster.signal('n1', 'SIGHUP');
    await eventually('reload logged', () => fs.readFileSync(cluster.logFile('n1'), 'utf8').includes('TLS certificates reloaded'));
    expect(await fingerprint()).toBe(newFp);
    expect(cluster.pid('n1')).toBe(pid);
    await kv.put('after-reload', 'yes');
    expect((await kv.get('after-reload')).value).toBe('yes');
  });

  it('tidemark certs without openssl: a clear error', { timeout: 30_000 }, () => {
    const r = spawnSync(cli[0] as string, [...cli.slice(1), 'certs', '--dir', tmp(), '--nodes', 'n1', '--openssl', '/nonexistent/openssl'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/needs the openssl binary/);
  });
});
