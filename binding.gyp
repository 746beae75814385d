{
  "variables": {
    # The source lists live in native/sources.json, which CMakeLists.txt reads too (one list, no drift).
    # CRC-32C: run-time dispatch plus one file per instruction set (per-function target attributes, never -march=native).
    "crc_sources": ["<!@(node -p \"require('./native/sources.json').crc.join(' ')\")"],
    # The WAL library below addon.cc (no N-API in these).
    "wal_sources": ["<!@(node -p \"require('./native/sources.json').wal.join(' ')\")"],
    "addon_sources": ["<!@(node -p \"require('./native/sources.json').addon.join(' ')\")"],
    "faults_sources": ["<!@(node -p \"require('./native/sources.json').faults.join(' ')\")"]
  },
  "target_defaults": {
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++1y", "-std=gnu++17"],
    "cflags_cc": ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden", "-O2"],
    "include_dirs": ["<!(node native/napi-include.js)"],
    "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"]
  },
  "targets": [
    {
      # The shipped addon.
      "target_name": "tidemark",
      "sources": ["<@(addon_sources)", "<@(crc_sources)", "<@(wal_sources)"],
      "libraries": ["-lpthread"]
    }
  ],
  "conditions": [
    # Test-only twin with the fault-injecting file layer (test/log/faults.test.ts). Never shipped and
    # never built in a user's install: only `npm run build:native` (a checkout) sets TIDEMARK_TEST_ADDONS=1;
    # prebuilds and `npx tidemark build-from-source` leave it out. It is also named
    # build/Release/tidemark_faults.test-addon, not *.node, so no loader (lib/log/binding.ts, prebuildify,
    # which takes the first *.node file in build/Release) can ever pick it; tests load it with process.dlopen.
    ["<!(node -p \"process.env.TIDEMARK_TEST_ADDONS === '1' && !process.env.TIDEMARK_PREBUILD ? 1 : 0\")==1", {
      "targets": [
        {
          "target_name": "tidemark_faults",
          "target_conditions": [["_type=='loadable_module'", {"product_extension": "test-addon"}]],
          "defines": ["TIDEMARK_FAULTS"],
          "sources": ["<@(addon_sources)", "<@(crc_sources)", "<@(wal_sources)", "<@(faults_sources)"],
          "libraries": ["-lpthread"]
        }
      ]
    }]
  ]
}
