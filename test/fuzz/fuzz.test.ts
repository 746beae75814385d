// The native fuzz targets (test/fuzz/*.cc) without clang: built by CMake (TIDEMARK_FUZZ=replay)
// with the system C++ compiler under AddressSanitizer and UndefinedBehaviorSanitizer, with a plain main()
// (replay_main.cc) that replays the committed corpus (seeds, plus inputs libFuzzer runs
// found and `npm run fuzz -- merge` kept), then a fixed number of seeded random
// mutations of it. A failing input is written to build/fuzz/replay/replay-crash-<target>.
// Replay another seed: TIDEMARK_FUZZ_SEED=n npx vitest run test/fuzz.
// Longer, coverage-guided runs: `npm run fuzz` (libFuzzer, needs clang).
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const out = join(root, 'build', 'fuzz', 'replay');
const seed = process.env.TIDEMARK_FUZZ_SEED ?? '1';

// mutations: enough to take a few seconds each on a shared 2-core machine.
const targets = [
  { name: 'frame', mutations: 20_000, maxLen: 4096 },
  { name: 'recovery', mutations: 4_000, maxLen: 4096 },
  { name: 'crc32c', mutations: 3_000, maxLen: 70_000 },
] as const;

describe('native fuzz targets, replayed under ASan + UBSan', () => {
  beforeAll(() => {
    // The CMake build's replay configuration (CMakeLists.txt, TIDEMARK_FUZZ=replay).
    execFileSync('cmake', ['-S', root, '-B', out, '-DTIDEMARK_FUZZ=replay'], { cwd: root, stdio: 'pipe' });
    execFileSync('cmake', ['--build', out, '-j2', '--target', ...targets.map((t) => t.name), 'crc32c_check'], { cwd: root, stdio: 'pipe' });
  }, 300_000);

  it('native unit tests under ctest, in the same ASan + UBSan build (the corpus replays are the tests below)', { timeout: 120_000 }, () => {
    const r = spawnSync('ctest', ['--test-dir', out, '--output-on-failure', '-E', '^fuzz_replay_'], { cwd: root, encoding: 'utf8' });
    expect(r.stdout + r.stderr, `ctest failed (exit ${r.status})`).toMatch(/100% tests passed, 0 tests failed out of [1-9]/);
    expect(r.stdout).toContain('crc32c_check');
    expect(r.status).toBe(0);
  });

  for (const t of targets) {
    it(`${t.name}: committed corpus + ${t.mutations} mutations (seed ${seed})`, { timeout: 120_000 }, () => {
      const r = spawnSync(join(out, t.name), ['--mutations', String(t.mutations), '--seed', seed, '--max-len', String(t.maxLen), join(root, 'test', 'fuzz', 'corpus', t.name)], {
        cwd: out, encoding: 'utf8',
      });
      expect(r.stderr + r.stdout, `${t.name} replay failed (exit ${r.status}, signal ${r.signal})`).toMatch(new RegExp(`^${t.name}: \\d+ corpus inputs, ${t.mutations} mutations: ok$`, 'm'));
      expect(r.status).toBe(0);
      const count = /(\d+) corpus inputs/.exec(r.stdout)?.[1];
      expect(Number(count)).toBeGreaterThan(5);
    });
  }
});
