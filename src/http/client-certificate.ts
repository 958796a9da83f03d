/**
 * The TLS client certificate of a request, as the HTTPS listener received it (serve.ts asks for
 * one with requestCert and lets the handshake succeed without one or with any other:
 * rejectUnauthorized false). Which certificates authenticate whom is decided in
 * ca/holder-authentication.ts, never here: this only reads the bytes.
 */
import type { IncomingMessage } from 'node:http';
import { TLSSocket } from 'node:tls';
import { SignetError } from '../errors.js';

/**
 * The DER of the certificate the client presented (its leaf), or null when it presented none.
 * A request that did not arrive over TLS (the plain HTTP listener, or TLS ended at a proxy) is
 * refused (401): no certificate can have been proved on it.
 */
export function presentedCertificate(req: IncomingMessage): Uint8Array | null {
  const socket = req.socket;
  if (!(socket instanceof TLSSocket))
    throw new SignetError(
      'unauthorized',
      'this request authenticates with a TLS client certificate, which plain HTTP cannot carry: send it to the HTTPS listener (SIGNET_TLS=on, SIGNET_TLS_PORT) with the certificate and its private key, e.g. curl --cert cert.pem --key key.pem -X POST https://<host>:<port>/api/v1/certificates/renew',
    );
  const cert = socket.getPeerX509Certificate();
  return cert ? new Uint8Array(cert.raw) : null;
}
