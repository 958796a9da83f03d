import { createServer, type Server } from 'node:http';
import type { RequestListener } from 'node:http';
import type { Logger } from 'pino';

/** Starts listening with conservative timeouts (slow-body and slow-header clients are cut off). */
export async function listen(app: RequestListener, host: string, port: number, log: Logger): Promise<Server> {
  const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 }, app);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => { server.off('error', reject); resolve(); });
  });
  const addr = server.address();
  log.info({ host, port: typeof addr === 'object' && addr ? addr.port : port }, 'listening');
  return server;
}

export async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 5_000).unref();
  });
}
