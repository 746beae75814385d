#!/usr/bin/env bash
# Installs the benchmark-only dependencies (bench/package.json, pinned by
# bench/package-lock.json) into bench/node_modules when they are missing or older than the
# lockfile. Run by every `npm run bench:*` script; the root `npm ci` (what the tests need)
# never installs them. better-sqlite3, lmdb, classic-level and sse4_crc32 compile or fetch
# native code: the first run takes a minute or two.
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.package-lock.json
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ] && [ "$stamp" -nt package.json ]; then exit 0; fi
echo "bench: installing the benchmark-only dependencies into bench/node_modules (npm ci, once)" >&2
npm ci --no-audit --no-fund >&2
