// Measurement-only driver for the 2026-12-08 evidence files (run after `npm run build`).
// One closed-loop caller against the built Wal (dist/), no tsx, so that strace/perf see
// only node's own threads.
//   MODE=many   appendMany of MANY_RECORDS x SIZE per call, awaited (the bench's 1-caller line)
//   MODE=single append of SIZE, WRITERS closed-loop writers (the bench cells)
// Env: SECONDS (3), SIZE (128), WRITERS (1), MANY_RECORDS (1000), IO (thread|uring),
//      SYNC (fdatasync|dsync), DIR (fresh temp dir), PAUSE=1 prints the pid and waits 1 s
//      before and after the measured window (for attaching tracers / sampling /proc).
// Prints one JSON line: rate, latency percentiles, JS-side time of the synchronous call
// (MODE=many: the packing pass), and the Wal's own sync latency histogram.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Wal } = require(path.join(__dirname, '../../../dist/index.js'));

const env = (k, d) => (process.env[k] === undefined || process.env[k] === '' ? d : process.env[k]);
const MODE = env('MODE', 'many');
const SECONDS = Number(env('SECONDS', '3'));
const SIZE = Number(env('SIZE', '128'));
const WRITERS = Number(env('WRITERS', '1'));
const N = Number(env('MANY_RECORDS', '1000'));
const IO = env('IO', 'thread');
const SYNC = env('SYNC', 'fdatasync');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (a, p) => a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))];
// A marker visible to strace (-e write): write(2) to /dev/null.
const nullFd = fs.openSync('/dev/null', 'w');
const mark = (s) => fs.writeSync(nullFd, `MARK ${s}\n`);

async function main() {
  const own = process.env.DIR === undefined;
  const dir = own ? fs.mkdtempSync(path.join(os.tmpdir(), 'tm-evid-')) : process.env.DIR;
  const wal = await Wal.open(dir, { io: IO, sync: SYNC });
  try {
    const lat = [];
    const syncPart = [];
    let records = 0;
    if (MODE === 'many') {
      const batch = Array.from({ length: N }, () => Buffer.alloc(SIZE, 0x5a));
      for (let i = 0; i < 3; i++) await wal.appendMany(batch);
      if (env('PAUSE', '') === '1') { console.error(`pid ${process.pid}`); await sleep(1000); }
      const s0 = wal.stats();
      mark('START');
      const start = performance.now();
      const end = start + SECONDS * 1000;
      let last = start;
      for (;;) {
        const t0 = performance.now();
        if (t0 >= end) break;
        const p = wal.appendMany(batch);
        const t1 = performance.now();
        await p;
        const t2 = performance.now();
        lat.push((t2 - t0) * 1000);
        syncPart.push((t1 - t0) * 1000);
        records += N;
        last = t2;
      }
      mark('END');
      report(wal, s0, records, (last - start) / 1000, lat, syncPart);
    } else {
      const payloads = Array.from({ length: WRITERS }, () => { const b = Buffer.allocUnsafe(SIZE); for (let i = 0; i < SIZE; i++) b[i] = (Math.random() * 256) | 0; return b; });
      const warmEnd = performance.now() + 300;
      await Promise.all(payloads.map(async (p) => { while (performance.now() < warmEnd) await wal.append(p); }));
      if (env('PAUSE', '') === '1') { console.error(`pid ${process.pid}`); await sleep(1000); }
      const s0 = wal.stats();
      mark('START');
      const start = performance.now();
      const end = start + SECONDS * 1000;
      let last = start;
      await Promise.all(payloads.map(async (p) => {
        for (;;) {
          const t0 = performance.now();
          if (t0 >= end) return;
          await wal.append(p);
          const t2 = performance.now();
          lat.push((t2 - t0) * 1000);
          records++;
          last = Math.max(last, t2);
        }
      }));
      mark('END');
      report(wal, s0, records, (last - start) / 1000, lat, []);
    }
    if (env('PAUSE', '') === '1') await sleep(1000);
  } finally {
    await wal.close();
    if (own) fs.rmSync(dir, { recursive: true, force: true });
  }
}

function report(wal, s0, records, seconds, lat, syncPart) {
  const s1 = wal.stats();
  lat.sort((a, b) => a - b);
  syncPart.sort((a, b) => a - b);
  const h = s1.syncLatencyUs;
  const h0 = s0.syncLatencyUs;
  const counts = h.counts.map((c, i) => c - (h0.counts[i] ?? 0));
  const syncs = s1.syncs - s0.syncs;
  // Median sync latency from the power-of-two histogram: the bucket holding the median.
  let acc = 0; let syncMedBucket;
  for (let i = 0; i < counts.length; i++) { acc += counts[i]; if (acc * 2 >= syncs) { syncMedBucket = `${h.lowerBounds[i]}-${h.lowerBounds[i + 1] ?? 'inf'}`; break; } }
  const out = {
    mode: MODE, io: wal.io, sync: SYNC, size: SIZE, writers: MODE === 'many' ? 1 : WRITERS, records, seconds: +seconds.toFixed(3),
    perS: Math.round(records / seconds), calls: lat.length,
    p50Us: Math.round(pct(lat, 50)), p99Us: Math.round(pct(lat, 99)), p999Us: Math.round(pct(lat, 99.9)),
    syncs, batches: s1.batches - s0.batches, syncMedianBucketUs: syncMedBucket,
    syncHist: Object.fromEntries(counts.map((c, i) => [h.lowerBounds[i], c]).filter(([, c]) => c > 0)),
    load: os.loadavg().map((x) => +x.toFixed(2)),
  };
  if (syncPart.length) { out.callSyncPartP50Us = Math.round(pct(syncPart, 50)); out.callSyncPartMeanUs = Math.round(syncPart.reduce((a, b) => a + b, 0) / syncPart.length); }
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
