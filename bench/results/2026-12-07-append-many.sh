#!/usr/bin/env bash
# Alternates this branch's build (many) and main's (lib/ + native addon of main c46b8b2 in
# $MAIN, with this branch's bench/ copied over it, so both sides run the same harness,
# including the pipelined appendMany line main's bench does not have). The order flips
# every run. Outputs: $OUT/<build>-<what>-<run>.{md,json}, $OUT/log.txt (load averages).
set -u
out=${OUT:-/tmp/many-res}
many=${MANY:-/work/wt/many}
main=${MAIN:-/tmp/many-main}
mkdir -p "$out"
for run in ${RUNS:-1 2 3}; do
  if [ $((run % 2)) = 1 ]; then order="many main"; else order="main many"; fi
  for which in $order; do
    if [ "$which" = many ]; then cd "$many"; else cd "$main"; fi
    echo "$(date -u +%H:%M:%S) run $run $which load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/log.txt"
    timeout 300 npx tsx bench/append.ts --only tidemark --sizes 128 --writers 1 --seconds 1 --many-seconds 3 --json "$out/$which-many-$run.json" > "$out/$which-many-$run.md" 2>&1
    timeout 300 npx tsx bench/append.ts --only tidemark --sizes 128 --writers 1,16,256 --seconds 2 --many-seconds 0 --json "$out/$which-128-$run.json" > "$out/$which-128-$run.md" 2>&1
    timeout 300 npx tsx bench/append.ts --only tidemark --sizes 4096 --writers 256 --seconds 2 --many-seconds 0 --json "$out/$which-4k256-$run.json" > "$out/$which-4k256-$run.md" 2>&1
  done
done
echo "$(date -u +%H:%M:%S) end load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/log.txt"
