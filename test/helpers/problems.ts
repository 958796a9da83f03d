import assert from 'node:assert/strict';
import { SignetError } from '../../src/errors.js';

/** Asserts fn throws a SignetError of the given type whose detail matches every pattern. */
export function throwsProblem(fn: () => unknown, type: string, ...details: (RegExp | string)[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SignetError, `expected SignetError, got ${String(e)}`);
    assert.equal(e.type, type, `type for detail: ${e.detail}`);
    for (const d of details) {
      if (typeof d === 'string') assert.ok(e.detail.includes(d), `detail ${JSON.stringify(e.detail)} lacks ${JSON.stringify(d)}`);
      else assert.match(e.detail, d);
    }
    return true;
  });
}
