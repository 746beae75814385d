import * as fs from 'node:fs';
const dir = process.env.OUT ?? '/tmp/rot-res/alt';
const rows = [];
for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
  const j = JSON.parse(fs.readFileSync(`${dir}/${f}`, 'utf8'));
  const [which, cell, run] = f.replace('.json', '').split('-');
  for (const r of j.rows) {
    const x = r.result; if (!x) continue;
    rows.push({ which, cell, run, c: r.contestant, load: j.loadavg.map((v) => v.toFixed(1)).join(' '), x });
  }
}
const f0 = (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
console.log('| cell | build | run | contestant | load (1/5/15) | appends/s | p50 µs | p99 µs | p99.9 µs | max µs | loop delay p50/p99/max µs |');
console.log('| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |');
for (const r of rows.sort((a, b) => a.cell.localeCompare(b.cell) || a.c.localeCompare(b.c) || a.run.localeCompare(b.run) || a.which.localeCompare(b.which)))
  console.log(`| ${r.cell} | ${r.which} | ${r.run} | ${r.c} | ${r.load} | ${f0(r.x.appendsPerS)} | ${f0(r.x.p50Us)} | ${f0(r.x.p99Us)} | ${f0(r.x.p999Us)} | ${f0(r.x.maxUs)} | ${f0(r.x.loopDelayP50Us)}/${f0(r.x.loopDelayP99Us)}/${f0(r.x.loopDelayMaxUs)} |`);
// medians for tidemark
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor((s.length - 1) / 2)]; };
console.log('\nMedians over runs (tidemark rows; jsgc as the same-run peer):');
console.log('| cell | contestant | build | runs | appends/s | p50 µs | p99 µs | p99.9 µs | max µs | loop p99 µs | loop max µs |');
console.log('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
const keys = [...new Set(rows.map((r) => `${r.cell}|${r.c}|${r.which}`))].sort();
for (const k of keys) {
  const [cell, c, which] = k.split('|'); const g = rows.filter((r) => r.cell === cell && r.c === c && r.which === which);
  const m = (f) => f0(med(g.map((r) => r.x[f])));
  console.log(`| ${cell} | ${c} | ${which} | ${g.length} | ${m('appendsPerS')} | ${m('p50Us')} | ${m('p99Us')} | ${m('p999Us')} | ${m('maxUs')} | ${m('loopDelayP99Us')} | ${m('loopDelayMaxUs')} |`);
}
