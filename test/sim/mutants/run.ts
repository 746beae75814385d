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

/** A fresh copy of lib/ and the simulator with `m` applied; throws unless the search text occurs exactly once. */
function mutatedCopy(m: Mutant): string {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-mutant-'));
  cpSync(join(root, 'lib'), join(dir, 'lib'), { recursive: true });
  cpSync(join(root, 'test', 'sim'), join(dir, 'test', 'sim'), { recursive: true });
  cpSync(join(root, 'test', 'lin'), join(dir, 'test', 'lin'), { recursive: true });
  const file = join(dir, 'lib', 'core', m.file);
  const src = readFileSync(file, 'utf8');
  const count = src.split(m.search).length - 1;
  if (count !== 1) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`mutant ${m.name}: search text occurs ${count} times in lib/core/${m.file} (must be 1)`);
  }
  writeFileSync(file, src.replace(m.search, m.replace));
  return dir;
}

/**
 * Runs the simulator's seeds 1..`seeds` (`steps` each) over each mutant, all in one child
 * process; with `stopAfter`, a mutant stops after that many caught seeds.
 */
export function runMutants(mutants: readonly Mutant[], opts: { seeds: number; steps: number; stopAfter?: number }): MutantResult[] {
  const dirs: string[] = [];
  try {
    for (const m of mutants) dirs.push(mutatedCopy(m));
    const args = ['--import', 'tsx', join(__dirname, 'worker.ts'), '--dirs', dirs.join(','), '--seeds', String(opts.seeds), '--steps', String(opts.steps)];
    if (opts.stopAfter !== undefined) args.push('--stop-after', String(opts.stopAfter));
    const out = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 });
    const lines = out.stdout.trim().split('\n').filter((l) => l.startsWith('{'));
    if (out.status !== 0 || lines.length !== mutants.length) throw new Error(`mutant worker failed (${out.status})\n${out.stderr}`);
    return lines.map((l, i) => {
      const r = JSON.parse(l) as Omit<MutantResult, 'name'> & { dir: string };
      const { dir: _dir, ...rest } = r;
      return { name: (mutants[i] as Mutant).name, ...rest };
    });
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
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
  // One worker per mutant in --full mode (progress as it goes), one for all in fast mode.
  const results = full ? list.flatMap((m) => runMutants([m], { seeds, steps })) : runMutants(list, { seeds, steps, stopAfter: 1 });
  for (const [k, m] of list.entries()) {
    const r = results[k] as MutantResult;
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
