/**
 * The mutation suite: `npm run mutants [-- --full] [--only NAME] [--seeds N] [--stop-after K]`.
 *
 * For each planted bug in mutants.ts: copy lib/ and the simulator to a temp dir, apply the
 * one search/replace to the copy of lib/core, and run the simulator's CI seeds (1..N, 2,000
 * steps) in a child process. Fast mode (default, what CI runs) stops at the first caught
 * seed; `--full` runs every seed and reports the catch rate, which must be ≥ 5 %.
 * Exits 1 if a mutant survives (or, with --full, is caught by fewer than 5 % of seeds).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MUTANTS, type Mutant } from './mutants';

const root = join(__dirname, '..', '..', '..');

export interface MutantResult {
  name: string;
  run: number;
  caught: number;
  caughtSeeds: number[];
  bySchedule: Record<string, number>;
  first: string;
}

/** Applies `m` to a fresh copy and runs the worker; throws if the search text is not found exactly once. */
export function runMutant(m: Mutant, opts: { seeds: number; steps: number; stopAfter?: number }): MutantResult {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-mutant-'));
  try {
    cpSync(join(root, 'lib'), join(dir, 'lib'), { recursive: true });
    cpSync(join(root, 'test', 'sim'), join(dir, 'test', 'sim'), { recursive: true });
    cpSync(join(root, 'test', 'lin'), join(dir, 'test', 'lin'), { recursive: true });
    const file = join(dir, 'lib', 'core', m.file);
    const src = readFileSync(file, 'utf8');
    const count = src.split(m.search).length - 1;
    if (count !== 1) throw new Error(`mutant ${m.name}: search text occurs ${count} times in lib/core/${m.file} (must be 1)`);
    writeFileSync(file, src.replace(m.search, m.replace));
    const args = ['--import', 'tsx', join(dir, 'test', 'sim', 'mutants', 'worker.ts'), '--seeds', String(opts.seeds), '--steps', String(opts.steps)];
    if (opts.stopAfter !== undefined) args.push('--stop-after', String(opts.stopAfter));
    const out = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 });
    const line = out.stdout.trim().split('\n').pop() ?? '';
    if (out.status !== 0 || !line.startsWith('{')) throw new Error(`mutant ${m.name}: worker failed (${out.status})\n${out.stderr}`);
    return { name: m.name, ...(JSON.parse(line) as Omit<MutantResult, 'name'>) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function main(): void {
  const argv = process.argv;
  const num = (name: string, fallback: number): number => {
    const i = argv.indexOf(`--${name}`);
    return i < 0 ? fallback : Number(argv[i + 1]);
  };
  const full = argv.includes('--full');
  const oi = argv.indexOf('--only');
  const only = oi < 0 ? undefined : argv[oi + 1];
  const seeds = num('seeds', 1000);
  const steps = num('steps', 2000);
  const list = MUTANTS.filter((m) => only === undefined || m.name === only);
  let bad = 0;
  const started = performance.now();
  process.stdout.write(`| mutant | seeds caught / run | first caught seed | schedules that caught it | first failure |\n| --- | --- | --- | --- | --- |\n`);
  for (const m of list) {
    const r = runMutant(m, { seeds, steps, ...(full ? {} : { stopAfter: 1 }) });
    const rate = r.caught / r.run;
    const ok = r.caught > 0 && (!full || rate >= 0.05);
    if (!ok) bad++;
    const scheds = Object.entries(r.bySchedule).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
    const inv = (/invariant "([^"]+)"/.exec(r.first)?.[1] ?? r.first.replace(/^step \d+ \(schedule [^)]+\): /, '').slice(0, 80)).replace(/\|/g, '/');
    process.stdout.write(`| ${m.name} | ${r.caught} / ${r.run}${full ? ` (${(100 * rate).toFixed(1)} %)` : ''}${ok ? '' : ' **SURVIVED**'} | ${r.caughtSeeds[0] ?? '-'} | ${scheds} | ${inv} |\n`);
  }
  process.stdout.write(`\n${list.length - bad}/${list.length} mutants caught${full ? ' by ≥ 5 % of seeds' : ''} in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
  process.exit(bad > 0 ? 1 : 0);
}

if (require.main === module) main();
