// What the package publishes about itself: declarations without internal
// members, source maps that work without the TypeScript sources (which are not
// shipped: package.json "files"), and a README that lists every error code.
// Reads dist/, which `npm test` builds before the tests.
import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes } from '../lib/index';

const root = path.join(__dirname, '..');
const dist = path.join(root, 'dist');

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

function distFiles(ext: string): string[] {
  if (!fs.existsSync(dist)) throw new Error('dist/ is missing: run npm run build:ts (npm test does)');
  return walk(dist).filter((f) => f.endsWith(ext));
}

describe('published declarations and source maps', () => {
  it('no internal member or function is declared: _onReport, _openWith, _inspect, openWal', () => {
    const decls = distFiles('.d.ts');
    expect(decls.length).toBeGreaterThan(5);
    for (const f of decls) {
      // Declarations only: a doc comment may mention an internal name.
      const text = fs.readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
      for (const name of ['_onReport', '_openWith', '_inspect', 'openWal']) {
        expect(text.includes(name), `${path.relative(root, f)} declares ${name}`).toBe(false);
      }
    }
    const index = fs.readFileSync(path.join(dist, 'index.d.ts'), 'utf8');
    for (const name of ['ResolvedWalOptions', 'WalDamage', 'WalEvents', 'WalRange']) expect(index).toMatch(new RegExp(`\\b${name}\\b`));
    expect(fs.readFileSync(path.join(dist, 'log', 'wal.d.ts'), 'utf8')).toContain('[Symbol.asyncDispose](): Promise<void>;');
  });

  it('every source map carries its sources (the .ts files are not in the package)', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { files: string[] };
    expect(pkg.files.some((f) => f.startsWith('lib'))).toBe(false);
    const maps = distFiles('.js.map');
    expect(maps.length).toBeGreaterThan(5);
    for (const f of maps) {
      const map = JSON.parse(fs.readFileSync(f, 'utf8')) as { sources: string[]; sourcesContent?: Array<string | null> };
      expect(map.sourcesContent?.length, `${path.relative(root, f)} has no sourcesContent`).toBe(map.sources.length);
      for (const [i, s] of (map.sourcesContent ?? []).entries()) {
        const source = path.resolve(path.dirname(f), map.sources[i] as string);
        expect(s, `${path.relative(root, f)}: the content of ${map.sources[i]}`).toBe(fs.readFileSync(source, 'utf8'));
      }
    }
  });

  it("the README's error list names every error code", () => {
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
    const start = readme.indexOf('Every operating error is a `TidemarkError`');
    expect(start).toBeGreaterThan(0);
    const list = readme.slice(start, readme.indexOf('\n\n', start));
    for (const code of Object.values(ErrorCodes)) expect(list, `README error list lacks ${code}`).toContain(`\`${code}\``);
  });
});
