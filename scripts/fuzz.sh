#!/usr/bin/env bash
# libFuzzer runs of the native fuzz targets in test/fuzz (frame decoder, recovery of a
# log directory, CRC-32C), built by CMake (TIDEMARK_FUZZ=libfuzzer) with clang++
# -fsanitize=fuzzer,address,undefined.
#
#   npm run fuzz -- [frame|recovery|crc32c|all] [seconds per target, default 60] [libFuzzer flags...]
#   npm run fuzz -- merge [target|all]    minimize what the runs found into test/fuzz/corpus (to commit)
#
# Needs cmake and clang with libFuzzer (Debian 12: apt-get install -y cmake clang; clang 14 ships it).
# The growing corpus is kept in .fuzz/corpus/<target>, crashes in .fuzz/artifacts/;
# the committed seeds in test/fuzz/corpus/<target> are read, never written, by a run.
# `npm test` replays the committed corpus without clang (test/fuzz/fuzz.test.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
all=(frame recovery crc32c)
max_len() { [ "$1" = crc32c ] && echo 70000 || echo 4096; }
if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz: clang++ not found; install clang (Debian: apt-get install -y clang)" >&2
  exit 2
fi
command -v cmake >/dev/null 2>&1 || { echo "fuzz: cmake not found (Debian: apt-get install -y cmake)" >&2; exit 2; }
cmake -S . -B build/fuzz/libfuzzer -DTIDEMARK_FUZZ=libfuzzer -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build/fuzz/libfuzzer -j"$(nproc)" --target "${all[@]}" >/dev/null
mkdir -p .fuzz/artifacts

if [ "${1:-}" = merge ]; then
  targets=("${2:-all}"); [ "${targets[0]}" = all ] && targets=("${all[@]}")
  for t in "${targets[@]}"; do
    mkdir -p ".fuzz/corpus/$t"
    before=$(ls "test/fuzz/corpus/$t" | wc -l)
    "build/fuzz/libfuzzer/$t" -merge=1 -max_len="$(max_len "$t")" "test/fuzz/corpus/$t" ".fuzz/corpus/$t" 2>&1 | grep -E "MERGE-OUTER: [0-9]+ new files" || true
    echo "fuzz merge $t: $before -> $(ls "test/fuzz/corpus/$t" | wc -l) files, $(du -sh "test/fuzz/corpus/$t" | cut -f1)"
  done
  exit 0
fi

targets=("${1:-all}"); [ "${targets[0]}" = all ] && targets=("${all[@]}")
secs=${2:-60}
shift $(( $# < 2 ? $# : 2 ))
for t in "${targets[@]}"; do
  case " ${all[*]} " in *" $t "*) ;; *) echo "fuzz: unknown target '$t' (${all[*]})" >&2; exit 2 ;; esac
  mkdir -p ".fuzz/corpus/$t"
  echo "== fuzz $t for ${secs}s"
  "build/fuzz/libfuzzer/$t" -max_total_time="$secs" -max_len="$(max_len "$t")" -print_final_stats=1 \
    -artifact_prefix=".fuzz/artifacts/$t-" "$@" ".fuzz/corpus/$t" "test/fuzz/corpus/$t"
done
