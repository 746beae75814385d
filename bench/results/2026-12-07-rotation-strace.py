# Per-rotation cost on the writer thread from 'strace -f -tt -T' output (see 2026-12-07-rotation.md).
# Usage: python3 2026-12-07-rotation-strace.py TRACE...
import re, sys, statistics
def parse(fn):
    ev = {}; pend = {}
    for line in open(fn):
        m = re.match(r'(\d+) (\d+):(\d+):([\d.]+) (.*)', line)
        if not m: continue
        pid = m.group(1); t = int(m.group(2))*3600+int(m.group(3))*60+float(m.group(4)); rest = m.group(5)
        if rest.startswith('<... '):
            nm = re.match(r'<\.\.\. (\w+) resumed>', rest).group(1)
            d = re.search(r'<([\d.]+)>\s*$', rest)
            if pid in pend:
                st, name, args = pend.pop(pid)
                ev.setdefault(pid, []).append((st, float(d.group(1)) if d else 0, name, args))
            continue
        nm = re.match(r'(\w+)\((.*)', rest)
        if not nm: continue
        name, args = nm.group(1), nm.group(2)
        if '<unfinished ...>' in rest: pend[pid] = (t, name, args); continue
        d = re.search(r'<([\d.]+)>\s*$', rest)
        ev.setdefault(pid, []).append((t, float(d.group(1)) if d else 0, name, args))
    for p in ev: ev[p].sort()
    return ev
def q(a, p): a = sorted(a); return a[min(len(a)-1, int(p*len(a)))]
for fn in sys.argv[1:]:
    ev = parse(fn)
    writer = max(ev, key=lambda p: sum(1 for e in ev[p] if e[2] == 'pwritev'))
    E = ev[writer]
    rot_idx = [i for i, e in enumerate(E) if e[2] == 'rename' and 'spare.wal.ready' in e[3].split(',')[0] and re.search(r'\d{20}\.wal', e[3])]
    mids=[]; sc=[]; names={}; pre=[]
    for r in rot_idx:
        lp = max(i for i in range(r) if E[i][2] == 'pwritev'); fd = E[lp][3].split(',')[0]
        fs = next(i for i in range(lp, r) if E[i][2] == 'fdatasync' and E[i][3].startswith(fd))
        nxt = min(i for i in range(r, len(E)) if E[i][2] == 'pwritev')
        mids.append((E[nxt][0] - (E[fs][0] + E[fs][1])) * 1e3); sc.append(sum(E[i][1] for i in range(fs+1, nxt))*1e3)
        for i in range(fs+1, nxt): names.setdefault(E[i][2], []).append(E[i][1]*1e3)
        # take_spare, before the rotating batch's first write: syscalls of the writer between the previous batch's sync and that write
        ps = max((i for i in range(lp) if E[i][2] == 'fdatasync'), default=None)
        if ps is not None: pre.append((E[lp][0] - (E[ps][0]+E[ps][1]))*1e3)
    print(f"{fn}: {len(rot_idx)} rotations. writer, old segment's last fdatasync end -> new segment's first pwritev: wall median {statistics.median(mids):.2f} p90 {q(mids,.9):.2f} max {max(mids):.2f} ms; in syscalls median {statistics.median(sc):.2f} p90 {q(sc,.9):.2f} max {max(sc):.2f} ms")
    print('   syscalls per rotation there: ' + ', '.join(f"{k} x{len(v)/len(rot_idx):.1f} (median {statistics.median(v):.3f}, max {max(v):.2f} ms)" for k, v in names.items()))
    print(f"   gap before the rotating batch's first write (take_spare incl. stopping the fill): median {statistics.median(pre):.2f} p90 {q(pre,.9):.2f} max {max(pre):.2f} ms")
