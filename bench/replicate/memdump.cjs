// Preload for bench/replicate-diagnose.ts (`node -r memdump.cjs ...`): on SIGUSR2, writes this
// process's memory breakdown to the file named in <dir>/memdump-target-<pid> (dir: the
// --cpu-prof-dir), as JSON: process.memoryUsage(), V8 heap spaces and smaps_rollup.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const v8 = require('node:v8');
process.on('SIGUSR2', () => {
  const arg = process.execArgv.find((a) => a.startsWith('--cpu-prof-dir='));
  if (arg === undefined) return;
  const target = path.join(arg.slice('--cpu-prof-dir='.length), `memdump-target-${process.pid}`);
  const out = fs.readFileSync(target, 'utf8');
  const spaces = v8.getHeapSpaceStatistics().map((s) => ({ name: s.space_name, used: s.space_used_size, size: s.space_size }));
  fs.writeFileSync(out, JSON.stringify({ mu: process.memoryUsage(), spaces, heap: v8.getHeapStatistics(), smaps: fs.readFileSync('/proc/self/smaps_rollup', 'utf8') }));
});
