/**
 * Soak and replay: `npm run sim -- --seeds N --steps M [--seed S] [--nodes 3|5] [--first F] [--schedule NAME] [--wal]`.
 * With --seed, runs that one seed and prints its stats; otherwise seeds F..F+N-1. With --wal, the
 * native-Wal mode (wal-mirror.ts: RaftStorage over the Wal, power loss at crashes, restarts from
 * the recovered Wal; needs the faults addon of `npm run build`).
 * Prints the simulator's speed (steps per second, fault and liveness phases).
 */
import { SCHEDULES, type Schedule, type SimResult, Simulator } from './simulator';
import { WalMirrors } from './wal-mirror';

function arg(name: string): number | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v)) {
    process.stderr.write(`--${name} needs an integer\n`);
    process.exit(2);
  }
  return v;
}

const steps = arg('steps') ?? 1000;
const nodes = arg('nodes');
const one = arg('seed');
const seeds = arg('seeds') ?? 100;
const first = arg('first') ?? 1;
const si = process.argv.indexOf('--schedule');
const schedule = si >= 0 ? (process.argv[si + 1] as Schedule) : undefined;
if (schedule !== undefined && !SCHEDULES.includes(schedule)) {
  process.stderr.write(`--schedule must be one of ${[...new Set(SCHEDULES)].join(', ')}\n`);
  process.exit(2);
}
const wal = process.argv.includes('--wal');

/** One seed in the native-Wal mode: run, then every storage must reopen to its node's log. */
async function runOverWal(sim: Simulator, mirrors: WalMirrors): Promise<SimResult> {
  try {
    const res = await sim.runAsync(mirrors.settle);
    if (!res.ok) return res;
    try {
      await mirrors.drain();
      for (const m of mirrors.all) {
        const d = await m.verifyRecovery();
        if (d.length > 0) return { ...res, ok: false, error: `${m.dir} reopened differently: ${d.join('; ')}` };
      }
    } catch (e) {
      return { ...res, ok: false, error: (e as Error).stack ?? String(e) };
    }
    return res;
  } finally {
    await mirrors.remove();
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  let simSteps = 0;
  let failed = 0;
  const totals: Record<string, number> = {};
  let livenessMax = 0;
  let livenessWorst = 0;
  const list = one !== undefined ? [one] : Array.from({ length: seeds }, (_, i) => first + i);
  for (const seed of list) {
    const trace = process.argv.includes('--trace') ? (line: string) => process.stdout.write(`${line}\n`) : undefined;
    const mirrors = wal ? new WalMirrors() : undefined;
    const sim = new Simulator({ seed, steps, ...(nodes !== undefined ? { nodes } : {}), ...(schedule !== undefined ? { schedule } : {}), ...(trace !== undefined ? { trace } : {}), ...(mirrors !== undefined ? { storage: mirrors.create } : {}) });
    const res = mirrors !== undefined ? await runOverWal(sim, mirrors) : sim.run();
    simSteps += sim.now;
    if (!res.ok) {
      failed++;
      process.stdout.write(`FAIL seed=${seed} nodes=${res.nodes} schedule=${res.schedule}\n${res.error}\nreplay: ${res.replay}${wal ? ' --wal' : ''}\n`);
    }
    for (const [k, v] of Object.entries(res.stats)) totals[k] = (totals[k] ?? 0) + v;
    livenessMax = Math.max(livenessMax, res.stats.livenessSteps ?? 0);
    livenessWorst = Math.max(livenessWorst, (res.stats.livenessPermille ?? 0) / 10);
    if (res.ok && one !== undefined) {
      process.stdout.write(`ok seed=${seed} nodes=${res.nodes} schedule=${res.schedule} ${JSON.stringify(res.stats)}\n`);
    }
  }
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  if (one === undefined) {
    process.stdout.write(`totals ${JSON.stringify(totals)}\n`);
    process.stdout.write(`liveness: slowest recovery after faults stopped took ${livenessMax} steps; worst use of its bound ${livenessWorst}%\n`);
  }
  const rate = Math.round(simSteps / ((performance.now() - started) / 1000));
  process.stdout.write(`${list.length - failed}/${list.length} seeds passed${wal ? ' (native-Wal mode)' : ''}, ${steps} steps each (${simSteps} steps with liveness), in ${secs}s: ${rate} steps/s\n`);
  process.exit(failed > 0 ? 1 : 0);
}

void main();
