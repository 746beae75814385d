#!/usr/bin/env node
// Where the node-addon-api headers are, for binding.gyp's include_dirs (and CMakeLists.txt).
//
//   node native/napi-include.js            prints the include directory, relative to the package root
//   node native/napi-include.js --vendor   copies the headers into native/node-addon-api/ (prepack)
//
// node-addon-api is header-only and needed only to compile the addon, so it is a
// devDependency, not a dependency: an installed tidemark has no dependency to fetch.
// `npm pack` (prepack) copies its headers into native/node-addon-api/, which the
// tarball ships, so `npx tidemark build-from-source` in a user's project finds them there.
// A checkout uses the devDependency (kept in step by package-lock.json).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const vendored = path.join(__dirname, 'node-addon-api');
const headers = ['napi.h', 'napi-inl.h', 'napi-inl.deprecated.h', 'LICENSE.md'];

// Only the package's own node_modules: never some other version a user's project holds.
function installedDir() {
  const dir = path.join(root, 'node_modules', 'node-addon-api');
  return fs.existsSync(path.join(dir, 'napi.h')) ? dir : undefined;
}

if (process.argv[2] === '--vendor') {
  const from = installedDir();
  if (from === undefined) {
    console.error('napi-include: node-addon-api is not installed: run `npm ci` first');
    process.exit(1);
  }
  fs.rmSync(vendored, { recursive: true, force: true });
  fs.mkdirSync(vendored);
  for (const name of headers) fs.copyFileSync(path.join(from, name), path.join(vendored, name));
  const { version } = require(path.join(from, 'package.json'));
  fs.writeFileSync(path.join(vendored, 'VERSION'), `${version}\n`);
  console.log(`napi-include: node-addon-api ${version} headers copied to ${path.relative(root, vendored)}/`);
} else {
  // A checkout's devDependency first (the version package-lock.json pins), else the copy
  // shipped in the tarball.
  const from = installedDir() ?? (fs.existsSync(path.join(vendored, 'napi.h')) ? vendored : undefined);
  if (from === undefined) {
    console.error('napi-include: no node-addon-api headers: run `npm ci` in a checkout (the npm package ships them in native/node-addon-api/)');
    process.exit(1);
  }
  // gyp resolves include_dirs relative to binding.gyp, which sits in the package root.
  console.log(path.relative(root, from) || '.');
}
