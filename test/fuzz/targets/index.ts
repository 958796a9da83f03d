/** The fuzz targets by name; each module exports `target`. */
import type { Target } from '../lib/target.js';

export const TARGETS = ['csr', 'der', 'ocsp-request', 'jws', 'names', 'builders'] as const;
export type TargetName = (typeof TARGETS)[number];

export async function loadTarget(name: string): Promise<Target<unknown>> {
  if (!(TARGETS as readonly string[]).includes(name)) throw new Error(`unknown fuzz target '${name}'; targets: ${TARGETS.join(', ')}`);
  const mod = (await import(`./${name}.js`)) as { target: Target<unknown> };
  return mod.target;
}

export const CODEC_EXT: Record<TargetName, 'der' | 'json'> = { csr: 'der', der: 'der', 'ocsp-request': 'der', jws: 'json', names: 'json', builders: 'json' };
