import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * A self-signed P-256 certificate for a test's TLS server, made by openssl into `dir` (key.pem,
 * cert.pem), valid one day. `ip` adds it as a subject alternative name, so a client that checks the
 * name (Node does) accepts the certificate for that address once it trusts it.
 */
export async function selfSignedCertificate(dir: string, commonName: string, ip?: string): Promise<{ key: string; cert: string }> {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${commonName}`, ...(ip ? ['-addext', `subjectAltName=IP:${ip}`] : []), '-keyout', key, '-out', cert]);
  return { key, cert };
}
