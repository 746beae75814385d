/**
 * Runs simulator seeds over whatever lib/core sits next to this copy of test/sim
 * (run.ts points it at a mutated copy) and prints one JSON line:
 * `{ run, caught, caughtSeeds, first }`. `--stop-after K` stops after K caught seeds.
 */
import { Simulator } from '../simulator';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}

const first = arg('first', 1);
const seeds = arg('seeds', 1000);
const steps = arg('steps', 2000);
const stopAfter = arg('stop-after', Number.MAX_SAFE_INTEGER);
let run = 0;
let caught = 0;
const caughtSeeds: number[] = [];
const bySchedule: Record<string, number> = {};
let firstError = '';
for (let seed = first; seed < first + seeds; seed++) {
  const res = new Simulator({ seed, steps }).run();
  run++;
  if (!res.ok) {
    caught++;
    bySchedule[res.schedule] = (bySchedule[res.schedule] ?? 0) + 1;
    if (caughtSeeds.length < 10) caughtSeeds.push(seed);
    if (firstError === '') firstError = (res.error ?? '').split('\n')[0] ?? '';
    if (caught >= stopAfter) break;
  }
}
process.stdout.write(`${JSON.stringify({ run, caught, caughtSeeds, bySchedule, first: firstError })}\n`);
