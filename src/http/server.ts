import { createServer, type Server } from 'node:http';
import type { RequestListener, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { SignetError } from '../errors.js';
import { PROBLEM_CONTENT_TYPE } from './edge.js';
import { securityHeaders } from './security-headers.js';

/** The security headers, for problems answered outside the app. */
const SECURITY = Object.entries(securityHeaders());

/** A problem document's headers outside the app: as the edge sends them (edge.ts). */
const problemHeaders = (body: string): string[][] => [...SECURITY, ['content-type', PROBLEM_CONTENT_TYPE], ['content-length', String(Buffer.byteLength(body))]];

/**
 * A problem answered outside the app (the plain-HTTP gate when TLS is on): the same content type
 * and security headers as every other problem document.
 */
export function sendBareProblem(res: ServerResponse, err: SignetError, instance: string): void {
  const body = JSON.stringify(err.toProblem(instance));
  res.writeHead(err.status, problemHeaders(body).flat()).end(body); // node takes a flat name, value list
}

/**
 * Requests node's parser refuses before any handler runs (a header block over maxHeaderSize, a
 * malformed request line, a header timeout) get a problem document like every other refusal,
 * instead of node's bare status line.
 */
export function answerClientErrors(server: Server | HttpsServer, log: Logger): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const code = err.code ?? '';
    if (code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, detail] =
      code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'the request line and headers exceed 16 KiB']
        : code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'the request was not received in time']
          : [400, 'the request is not valid HTTP/1.1'];
    const problem = new SignetError('bad-request', detail, { status }).toProblem();
    problem.title = status === 431 ? 'Request header fields too large' : status === 408 ? 'Request timeout' : 'Bad request';
    const body = JSON.stringify(problem);
    log.info({ code, status }, 'request refused by the HTTP parser');
    const headers = [...problemHeaders(body), ['connection', 'close']];
    socket.end(`HTTP/1.1 ${status} ${problem.title}\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`);
  });
}

/** Starts listening with conservative timeouts (slow-body and slow-header clients are cut off). */
export async function listen(app: RequestListener, host: string, port: number, log: Logger): Promise<Server> {
  const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 }, app);
  server.keepAliveTimeout = 5_000;
  answerClientErrors(server, log);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  log.info({ host, port: typeof addr === 'object' && addr ? addr.port : port, node: process.version, openssl: process.versions.openssl }, 'listening');
  return server;
}

export async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 5_000).unref();
  });
}
