#!/usr/bin/env bash
# Cross-compiles the shipped addon for linux-arm64 into prebuilds/linux-arm64/tidemark.node
# (what `npm run prebuilds` does for the host, with the aarch64 cross toolchain).
# Needs g++-aarch64-linux-gnu (Debian: apt-get install -y g++-aarch64-linux-gnu).
# Builds in a scratch copy, so the working tree's build/ (the host addon) is left alone.
# `npm run prebuilds:arm64`; part of `prepack`. Checked under qemu by test/arm64.test.ts.
#   scripts/prebuild-arm64.sh [output package dir, default .]  -> <dir>/prebuilds/linux-arm64/tidemark.node
set -euo pipefail
out=$(realpath -m "${1:-.}")
cd "$(dirname "$0")/.."
root=$(pwd)
cross=aarch64-linux-gnu
for tool in "$cross-gcc" "$cross-g++" "$cross-strip"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "prebuild-arm64: $tool not found; install the cross compiler (Debian: apt-get install -y g++-aarch64-linux-gnu)" >&2
    exit 2
  fi
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r package.json binding.gyp native "$work/"
ln -s "$root/node_modules" "$work/node_modules"
# node-gyp takes the Node headers from npm's nodedir when set (a local install), else downloads them.
nodedir=${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null || true)}
[ -n "$nodedir" ] && [ "$nodedir" != undefined ] && [ "$nodedir" != null ] && export npm_config_nodedir="$nodedir"
(
  cd "$work"
  TIDEMARK_PREBUILD=1 CC="$cross-gcc" CXX="$cross-g++" LINK="$cross-g++" AR="$cross-ar" \
    PREBUILD_STRIP_BIN="$cross-strip" node node_modules/prebuildify/bin.js --napi --strip --arch arm64
) >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; echo "prebuild-arm64: the cross build failed" >&2; exit 1; }
mkdir -p "$out/prebuilds/linux-arm64"
cp "$work/prebuilds/linux-arm64/tidemark.node" "$out/prebuilds/linux-arm64/tidemark.node"
echo "prebuild-arm64: $out/prebuilds/linux-arm64/tidemark.node"
