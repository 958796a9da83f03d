/** fast-check generators shared by the targets. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { MUTATIONS, type MutationStep } from './der-tree.js';
import type { Codec, Seed } from './target.js';
import { CORPUS_DIR } from './paths.js';

export const mutationStep: fc.Arbitrary<MutationStep> = fc.record({
  kind: fc.constantFrom(...MUTATIONS),
  at: fc.nat({ max: 4096 }),
  a: fc.nat({ max: 4096 }),
  b: fc.nat({ max: 4096 }),
  bytes: fc.array(fc.nat({ max: 255 }), { maxLength: 48 }),
});

export const mutationSteps = fc.array(mutationStep, { minLength: 1, maxLength: 3 });

/** Building blocks of hostile names: DNS pieces, IDN and look-alike characters, separators, escapes. */
export const NAME_PIECES = [
  'a',
  'b',
  'z',
  '0',
  '1',
  '9',
  'com',
  'example',
  'corp',
  'team-a',
  'other',
  'internal',
  'test',
  'localhost',
  '.',
  '.',
  '.',
  '..',
  '-',
  '--',
  '*',
  '*.',
  'xn--',
  'xn--bcher-kva',
  'xn--nxasmq6b',
  'xn--a',
  'ab--c',
  '_',
  '0x7f',
  '0x',
  '08',
  '256',
  'A',
  'EXAMPLE',
  'Com',
  'ü',
  'ß',
  'ｅ',
  '\u3002',
  '\uff0e',
  '\u200b',
  '\u0000',
  '\u007f',
  '\n',
  ' ',
  '\t',
  '%',
  '%2e',
  '%00',
  '%ff',
  '@',
  ':',
  '::',
  '[',
  ']',
  '/',
  '//',
  '?',
  '#',
  '\\',
  '"',
  "'",
  ',',
  ';',
  '=',
  '+',
  '!',
  '~',
  '1.2.3.4',
  '127.0.0.1',
  '::1',
  'fe80::1%eth0',
  '::ffff:10.0.0.1',
  '10.0.0.0/8',
  'http://',
  'https://',
  'urn:uuid:',
  'mailto:',
  'file:///',
  'spiffe://',
  'ldap://',
  'HTTP://',
  'a'.repeat(63),
  'a'.repeat(64),
  'b'.repeat(250),
];

export const hostileString = fc.array(fc.constantFrom(...NAME_PIECES), { maxLength: 8 }).map((xs) => xs.join(''));

/** A DNS-ish name: labels from the pieces joined by dots, sometimes with a leading '*.' or trailing '.'. */
export const dnsish = fc
  .tuple(
    fc.constantFrom('', '', '', '*.', '.'),
    fc.array(
      fc.oneof(fc.constantFrom('a', 'b', 'www', 'team-a', 'corp', 'example', 'other', 'com', 'xn--bcher-kva', 'bank', 'internal', 'test'), hostileString),
      { minLength: 1, maxLength: 5 },
    ),
    fc.constantFrom('', '', '', '.', '..'),
  )
  .map(([pre, labels, post]) => pre + labels.join('.') + post);

/** The committed corpus of a target: every file under test/fuzz/corpus/<target>/. */
export function corpusSeeds<T>(target: string, codec: Codec<T>): Seed<T>[] {
  const dir = join(CORPUS_DIR, target);
  let files: string[] = [];
  try {
    files = readdirSync(dir).sort();
  } catch {
    return [];
  }
  return files.filter((f) => f.endsWith(`.${codec.ext}`)).map((f) => ({ name: `corpus/${target}/${f}`, input: codec.decode(readFileSync(join(dir, f))) }));
}
