/**
 * The issuance benchmark's floor: a node:http server that does nothing a CA does. Each request's
 * JSON body is read and parsed and a fixed 201 JSON answer of an issued certificate's size
 * (~2.7 KB: a leaf and its chain as PEM) is sent, in SIGNET_WORKERS cluster workers like Signet.
 * What it sustains under the same load generator on the same cores is the most any Node
 * issuer could answer there, before a single signature, hash or commit.
 *
 *   node bench/servers/http-floor.mjs <port> [workers]
 */
import cluster from 'node:cluster';
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const workers = Number(process.argv[3] ?? 2);
const pem = (n) => `-----BEGIN CERTIFICATE-----\n${'A'.repeat(n).replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
const answer = JSON.stringify({
  serial: '4f'.repeat(16),
  certificate: pem(760),
  chain: [pem(800), pem(700)],
  notBefore: new Date().toISOString(),
  notAfter: new Date(Date.now() + 90 * 864e5).toISOString(),
  profile: 'server',
  caId: '00000000-0000-4000-8000-000000000000',
});

if (cluster.isPrimary && workers > 1) {
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(201, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(answer) });
      res.end(answer);
    });
  }).listen(port, '127.0.0.1');
}
