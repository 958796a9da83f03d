/**
 * A tiny authoritative DNS server for tests, on 127.0.0.1 UDP (node:dgram, no dependencies).
 * It answers for the zones it is given: A queries for any name in them with one address
 * (127.0.0.1 by default, or a per-name override), TXT queries from an in-memory map the test
 * controls, SOA/NS at the zone apex, NOERROR with no data for other types (every name in a zone
 * exists), and REFUSED outside the zones. A loopback HTTP control endpoint lets a child process (e.g. the
 * script lego's `exec` DNS provider runs) add and remove TXT records:
 *   POST   <controlUrl>/txt  {"name": "_acme-challenge.x.signet.test.", "value": "…"}
 *   DELETE <controlUrl>/txt  {"name": …, "value": …}
 * Every query is recorded in `queries` so a test can show who asked for what.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { createServer, type Server } from 'node:http';

const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, TXT: 16, AAAA: 28, OPT: 41 } as const;
const TYPE_NAME: Record<number, string> = Object.fromEntries(Object.entries(TYPE).map(([k, v]) => [v, k]));

export interface DnsQuery {
  name: string;
  type: string;
  from: string;
}

export interface TestDnsServer {
  port: number;
  /** `127.0.0.1:<port>`, for SIGNET_ACME_DNS_RESOLVER and lego's --dns.resolvers. */
  address: string;
  /** Base URL of the loopback HTTP control endpoint. */
  controlUrl: string;
  queries: DnsQuery[];
  addTxt(name: string, value: string): void;
  removeTxt(name: string, value?: string): void;
  txt(name: string): string[];
  /** Answer A queries for `name` with `ip` instead of the default (or with nothing, for null). */
  setA(name: string, ip: string | null): void;
  close(): Promise<void>;
}

const norm = (name: string) => name.toLowerCase().replace(/\.+$/, '');

/** Reads a (possibly compressed) domain name at `offset`; returns the name and the offset after it. */
function readName(msg: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let next = -1;
  let pos = offset;
  for (let hops = 0; hops < 64; hops++) {
    if (pos >= msg.length) throw new Error('name runs past the message');
    const len = msg[pos]!;
    if (len === 0) {
      pos += 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (next < 0) next = pos + 2;
      pos = ((len & 0x3f) << 8) | msg[pos + 1]!;
      continue;
    }
    labels.push(msg.subarray(pos + 1, pos + 1 + len).toString('latin1'));
    pos += 1 + len;
  }
  return { name: labels.join('.'), next: next < 0 ? pos : next };
}

function encodeName(name: string): Buffer {
  const parts = norm(name)
    .split('.')
    .filter(Boolean)
    .map((l) => {
      const b = Buffer.from(l, 'latin1');
      return Buffer.concat([Buffer.from([b.length]), b]);
    });
  return Buffer.concat([...parts, Buffer.from([0])]);
}

function rr(type: number, ttl: number, rdata: Buffer): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(0xc00c, 0); // pointer to the question name
  h.writeUInt16BE(type, 2);
  h.writeUInt16BE(1, 4); // IN
  h.writeUInt32BE(ttl, 6);
  h.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([h, rdata]);
}

function txtRdata(value: string): Buffer {
  // One or more <length><bytes> character-strings of at most 255 bytes each.
  const b = Buffer.from(value, 'utf8');
  const chunks: Buffer[] = [];
  let i = 0;
  do {
    const c = b.subarray(i, i + 255);
    chunks.push(Buffer.from([c.length]), c);
    i += 255;
  } while (i < b.length);
  return Buffer.concat(chunks);
}

function soaRdata(zone: string): Buffer {
  const nums = Buffer.alloc(20);
  nums.writeUInt32BE(1, 0);
  nums.writeUInt32BE(3600, 4);
  nums.writeUInt32BE(600, 8);
  nums.writeUInt32BE(86400, 12);
  nums.writeUInt32BE(0, 16);
  return Buffer.concat([encodeName(`ns.${zone}`), encodeName(`hostmaster.${zone}`), nums]);
}

