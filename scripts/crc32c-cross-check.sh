#!/usr/bin/env bash
# Builds test/native/crc32c_check.cc for x86-64 and arm64 and runs it on emulated CPUs:
# x86-64 without SSE4.2 (table), with SSE4.2 but no PCLMUL (table), with both (sse42),
# the host CPU, and arm64 with the CRC extension (arm64). Not part of `npm test`:
# needs g++-aarch64-linux-gnu and qemu-user (apt-get install g++-aarch64-linux-gnu qemu-user).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
src=(test/native/crc32c_check.cc native/crc32c.cc native/crc32c_table.cc native/crc32c_sse42.cc native/crc32c_arm64.cc)
flags=(-std=c++17 -O2 -Wall -Wextra -Werror -Inative -static)
g++ "${flags[@]}" "${src[@]}" -o "$out/x64"
echo "== x86-64, host CPU";                 "$out/x64"
echo "== x86-64, qemu64 (no SSE4.2)";       qemu-x86_64 -cpu qemu64 "$out/x64"
echo "== x86-64, Nehalem (no PCLMUL)";      qemu-x86_64 -cpu Nehalem "$out/x64"
echo "== x86-64, Westmere (SSE4.2+PCLMUL)"; qemu-x86_64 -cpu Westmere "$out/x64"
aarch64-linux-gnu-g++ "${flags[@]}" "${src[@]}" -o "$out/arm64"
echo "== arm64, qemu max";                  qemu-aarch64 "$out/arm64"
