import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function openssl(args: string[], input?: string | Buffer): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('openssl', args, { input, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export class TempDir {
  readonly path = mkdtempSync(join(tmpdir(), 'signet-ossl-'));
  file(name: string, content?: string | Buffer): string {
    const p = join(this.path, name);
    if (content !== undefined) writeFileSync(p, content);
    return p;
  }
  remove() { rmSync(this.path, { recursive: true, force: true }); }
}
