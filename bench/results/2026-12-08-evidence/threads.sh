#!/usr/bin/env bash
# Runs driver.cjs (MODE=single by default) with PAUSE=1 and samples every thread of the node
# process (/proc/PID/task/*: comm, voluntary and nonvoluntary context switches) twice inside
# the measured window (0.2 s after it starts, 0.2 s before it ends). Prints the driver's JSON
# line, then per-thread deltas per append (appends in the interval = rate x interval).
# Usage: DUR=3 IO=uring SYNC=fdatasync bench/results/2026-12-08-evidence/threads.sh
# (DUR: measured seconds; bash reserves SECONDS.)
set -u
here=$(dirname "$0")
dur=${DUR:-3}
out=$(mktemp); err=$(mktemp)
MODE=${MODE:-single} SECONDS=$dur PAUSE=1 node "$here/driver.cjs" > "$out" 2> "$err" &
for i in $(seq 100); do grep -q '^pid ' "$err" && break; sleep 0.05; done
pid=$(sed -n 's/^pid //p' "$err")
snap() { for t in /proc/$pid/task/*; do tid=${t##*/}; c=$(cat $t/comm 2>/dev/null); [ -n "$c" ] && printf '%s %s %s %s\n' "$tid" "${c// /_}" "$(awk '/^voluntary/{print $2}' $t/status)" "$(awk '/^nonvoluntary/{print $2}' $t/status)"; done; }
sleep 1.2; t0=$(date +%s.%N); snap > "$out.a"
sleep "$(echo "$dur - 0.4" | bc)"; t1=$(date +%s.%N); snap > "$out.b"
wait
cat "$out"
rate=$(grep -o '"perS":[0-9]*' "$out" | cut -d: -f2)
awk -v dt="$(echo "$t1 - $t0" | bc)" -v rate="$rate" 'NR==FNR{v[$1]=$3;n[$1]=$4;next}{dv=$3-(($1 in v)?v[$1]:0); dn=$4-(($1 in n)?n[$1]:0); if (dv+dn>0) printf "%-7s %-14s vol %7d nonvol %6d  per append: vol %.2f nonvol %.2f\n",$1,$2,dv,dn,dv/(rate*dt),dn/(rate*dt)}' "$out.a" "$out.b"
rm -f "$out" "$err" "$out.a" "$out.b"
