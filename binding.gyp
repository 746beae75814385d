{
  "variables": {
    # CRC-32C: run-time dispatch plus one file per instruction set (per-function target attributes, never -march=native).
    "crc_sources": [
      "native/crc32c.cc"
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
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"]
  },
  "targets": [
    {
      # The shipped addon.
      "target_name": "tidemark",
      "sources": ["native/addon.cc", "<@(crc_sources)", "<@(wal_sources)"],
      "libraries": ["-lpthread"]
    },
    {
      # Test-only twin with the fault-injecting file layer (test/log/faults.test.ts).
      # Never shipped: prebuildify picks build/Release/tidemark.node.
      "target_name": "tidemark_faults",
      "defines": ["TIDEMARK_FAULTS"],
      "sources": ["native/addon.cc", "<@(crc_sources)", "<@(wal_sources)", "native/file_faulty.cc"],
      "libraries": ["-lpthread"]
    }
  ]
}
