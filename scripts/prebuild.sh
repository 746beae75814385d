#!/usr/bin/env bash
# Builds the shipped addon into <dir>/prebuilds/<platform>-<arch>/tidemark.node with
# prebuildify (--napi --strip), for the host (`npm run prebuilds`) or cross-compiled for
# linux-arm64 (`npm run prebuilds:arm64`; needs g++-aarch64-linux-gnu, Debian:
# apt-get install -y g++-aarch64-linux-gnu). Both are part of `prepack`.
# Builds in a scratch copy, so the working tree's build/ (the host addon and the test-only
# faults addon the tests load) is left alone by `npm pack`. Only the shipped addon is built:
# the test-only one needs TIDEMARK_TEST_ADDONS=1, which is never set here.
# Checked by test/package.test.ts (host) and, under qemu, test/arm64.test.ts (arm64).
#   scripts/prebuild.sh [--arch arm64] [output package dir, default .]
set -euo pipefail
arch=
if [ "${1:-}" = --arch ]; then arch=$2; shift 2; fi
out=$(realpath -m "${1:-.}")
cd "$(dirname "$0")/.."
root=$(pwd)
env_vars=(TIDEMARK_PREBUILD=1)
args=(--napi --strip)
if [ -n "$arch" ] && [ "$arch" != "$(node -p process.arch)" ]; then
  [ "$arch" = arm64 ] || { echo "prebuild: cross builds go to arm64 only, not '$arch'" >&2; exit 2; }
  cross=aarch64-linux-gnu
  for tool in "$cross-gcc" "$cross-g++" "$cross-strip"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "prebuild: $tool not found; install the cross compiler (Debian: apt-get install -y g++-aarch64-linux-gnu)" >&2
      exit 2
    fi
  done
  env_vars+=(CC="$cross-gcc" CXX="$cross-g++" LINK="$cross-g++" AR="$cross-ar" PREBUILD_STRIP_BIN="$cross-strip")
  args+=(--arch arm64)
fi
platform_arch="$(node -p process.platform)-${arch:-$(node -p process.arch)}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/native"
cp package.json binding.gyp "$work/"
cp native/*.cc native/*.h native/*.js native/*.json "$work/native/" 2>/dev/null || true
ln -s "$root/node_modules" "$work/node_modules"
# node-gyp takes the Node headers from npm's nodedir when set (a local install), else downloads them.
nodedir=${npm_config_nodedir:-$(npm config get nodedir 2>/dev/null || true)}
[ -n "$nodedir" ] && [ "$nodedir" != undefined ] && [ "$nodedir" != null ] && export npm_config_nodedir="$nodedir"
(
  cd "$work"
  env -u TIDEMARK_TEST_ADDONS "${env_vars[@]}" node node_modules/prebuildify/bin.js "${args[@]}"
) >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; echo "prebuild: the $platform_arch build failed" >&2; exit 1; }
mkdir -p "$out/prebuilds/$platform_arch"
cp "$work/prebuilds/$platform_arch/tidemark.node" "$out/prebuilds/$platform_arch/tidemark.node"
echo "prebuild: $out/prebuilds/$platform_arch/tidemark.node"
