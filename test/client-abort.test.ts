/**
 * Issue 12 item 13: a client that closes the connection in the middle of its request body is
 * not a server failure. Each path that reads a body — the bare issuance handler, Express
 * (body-parser), OCSP — logs it once at info level as a client abort, with no stack and no
 * error-level line, does not count it as a refusal, and keeps serving. Read from the real
 * server's log output.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { api, startServer, type RunningServer } from './helpers/cli.js';
import { createTestEnv, type TestEnv } from './helpers/env.js';

/** Sends the request head and the first bytes of a longer body, then closes the socket. */
function abortedUpload(port: number, head: string, partialBody: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => {
      s.write(head + partialBody);
      setTimeout(() => {
        s.destroy();
        resolve();
      }, 200);
    });
    s.on('error', reject);
  });
}

interface LogLine {
  level: number;
  msg: string;
  err?: { stack?: string };
  [k: string]: unknown;
}

describe('an upload aborted by the client is logged as a client abort, at info level', () => {
  let env: TestEnv;
  let server: RunningServer;
  before(async () => {
    env = await createTestEnv({ SIGNET_LOG_LEVEL: 'info' });
    server = await startServer(env.env);
  });
  after(async () => {
    await server?.stop();
    await env?.cleanup();
  });

  const lines = (): LogLine[] =>
    server
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);

  async function abortAndRead(head: string, partial: string): Promise<LogLine[]> {
    const seen = lines().length;
    await abortedUpload(server.port, head, partial);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const fresh = lines().slice(seen);
      if (fresh.some((l) => l.msg === 'request aborted by the client')) {
        await new Promise((r) => setTimeout(r, 200)); // anything logged right after it, too
        return lines().slice(seen);
      }
      assert.ok(Date.now() < deadline, `no client-abort line was logged; got: ${JSON.stringify(fresh)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const cases: [string, () => string, string][] = [
    [
      'the bare issuance handler (POST /api/v1/certificates)',
      () =>
        `POST /api/v1/certificates HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`,
      '{"csr":"-----BEGIN',
    ],
    [
      'Express and body-parser (POST /api/v1/tokens)',
      () =>
        `POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.token}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`,
      '{"name":"half',
    ],
    [
      'the OCSP responder (POST /ocsp)',
      () => 'POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\nContent-Length: 500\r\n\r\n',
      '\x30\x82\x01\xf0\x30',
    ],
  ];
  for (const [where, head, partial] of cases) {
    test(where, async () => {
      const logged = await abortAndRead(head(), partial);
      const aborts = logged.filter((l) => l.msg === 'request aborted by the client');
      assert.equal(aborts.length, 1, JSON.stringify(logged));
      assert.equal(aborts[0]!.level, 30, 'info');
      assert.equal(JSON.stringify(aborts[0]).includes('stack'), false, 'no stack trace');
      const bad = logged.filter((l) => l.level >= 40);
      assert.deepEqual(bad, [], 'nothing at warn level or above');
      assert.ok(!logged.some((l) => l.msg === 'request refused'), 'not a refusal');
    });
  }

  test('aborts are not counted as refusals, and the server keeps serving', async () => {
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.doesNotMatch(metrics, /signet_refusals_total\{type="bad-request"\}/);
    assert.equal((await api(server, 'GET', '/api/v1/cas')).status, 200);
  });
});
