#!/usr/bin/env bash
# Alternates main's build (/work/main) and this branch's (/work/wt/rot): the same bench command in each tree.
set -u
out=${OUT:-/tmp/rot-res/alt}
mkdir -p $out
for run in ${RUNS:-1 2 3}; do
  for which in rot main; do
    if [ $which = rot ]; then cd /work/wt/rot; else cd /work/main; fi
    echo "$(date -u +%H:%M:%S) run $run $which load $(cut -d' ' -f1-3 /proc/loadavg)" >> $out/log.txt
    timeout 300 npx tsx bench/append.ts --only tidemark --sizes 4096 --writers 256 --segment-bytes 4194304 --many-seconds 0 --json $out/$which-4k256-$run.json > $out/$which-4k256-$run.md 2>&1
  done
done
echo "$(date -u +%H:%M:%S) end load $(cut -d' ' -f1-3 /proc/loadavg)" >> $out/log.txt
