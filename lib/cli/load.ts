/**
 * The unique-key write load of the demo, the process tests and the benchmark:
 * writers put `<prefix>/<writer>/<seq>` keys (prefix `demo` by default) one at a time, remembering which were
 * acknowledged, which have an unknown outcome, and when each acknowledgement came;
 * {@link readAll} and {@link verify} then check that every acknowledged write is
 * there with its value and nothing else is.
 *
 * @packageDocumentation
 */
import { performance } from 'node:perf_hooks';
import { sleep } from './local-cluster';
import { classifyFailure, type KvFacade } from './wiring';

/** Keys a load writes: `<prefix>/<writer>/<seq>`, zero-padded so ranges list them in order. */
export function demoKey(writer: number, seq: number, prefix = 'demo'): string {
  return `${prefix}/${String(writer).padStart(3, '0')}/${String(seq).padStart(8, '0')}`;
}

export interface Load {
  /** Every key of this load starts with `<prefix>/`. */
  readonly prefix: string;
  readonly acked: Map<string, string>;
  readonly unknown: Map<string, string>;
  notApplied: number;
  /** Failed calls by error code. */
  readonly failures: Map<string, number>;
  /** performance.now() of every acknowledgement, in order. */
  readonly ackTimes: number[];
  stop: boolean;
  readonly done: Promise<void>;
}

export function startLoad(kv: KvFacade, writers: number, prefix = 'demo'): Load {
  if (prefix.includes('/')) throw new Error(`load prefix '${prefix}' must not contain '/'`);
  const load: Load = { prefix, acked: new Map(), unknown: new Map(), notApplied: 0, failures: new Map(), ackTimes: [], stop: false, done: Promise.resolve() };
  const writer = async (w: number) => {
    for (let seq = 1; !load.stop; seq++) {
      const key = demoKey(w, seq, prefix);
      const value = `v${w}.${seq}.${(w * 7919 + seq * 104729) % 1000003}`;
      try {
        await kv.put(key, value);
        load.acked.set(key, value);
        load.ackTimes.push(performance.now());
      } catch (err) {
        const f = classifyFailure(err);
        load.failures.set(f.code, (load.failures.get(f.code) ?? 0) + 1);
        if (f.outcome === 'unknown') load.unknown.set(key, value);
        else load.notApplied++;
        await sleep(20);
      }
    }
  };
  (load as { done: Promise<void> }).done = Promise.all(Array.from({ length: writers }, (_, w) => writer(w))).then(() => undefined);
  return load;
}

/** Every key under `<prefix>/` (default `demo/`), read page by page. */
export async function readAll(kv: KvFacade, follower: boolean, prefix = 'demo'): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let start = `${prefix}/`;
  const end = `${prefix}0`; // '0' follows '/'
  for (let page = 0; page < 100_000; page++) {
    const r = await kv.range(start, end, 5000, { follower });
    for (const [k, v] of r.entries) out.set(k, v);
    const last = r.entries[r.entries.length - 1];
    if (!r.more || last === undefined) break;
    start = last[0] + '\u0000';
  }
  return out;
}

/** Compares what was read with what was written; returns the problems (empty: all good). */
export function verify(read: Map<string, string>, load: Load): string[] {
  const problems: string[] = [];
  for (const [k, v] of load.acked) {
    const got = read.get(k);
    if (got !== v) problems.push(`${k}: acknowledged ${JSON.stringify(v)}, read ${got === undefined ? 'nothing' : JSON.stringify(got)}`);
  }
  for (const [k, v] of read) {
    if (load.acked.has(k) || !k.startsWith(`${load.prefix}/`)) continue;
    if (load.unknown.get(k) !== v) problems.push(`${k}: read ${JSON.stringify(v)}, never written with that value`);
  }
  return problems;
}

/** Longest stretch without an acknowledgement between `from` and `to` (ms). */
export function longestGap(times: readonly number[], from: number, to: number): number {
  let prev = from;
  let gap = 0;
  for (const t of times) {
    if (t < from) continue;
    if (t > to) break;
    gap = Math.max(gap, t - prev);
    prev = t;
  }
  return Math.max(gap, to - prev);
}


/**
 * The write gap of a failover: the longest stretch without an acknowledgement from the
 * kill until the first acknowledgement after the new leader was seen (`tElected`). The
 * window does not end at the first acknowledgement after the kill, since answers the old
 * leader sent just before it died can still arrive then. Undefined when nothing was
 * acknowledged after `tElected`. `ackTimes` ascending.
 */
export function writeGap(ackTimes: readonly number[], tKill: number, tElected: number): number | undefined {
  const resumed = ackTimes.find((t) => t > tElected);
  return resumed === undefined ? undefined : longestGap(ackTimes, tKill, resumed);
}
