/**
 * Runs simulator seeds over mutated copies of the repository (each dir holds lib/ and
 * test/sim, test/lin, see run.ts) and prints one JSON line per dir:
 * `{ dir, run, caught, caughtSeeds, bySchedule, first }`. `--stop-after K` stops a dir after K caught seeds.
 * One process for all dirs: each copy's simulator is imported from its own path.
 */
import { join } from 'node:path';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : (process.argv[i + 1] as string);
}

async function main(): Promise<void> {
  const dirs = arg('dirs', '').split(',').filter((d) => d !== '');
  const first = Number(arg('first', '1'));
  const seeds = Number(arg('seeds', '1000'));
  const steps = Number(arg('steps', '2000'));
  const stopAfter = Number(arg('stop-after', String(Number.MAX_SAFE_INTEGER)));
  for (const dir of dirs) {
    const mod = (await import(join(dir, 'test', 'sim', 'simulator.ts'))) as typeof import('../simulator');
    let run = 0;
    let caught = 0;
    const caughtSeeds: number[] = [];
    const bySchedule: Record<string, number> = {};
    let firstError = '';
    for (let seed = first; seed < first + seeds; seed++) {
      const res = new mod.Simulator({ seed, steps }).run();
      run++;
      if (!res.ok) {
        caught++;
        bySchedule[res.schedule] = (bySchedule[res.schedule] ?? 0) + 1;
        if (caughtSeeds.length < 10) caughtSeeds.push(seed);
        if (firstError === '') firstError = (res.error ?? '').split('\n')[0] ?? '';
        if (caught >= stopAfter) break;
      }
    }
    process.stdout.write(`${JSON.stringify({ dir, run, caught, caughtSeeds, bySchedule, first: firstError })}\n`);
  }
}

void main();
