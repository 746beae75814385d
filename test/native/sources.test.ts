// One list of native sources (native/sources.json) for both builds: binding.gyp (node-gyp:
// users' from-source builds, prebuilds, `npm run build:native`) and CMakeLists.txt (ctest,
// the fuzz builds, cmake-js, compile_commands.json). Checked against what each build
// system actually generated, not against the build files' text alone.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = join(__dirname, '..', '..');
const groups = ['crc', 'wal', 'addon', 'faults'] as const;
const sources = JSON.parse(readFileSync(join(root, 'native', 'sources.json'), 'utf8')) as Record<(typeof groups)[number], string[]> & { '//': string };
const sorted = (xs: Iterable<string>): string[] => [...xs].sort();

/** The sources of a node-gyp target, from the makefile node-gyp generated for it (build/<target>.target.mk). */
function gypTargetSources(target: string): string[] {
  const mk = readFileSync(join(root, 'build', `${target}.target.mk`), 'utf8');
  const objs = /^OBJS := \\\n((?:\t.*\\?\n)+)/m.exec(mk)?.[1] ?? '';
  return objs
    .split('\n')
    .map((line) => line.trim().replace(/\s*\\$/, ''))
    .filter((line) => line !== '')
    .map((line) => line.replace(/^\$\(obj\)\.target\/\$\(TARGET\)\//, '').replace(/\.o$/, '.cc'));
}

describe('native source list', () => {
  it('lists every native/*.cc exactly once', () => {
    expect(Object.keys(sources).filter((k) => k !== '//').sort()).toEqual([...groups].sort());
    const listed = groups.flatMap((g) => sources[g]);
    expect(new Set(listed).size).toBe(listed.length);
    const onDisk = readdirSync(join(root, 'native')).filter((n) => n.endsWith('.cc')).map((n) => `native/${n}`);
    expect(sorted(listed)).toEqual(sorted(onDisk));
  });

  it('neither build file names a native source itself (so a new one cannot reach only one build)', () => {
    for (const file of ['binding.gyp', 'CMakeLists.txt']) {
      const text = readFileSync(join(root, file), 'utf8');
      expect(text.match(/(?<!\/)\bnative\/\w+\.cc/g) ?? [], file).toEqual([]);
    }
  });

  it('node-gyp compiles exactly the listed sources (run `npm run build:native` first)', () => {
    expect(existsSync(join(root, 'build', 'tidemark.target.mk')), 'build/ is configured').toBe(true);
    expect(sorted(gypTargetSources('tidemark'))).toEqual(sorted([...sources.addon, ...sources.crc, ...sources.wal]));
    if (existsSync(join(root, 'build', 'tidemark_faults.target.mk'))) {
      expect(sorted(gypTargetSources('tidemark_faults'))).toEqual(sorted([...sources.addon, ...sources.crc, ...sources.wal, ...sources.faults]));
    }
  });

  it('CMake compiles exactly the listed sources (configure only, compile_commands.json)', { timeout: 180_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'tidemark-cmake-'));
    try {
      execFileSync('cmake', ['-S', root, '-B', dir, '-DTIDEMARK_FUZZ=replay'], { stdio: 'pipe' });
      const commands = JSON.parse(readFileSync(join(dir, 'compile_commands.json'), 'utf8')) as Array<{ file: string; output?: string; command: string }>;
      const native = new Set(commands.map((c) => relative(root, c.file)).filter((f) => f.startsWith('native/')));
      // The addon target needs Node's headers; the rest needs nothing but a compiler.
      const withAddon = commands.some((c) => c.file.endsWith('addon.cc'));
      expect(sorted(native)).toEqual(sorted([...(withAddon ? sources.addon : []), ...sources.crc, ...sources.wal]));
      // The fuzz targets and the native unit test are in the same build.
      for (const f of ['test/fuzz/fuzz_frame.cc', 'test/fuzz/fuzz_recovery.cc', 'test/fuzz/fuzz_crc32c.cc', 'test/native/crc32c_check.cc']) {
        expect(commands.some((c) => relative(root, c.file) === f), f).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
