// Upper bound on what segment recycling could give (bench/results/2026-12-08-recycling-bound.md).
// Run after `npm run build`:  node bench/results/2026-12-08-recycling-bound.cjs [runs=3]
// For each cell (4 KiB x 256, 128 B x 256) it alternates, `runs` times each:
//   A: the bench's case: fresh directory, default segmentBytes (64 MiB), 0.3 s warm-up, then
//      the measured window; segment growth (1 MiB doubling), rotations and the preparer's
//      zero-fill of the next spares happen inside it.
//   B: segmentBytes 1 GiB; the log is first grown with appendMany (4 MiB calls) until its
//      active segment is a 1 GiB one (past the growth), then the process waits until nothing
//      writes (its /proc/self/io write_bytes unchanged for 1.5 s: the 1 GiB spare is fully
//      zero-filled and synced), then the same warm-up and window. No rotation and no zero-fill
//      may happen inside B's window: checked with stats().segments and with per-thread write
//      syscall counts (/proc/self/task/*/io syscw), printed for every run.
// Each run prints one JSON line: appends/s, p50/p99/p99.9 µs, load average, segments
// created in the window, and the threads that issued write syscalls in it.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Wal } = require(path.join(__dirname, '../../dist/index.js'));

const SECONDS = Number(process.env.WINDOW_SECONDS ?? '2');
// ONLY=B runs B alone (for strace); MARK write(2)s to /dev/null bracket every measured window.
const ONLY = process.env.ONLY;
const nullFd = fs.openSync('/dev/null', 'w');
const mark = (s) => fs.writeSync(nullFd, `MARK ${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (a, p) => a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))];
const ioField = (file, k) => Number((fs.readFileSync(file, 'utf8').match(new RegExp(`^${k}: (\\d+)`, 'm')) ?? [])[1]);
const threadWrites = () => {
  const m = new Map();
  for (const t of fs.readdirSync('/proc/self/task')) { try { m.set(t, ioField(`/proc/self/task/${t}/io`, 'syscw')); } catch {} }
  return m;
};

async function drive(wal, payloads, seconds, record) {
  const lat = [];
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const start = performance.now();
  let last = start;
  await Promise.all(payloads.map(async (p) => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) return;
      await wal.append(p);
      const t1 = performance.now();
      if (t1 >= end) return;
      if (record) { lat.push((t1 - t0) * 1000); n++; last = Math.max(last, t1); }
    }
  }));
  return { n, seconds: (last - start) / 1000, lat };
}

async function one(kind, size, writers) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tm-recyc-${kind}-`));
  const wal = await Wal.open(dir, kind === 'B' ? { segmentBytes: 1024 * 1024 * 1024 } : {});
  try {
    let grownMs = 0;
    if (kind === 'B') {
      const t = performance.now();
      const batch = Array.from({ length: 1000 }, () => Buffer.alloc(4096, 0x33));
      const newest = () => fs.readdirSync(dir).filter((f) => /^\d{20}\.wal$/.test(f)).sort().pop();
      while (fs.statSync(path.join(dir, newest())).size < 1024 * 1024 * 1024) await wal.appendMany(batch);
      // Wait until nothing writes for 1.5 s (the preparer has finished the 1 GiB spare).
      let wb = ioField('/proc/self/io', 'write_bytes');
      let quiet = 0;
      while (quiet < 3) { await sleep(500); const w = ioField('/proc/self/io', 'write_bytes'); quiet = w === wb ? quiet + 1 : 0; wb = w; }
      grownMs = performance.now() - t;
    }
    const payloads = Array.from({ length: writers }, () => { const b = Buffer.allocUnsafe(size); for (let i = 0; i < size; i++) b[i] = (Math.random() * 256) | 0; return b; });
    await drive(wal, payloads, 0.3, false);
    const st0 = wal.stats();
    const seg0 = st0.segments;
    const w0 = threadWrites();
    const load = os.loadavg().map((x) => +x.toFixed(2));
    mark(`START ${kind}`);
    const r = await drive(wal, payloads, SECONDS, true);
    mark(`END ${kind}`);
    const w1 = threadWrites();
    const st1 = wal.stats();
    const seg1 = st1.segments;
    // Mean fdatasync latency in the window from the Wal's power-of-two histogram (each sync at its bucket's lower edge: a lower bound).
    const hc = st1.syncLatencyUs.counts.map((c, i) => c - (st0.syncLatencyUs.counts[i] ?? 0));
    const syncs = st1.syncs - st0.syncs;
    const syncLowerMeanUs = Math.round(hc.reduce((a, c, i) => a + c * st1.syncLatencyUs.lowerBounds[i], 0) / Math.max(1, syncs));
    r.lat.sort((a, b) => a - b);
    const writesByThread = {};
    for (const [t, c] of w1) { const d = c - (w0.get(t) ?? 0); if (d > 0) writesByThread[t] = d; }
    console.log(JSON.stringify({ kind, cell: `${size === 4096 ? '4 KiB' : size + ' B'} x ${writers}`, appendsPerS: Math.round(r.n / r.seconds), p50Us: Math.round(pct(r.lat, 50)), p99Us: Math.round(pct(r.lat, 99)), p999Us: Math.round(pct(r.lat, 99.9)), load, segmentsInWindow: seg1 - seg0, syncs, appendsPerSync: +(r.n / Math.max(1, syncs)).toFixed(1), syncLowerMeanUs, writesByThread, growAndWaitS: +(grownMs / 1000).toFixed(1) }));
  } finally {
    await wal.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

(async () => {
  const runs = Number(process.argv[2] ?? '3');
  const cells = process.env.CELL === '128' ? [[128, 256]] : process.env.CELL === '4096' ? [[4096, 256]] : [[4096, 256], [128, 256]];
  for (const [size, writers] of cells) {
    for (let i = 0; i < runs; i++) {
      for (const kind of i % 2 === 0 ? ['A', 'B'] : ['B', 'A']) if (ONLY === undefined || ONLY === kind) await one(kind, size, writers);
    }
  }
})().catch((e) => { console.error(e); process.exitCode = 1; });
