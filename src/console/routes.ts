/**
 * The web console: static files served from memory under /console. The page is a client
 * of the REST API with the operator's own token (kept in the tab's sessionStorage, sent as a
 * Bearer header), so it adds no authority of its own: no cookie, no session, nothing a
 * cross-site request could ride on. Its CSP allows only this origin's script, style and fetches.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Router } from 'express';

// From src/console (tsx) or dist/console (compiled): the assets stay in src/console/assets.
const ASSETS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'console', 'assets');

const FILES: Record<string, { name: string; type: string }> = {
  '/console': { name: 'index.html', type: 'text/html; charset=utf-8' },
  '/console/console.js': { name: 'console.js', type: 'text/javascript; charset=utf-8' },
  '/console/console.css': { name: 'console.css', type: 'text/css; charset=utf-8' },
  '/console/icon.svg': { name: 'icon.svg', type: 'image/svg+xml' },
};

// form-action 'none': the forms are handled by the script; should it not have loaded yet, the
// browser must not submit the sign-in form as a GET with the token in the URL.
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "form-action 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function consoleRoutes(): Router {
  const bodies = new Map(Object.entries(FILES).map(([path, f]) => [path, { type: f.type, body: readFileSync(join(ASSETS, f.name)) }]));
  const r = Router();
  r.get([...Object.keys(FILES), '/console/'], (req, res) => {
    const file = bodies.get(req.path === '/console/' ? '/console' : req.path)!;
    res.set({ 'Content-Type': file.type, 'Content-Security-Policy': CONSOLE_CSP, 'Cache-Control': 'no-cache' }).send(file.body);
  });
  return r;
}
