import { spawnSync } from 'node:child_process';

/**
 * Throws (never skips) when a real client a test drives is not installed, naming the Debian
 * packages to install (.ci/run installs them).
 */
export function requireTool(command: string, debianPackages: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command} is not installed; install it with: apt-get install ${debianPackages}`);
}
