{
  "variables": {
    # CRC-32C: run-time dispatch plus one file per instruction set (per-function target attributes, never -march=native).
    "crc_sources": [
      "native/crc32c.cc",
      "native/crc32c_table.cc",
      "native/crc32c_sse42.cc",
      "native/crc32c_arm64.cc"
    ],
    # The WAL library below addon.cc (no N-API in these).
    "wal_sources": [
      "native/file.cc",
      "native/record.cc",
      "native/segment.cc",
      "native/recovery.cc",
      "native/writer.cc",
      "native/log.cc"
    ]
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
      "sources": ["native/addon.cc", "<@(crc_sources)", "<@(wal_sources)"],
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
          "sources": ["native/addon.cc", "<@(crc_sources)", "<@(wal_sources)", "native/file_faulty.cc"],
          "libraries": ["-lpthread"]
        }
      ]
    }]
  ]
}
