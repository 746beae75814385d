import re,sys,glob,collections
# strace -ff -ttt -T per-thread files; window = between MARK START and MARK END timestamps (main thread)
files=glob.glob(sys.argv[1]+'.*')
main=[f for f in files if 'MARK START' in open(f).read()][0]
t0=t1=None
for l in open(main):
    if 'MARK START' in l: t0=float(l.split()[0])
    if 'MARK END' in l: t1=float(l.split()[0])
calls=int(sys.argv[2]) if len(sys.argv)>2 else 1
print(f'window {t1-t0:.3f} s, calls {calls}')
for f in sorted(files):
    tid=f.rsplit('.',1)[1]
    agg=collections.defaultdict(lambda:[0,0.0])
    for l in open(f):
        m=re.match(r'(\d+\.\d+) (\w+)\(.*<(\d+\.\d+)>$',l.strip())
        if not m: continue
        ts=float(m.group(1))
        if ts<t0 or ts>t1: continue
        name=m.group(2)
        if name=='write' and 'MARK' in l: continue
        a=agg[name]; a[0]+=1; a[1]+=float(m.group(3))
    if not agg: continue
    print(f'tid {tid}{" (main/JS)" if f==main else ""}: '+', '.join(f'{k} n={v[0]} tot={v[1]*1e3:.1f}ms per-call={v[1]/calls*1e6:.0f}us' for k,v in sorted(agg.items())))
