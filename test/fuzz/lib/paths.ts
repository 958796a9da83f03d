import { join } from 'node:path';

export const FUZZ_DIR = join(import.meta.dirname, '..');
export const CORPUS_DIR = join(FUZZ_DIR, 'corpus');
export const ROOT = join(FUZZ_DIR, '..', '..');