export async function startDnsServer(opts: { zones: string[]; defaultA?: string }): Promise<TestDnsServer> {
  const zones = opts.zones.map(norm);
  const defaultA = opts.defaultA ?? '127.0.0.1';
  const txt = new Map<string, string[]>();
  const aOverride = new Map<string, string | null>();
  const queries: DnsQuery[] = [];
  const zoneOf = (name: string) => zones.find((z) => name === z || name.endsWith(`.${z}`));

  function answer(msg: Buffer, from: RemoteInfo): Buffer | null {
    if (msg.length < 12) return null;
    const flags = msg.readUInt16BE(2);
    if (flags & 0x8000) return null; // a response, not a query
    const qd = msg.readUInt16BE(4);
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2); // id
    const opcode = (flags >> 11) & 0xf;
    let rcode = 0;
    const answers: Buffer[] = [];
    let question = Buffer.alloc(0);
    if (qd !== 1 || opcode !== 0)
      rcode = qd !== 1 ? 1 : 4; // FORMERR / NOTIMP
    else {
      let q;
      try {
        q = readName(msg, 12);
      } catch {
        return null;
      }
      if (q.next + 4 > msg.length) return null;
      const qtype = msg.readUInt16BE(q.next);
      question = Buffer.concat([encodeName(q.name), msg.subarray(q.next, q.next + 4)]);
      const name = norm(q.name);
      queries.push({ name, type: TYPE_NAME[qtype] ?? String(qtype), from: `${from.address}:${from.port}` });
      const zone = zoneOf(name);
      if (!zone)
        rcode = 5; // REFUSED: not our zone
      else if (qtype === TYPE.A) {
        const ip = aOverride.has(name) ? aOverride.get(name)! : defaultA;
        if (ip) answers.push(rr(TYPE.A, 5, Buffer.from(ip.split('.').map(Number))));
      } else if (qtype === TYPE.TXT) {
        for (const v of txt.get(name) ?? []) answers.push(rr(TYPE.TXT, 0, txtRdata(v)));
      } else if (qtype === TYPE.SOA && name === zone) answers.push(rr(TYPE.SOA, 60, soaRdata(zone)));
      else if (qtype === TYPE.NS && name === zone) answers.push(rr(TYPE.NS, 60, encodeName(`ns.${zone}`)));
      // Anything else (AAAA, CNAME, …): NOERROR with no data.
    }
    // QR, opcode, AA, RD copied, RA.
    header.writeUInt16BE(0x8000 | (opcode << 11) | 0x0400 | (flags & 0x0100) | 0x0080 | rcode, 2);
    header.writeUInt16BE(question.length ? 1 : 0, 4);
    header.writeUInt16BE(answers.length, 6);
    return Buffer.concat([header, question, ...answers]);
  }

  const socket: Socket = createSocket('udp4');
  socket.on('message', (msg, rinfo) => {
    const reply = answer(msg, rinfo);
    if (reply) socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const port = socket.address().port;

  const addTxt = (name: string, value: string) => {
    const k = norm(name);
    txt.set(k, [...(txt.get(k) ?? []), value]);
  };
  const removeTxt = (name: string, value?: string) => {
    const k = norm(name);
    const left = value === undefined ? [] : (txt.get(k) ?? []).filter((v) => v !== value);
    if (left.length) txt.set(k, left);
    else txt.delete(k);
  };

  const control: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      try {
        const b = JSON.parse(body || '{}') as { name?: unknown; value?: unknown };
        if (req.url !== '/txt' || typeof b.name !== 'string') {
          res.writeHead(404).end();
          return;
        }
        if (req.method === 'POST' && typeof b.value === 'string') addTxt(b.name, b.value);
        else if (req.method === 'DELETE') removeTxt(b.name, typeof b.value === 'string' ? b.value : undefined);
        else {
          res.writeHead(405).end();
          return;
        }
        res.writeHead(204).end();
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    control.once('error', reject);
    control.listen(0, '127.0.0.1', () => resolve());
  });
  const ca = control.address();
  const controlPort = typeof ca === 'object' && ca ? ca.port : 0;

  return {
    port,
    address: `127.0.0.1:${port}`,
    controlUrl: `http://127.0.0.1:${controlPort}`,
    queries,
    addTxt,
    removeTxt,
    txt: (name) => [...(txt.get(norm(name)) ?? [])],
    setA: (name, ip) => {
      aOverride.set(norm(name), ip);
    },
    async close() {
      control.closeAllConnections();
      await new Promise<void>((r) => control.close(() => r()));
      await new Promise<void>((r) => socket.close(() => r()));
    },
  };
}
