/**
 * lib/core is pure (DESIGN.md "Layers"): no import from node:*, no timers, no
 * clock, no global randomness, no process. The simulator depends on it.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = join(__dirname, '..', '..', 'lib', 'core');
const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
const forbidden: Array<[string, RegExp]> = [
  ['node: import', /from\s+['"]node:/],
  ['require()', /\brequire\s*\(/],
  ['dynamic import', /\bimport\s*\(/],
  ['setTimeout', /\bsetTimeout\b/],
  ['setInterval', /\bsetInterval\b/],
  ['setImmediate', /\bsetImmediate\b/],
  ['queueMicrotask', /\bqueueMicrotask\b/],
  ['Date', /\bDate\b/],
  ['performance', /\bperformance\b/],
  ['Math.random', /Math\.random/],
  ['process', /\bprocess\./],
  ['crypto', /\bcrypto\b/],
];

describe('lib/core purity', () => {
  it('has files to check', () => {
    expect(files.length).toBeGreaterThan(5);
  });
  for (const f of files) {
    it(f, () => {
      const code = readFileSync(join(dir, f), 'utf8');
      for (const [what, re] of forbidden) expect(re.test(code), `${f} uses ${what}`).toBe(false);
      for (const m of code.matchAll(/from\s+['"]([^'"]+)['"]/g)) {
        const target = m[1] as string;
        expect(target.startsWith('./') || target === '../errors', `${f} imports ${target}`).toBe(true);
      }
    });
  }
});
