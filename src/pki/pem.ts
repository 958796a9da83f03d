/**
 * PEM (RFC 7468) and bare base64 decoding with precise errors. Node's Buffer.from(…, 'base64')
 * silently skips characters it does not understand, so the alphabet is checked here first:
 * a pasted-in typo must be an error, not a different DER blob.
 */
import { SignetError, type ProblemType } from '../errors.js';

export interface PemBlock {
  label: string;
  der: Buffer;
}

const BEGIN = /^-----BEGIN ([\x21-\x2c\x2e-\x7e](?:[- ]?[\x21-\x2c\x2e-\x7e])*)?-----$/;
const END = /^-----END ([\x21-\x2c\x2e-\x7e](?:[- ]?[\x21-\x2c\x2e-\x7e])*)?-----$/;

/** True when the text contains a PEM BEGIN line; lets callers tell PEM from bare base64. */
export function looksLikePem(text: string): boolean {
  return /-----BEGIN [^\r\n]*-----/.test(text);
}

/**
 * Decodes standard or URL-safe base64 (padding optional, whitespace ignored). ACME sends CSRs
 * as unpadded base64url, people paste standard base64, so both are accepted — but not mixed.
 * Returns null when the text is not base64, so callers can word the error for their context.
 */
export function decodeBase64(text: string): Buffer | null {
  const s = text.replace(/[\s]+/g, '');
  if (s.length === 0) return null;
  const std = /^[A-Za-z0-9+/]+={0,2}$/.test(s);
  const url = /^[A-Za-z0-9_-]+={0,2}$/.test(s);
  if (!std && !url) return null;
  const body = s.replace(/=+$/, '');
  // A base64 body of length 4n+1 cannot come from any byte string.
  if (body.length % 4 === 1) return null;
  if (s.length !== body.length && s.length % 4 !== 0) return null;
  return Buffer.from(body, std ? 'base64' : 'base64url');
}

/** All PEM blocks in the text, in order. Text outside blocks is allowed (RFC 7468 §2). */
export function pemBlocks(text: string, errorType: ProblemType = 'bad-request'): PemBlock[] {
  const lines = text.split(/\r?\n|\r/);
  const blocks: PemBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line.startsWith('-----BEGIN')) continue;
    const begin = BEGIN.exec(line);
    if (!begin) throw new SignetError(errorType, `malformed PEM BEGIN line: '${truncate(line)}'`);
    const label = begin[1] ?? '';
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j]!.trim();
      if (l.startsWith('-----END')) break;
      if (l.includes(':')) throw new SignetError(errorType, `PEM block '${label}' has RFC 1421 headers ('${truncate(l)}'), which are not supported`);
      body.push(l);
    }
    if (j >= lines.length) throw new SignetError(errorType, `PEM block '${label}' has no END line`);
    const end = END.exec(lines[j]!.trim());
    if (!end || (end[1] ?? '') !== label) {
      throw new SignetError(errorType, `PEM END line '${truncate(lines[j]!.trim())}' does not match BEGIN label '${label}'`);
    }
    const b64 = body.join('');
    // URL-safe characters are not PEM (RFC 7468 uses the standard alphabet only).
    const der = /^[A-Za-z0-9+/=]*$/.test(b64) ? decodeBase64(b64) : null;
    if (!der) throw new SignetError(errorType, `PEM block '${label}' is not valid base64`);
    blocks.push({ label, der });
    i = j;
  }
  return blocks;
}

/**
 * The DER of the single PEM block in the text, which must carry one of the expected labels.
 * More than one block is refused: a CSR upload that silently used only the first block would
 * hide a mistake.
 */
export function pemToDer(pem: string, expectedLabels: readonly string[], errorType: ProblemType = 'bad-request'): { label: string; der: Buffer } {
  const blocks = pemBlocks(pem, errorType);
  if (blocks.length === 0) throw new SignetError(errorType, 'no PEM block found');
  if (blocks.length > 1) throw new SignetError(errorType, `expected one PEM block, found ${blocks.length}`);
  const block = blocks[0]!;
  if (!expectedLabels.includes(block.label)) {
    throw new SignetError(errorType, `PEM label '${block.label}' is not ${expectedLabels.map((l) => `'${l}'`).join(' or ')}`);
  }
  return block;
}

/** PEM with 64-character lines and a trailing newline, as RFC 7468 §2 generators should write. */
export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}${lines.length ? '\n' : ''}-----END ${label}-----\n`;
}

const truncate = (s: string, n = 80): string => (s.length > n ? s.slice(0, n) + '…' : s);
