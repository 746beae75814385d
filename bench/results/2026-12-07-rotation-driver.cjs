// 256 closed-loop writers of 4 KiB, 4 MiB segments, for SECONDS; prints appends/s and rotations.
const root = process.argv[2];
const { Wal } = require(root + '/dist/index.js');
const fs = require('node:fs'), os = require('node:os'), path = require('node:path');
(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rot-drv-'));
  const wal = await Wal.open(dir, { segmentBytes: 4 * 1024 * 1024 });
  const buf = Buffer.alloc(4096, 7);
  const end = Date.now() + Number(process.env.SECONDS || 4) * 1000;
  let n = 0;
  await Promise.all(Array.from({ length: 256 }, async () => { while (Date.now() < end) { await wal.append(buf); n++; } }));
  const st = wal.stats();
  await wal.close();
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify({ appends: n, perS: n / Number(process.env.SECONDS || 4), segments: st.segments }));
})();
