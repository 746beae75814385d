/**
 * Test certificates made with the openssl command line: a CA, and per name a key and a
 * certificate signed by it whose subject CN and DNS subject alternative name are the name
 * (how a node certificate names its node id). A second call with another directory makes an
 * unrelated CA (a "rogue" one).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Pem {
  readonly key: string;
  readonly cert: string;
}
export interface TestPki {
  readonly ca: string;
  readonly certs: Record<string, Pem>;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

export function makePki(dir: string, caName: string, names: readonly string[]): TestPki {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, ['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', `/CN=${caName}`, '-days', '2']);
  const certs: Record<string, Pem> = {};
  for (const name of names) {
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=DNS:${name}\nbasicConstraints=CA:FALSE\n`);
    openssl(dir, ['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
    certs[name] = { key: readFileSync(join(dir, `${name}.key`), 'utf8'), cert: readFileSync(join(dir, `${name}.crt`), 'utf8') };
  }
  return { ca: readFileSync(join(dir, 'ca.crt'), 'utf8'), certs };
}
