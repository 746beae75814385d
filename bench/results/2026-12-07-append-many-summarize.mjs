// Summarizes 2026-12-07-append-many.sh's output: every run, then medians per build.
import * as fs from 'node:fs';
const dir = process.env.OUT ?? '/tmp/many-res';
const f0 = (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
const med = (a) => { const s = [...a].sort((x, y) => x - y); const n = s.length; return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const many = [];
const cells = [];
for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
  const j = JSON.parse(fs.readFileSync(`${dir}/${f}`, 'utf8'));
  const [which, , run] = f.replace('.json', '').split('-');
  const load = j.loadavg.map((v) => v.toFixed(1)).join(' ');
  for (const m of j.appendMany ?? []) many.push({ which, run, load, line: `${m.callers}×${m.inflight ?? 1}`, m });
  for (const r of j.rows) if (r.result && r.contestant === 'tidemark') cells.push({ which, run, load, cell: r.cell, x: r.result });
}
console.log('appendMany, 1,000 × 128 B per call (callers × calls in flight each), every run:\n');
console.log('| line | build | run | load (1/5/15) at start | records/s | call p50 µs | call p99 µs | syncs/1k |');
console.log('| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |');
const order = (a, b) => a.line.localeCompare(b.line) || a.run.localeCompare(b.run) || a.which.localeCompare(b.which);
for (const r of [...many].sort(order)) console.log(`| ${r.line} | ${r.which} | ${r.run} | ${r.load} | ${f0(r.m.recordsPerS)} | ${f0(r.m.callP50Us)} | ${f0(r.m.callP99Us)} | ${((r.m.syncs / r.m.records) * 1000).toFixed(2)} |`);
console.log('\nMedians:\n');
console.log('| line | build | runs | records/s | call p50 µs | call p99 µs | many ÷ main (records/s) |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
for (const line of [...new Set(many.map((r) => r.line))].sort()) {
  const g = (w) => many.filter((r) => r.line === line && r.which === w);
  const mm = (w, k) => med(g(w).map((r) => r.m[k]));
  for (const w of ['main', 'many']) console.log(`| ${line} | ${w} | ${g(w).length} | ${f0(mm(w, 'recordsPerS'))} | ${f0(mm(w, 'callP50Us'))} | ${f0(mm(w, 'callP99Us'))} | ${w === 'many' ? (mm('many', 'recordsPerS') / mm('main', 'recordsPerS')).toFixed(2) + '×' : ''} |`);
}
console.log('\nSingle-append cells (tidemark), every run:\n');
console.log('| cell | build | run | load | appends/s | p50 µs | p99 µs | p99.9 µs | loop delay p99 µs |');
console.log('| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of [...cells].sort((a, b) => a.cell.localeCompare(b.cell) || a.run.localeCompare(b.run) || a.which.localeCompare(b.which)))
  console.log(`| ${r.cell} | ${r.which} | ${r.run} | ${r.load} | ${f0(r.x.appendsPerS)} | ${f0(r.x.p50Us)} | ${f0(r.x.p99Us)} | ${f0(r.x.p999Us)} | ${f0(r.x.loopDelayP99Us)} |`);
console.log('\nMedians:\n');
console.log('| cell | build | runs | appends/s | p50 µs | p99 µs | p99.9 µs | many ÷ main (appends/s) |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const cell of [...new Set(cells.map((r) => r.cell))]) {
  const g = (w) => cells.filter((r) => r.cell === cell && r.which === w);
  const mm = (w, k) => med(g(w).map((r) => r.x[k]));
  for (const w of ['main', 'many']) console.log(`| ${cell} | ${w} | ${g(w).length} | ${f0(mm(w, 'appendsPerS'))} | ${f0(mm(w, 'p50Us'))} | ${f0(mm(w, 'p99Us'))} | ${f0(mm(w, 'p999Us'))} | ${w === 'many' ? (mm('many', 'appendsPerS') / mm('main', 'appendsPerS')).toFixed(2) + '×' : ''} |`);
}
