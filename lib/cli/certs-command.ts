/**
 * `tidemark certs --dir DIR --nodes n1,n2,n3 [--clients c1,...] [--days N] [--openssl BIN]`:
 * the certificates of a test (or small) cluster, made with the `openssl` binary (which
 * must be on PATH; a clear error says so otherwise):
 *
 * - `ca.key`, `ca.crt`: a P-256 CA (kept and reused when DIR already has both, so nodes
 *   can be added later);
 * - per node `ID.key`, `ID.crt`: signed by the CA, subject CN and DNS subject alternative
 *   name equal to the node id — what lib/net checks against the id a peer claims;
 * - per client `NAME.key`, `NAME.crt`: signed by the CA, CN = the name (clients are not
 *   checked against a name, only against the CA, when `--require-client-cert` is on).
 *
 * Keys are written with mode 0600. Nothing here is specific to a test: for production, use
 * your own CA and the same naming rule (the node id in a SAN or the CN).
 *
 * @packageDocumentation
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes, TidemarkError } from '../errors';
import { CliUsageError, integerOption, parseNodeId, parseOptions } from './cluster-args';

/** What {@link makeCertificates} wrote (absolute paths). */
export interface CertificateSet {
  readonly caCert: string;
  readonly caKey: string;
  /** By node id or client name. */
  readonly certs: Record<string, { readonly cert: string; readonly key: string }>;
  /** Whether an existing CA in the directory was reused. */
  readonly reusedCa: boolean;
}

/** Options of {@link makeCertificates}. */
export interface MakeCertificatesOptions {
  readonly dir: string;
  readonly nodes: readonly string[];
  readonly clients?: readonly string[];
  /** Validity in days. Default 365. */
  readonly days?: number;
  /** The openssl binary. Default `openssl` (looked up on PATH). */
  readonly openssl?: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function run(openssl: string, cwd: string, args: string[]): void {
  try {
    execFileSync(openssl, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') {
      throw new TidemarkError(ErrorCodes.IO, `tidemark certs needs the openssl binary ('${openssl}' was not found on PATH): install OpenSSL, or make the certificates yourself as docs/net.md shows`, { cause: err });
    }
    throw new TidemarkError(ErrorCodes.IO, `openssl ${args[0] ?? ''} failed: ${e.stderr?.toString().trim() || e.message}`, { cause: err });
  }
}

/** Makes (or extends) a CA and certificates in `dir`; see the module documentation. */
export function makeCertificates(options: MakeCertificatesOptions): CertificateSet {
  const dir = path.resolve(options.dir);
  const openssl = options.openssl ?? 'openssl';
  const days = String(options.days ?? 365);
  const names = [...options.nodes, ...(options.clients ?? [])];
  if (new Set(names).size !== names.length) throw TidemarkError.invalidArgument('certs: a name is given twice (node ids and client names must all differ)');
  for (const n of names) if (n === 'ca') throw TidemarkError.invalidArgument("certs: 'ca' is the CA's file name; pick another name");
  fs.mkdirSync(dir, { recursive: true });
  const caKey = path.join(dir, 'ca.key');
  const caCert = path.join(dir, 'ca.crt');
  const reusedCa = fs.existsSync(caKey) && fs.existsSync(caCert);
  if (!reusedCa) {
    run(openssl, dir, ['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=tidemark-ca', '-days', days, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    fs.chmodSync(caKey, 0o600);
  }
  const certs: Record<string, { cert: string; key: string }> = {};
  const make = (name: string, node: boolean) => {
    const ext = path.join(dir, `${name}.ext`);
    // Node certificates serve (accept) and dial, so they carry both usages; a client's only dials.
    fs.writeFileSync(ext, `${node ? `subjectAltName=DNS:${name}\n` : ''}basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=${node ? 'serverAuth,clientAuth' : 'clientAuth'}\n`);
    try {
      run(openssl, dir, ['req', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
      fs.chmodSync(path.join(dir, `${name}.key`), 0o600);
      run(openssl, dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', days, '-extfile', `${name}.ext`]);
    } finally {
      fs.rmSync(ext, { force: true });
      fs.rmSync(path.join(dir, `${name}.csr`), { force: true });
    }
    certs[name] = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  };
  for (const n of options.nodes) make(n, true);
  for (const c of options.clients ?? []) make(c, false);
  return { caCert, caKey, certs, reusedCa };
}

function nameList(value: string | undefined, flag: string): string[] {
  if (value === undefined || value.trim() === '') return [];
  return value.split(',').map((s) => parseNodeId(s.trim(), flag));
}

/** `tidemark certs ...`; resolves with the exit code. */
export async function runCertsCommand(args: string[], print: (line: string) => void): Promise<number> {
  const { values } = parseOptions(args, { dir: { type: 'string' }, nodes: { type: 'string' }, clients: { type: 'string' }, days: { type: 'string' }, openssl: { type: 'string' } }, 'certs');
  if (values.dir === undefined) throw new CliUsageError('certs: --dir DIR is required');
  const nodes = nameList(values.nodes, '--nodes');
  if (nodes.length === 0) throw new CliUsageError('certs: --nodes ID,ID,... is required');
  const days = integerOption(values.days, '--days', 1, 36_500);
  const set = makeCertificates({
    dir: values.dir,
    nodes,
    clients: nameList(values.clients, '--clients'),
    ...(days === undefined ? {} : { days }),
    ...(values.openssl === undefined ? {} : { openssl: values.openssl }),
  });
  print(`${set.reusedCa ? 'reused' : 'created'} CA ${set.caCert}`);
  for (const [name, c] of Object.entries(set.certs)) print(`${nodes.includes(name) ? 'node' : 'client'} ${name}: ${c.cert} ${c.key}`);
  print(`start a node with: tidemark node --id ${nodes[0] as string} --tls-cert ${set.certs[nodes[0] as string]?.cert ?? ''} --tls-key ${set.certs[nodes[0] as string]?.key ?? ''} --tls-ca ${set.caCert} ...`);
  return 0;
}
