#!/usr/bin/env bash
# Alternates the tail branch's build and main's build (same bench code: tail's bench/ copied over main's).
set -u
out=${OUT:-/tmp/tail-res/alt}
mkdir -p $out
for run in ${RUNS:-1 2 3}; do
  for which in tail main; do
    if [ $which = tail ]; then cd /work/wt/tail; else cd /tmp/tail-main; fi
    echo "$(date -u +%H:%M:%S) run $run $which load $(cut -d' ' -f1-3 /proc/loadavg)" >> $out/log.txt
    timeout 300 npx tsx bench/append.ts --sizes 4096 --writers 256 --only tidemark,jsgc --many-seconds 0 --seconds 3 --json $out/$which-4k256-$run.json > $out/$which-4k256-$run.md 2>&1
    timeout 300 npx tsx bench/append.ts --sizes 128 --writers 1 --only tidemark,jsgc,sqlite --many-seconds 0 --seconds 3 --json $out/$which-128x1-$run.json > $out/$which-128x1-$run.md 2>&1
  done
done
echo "$(date -u +%H:%M:%S) end load $(cut -d' ' -f1-3 /proc/loadavg)" >> $out/log.txt
