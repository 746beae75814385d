// Recovery on open (promise 3): scan every segment, verify the chained CRCs,
// repair a torn tail, refuse corruption. See the decision table in recovery.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "segment.h"
#include "status.h"

namespace tidemark {

// Name of the truncateAfter intent file (see writer.cc): while it exists,
// records above its index are being dropped and recovery finishes the job.
constexpr const char* kTruncateMarkerName = "TRUNCATE";
constexpr size_t kTruncateMarkerBytes = 24;  // magic u64 | last_index u64 | crc u32 | zero u32
constexpr uint64_t kTruncateMarkerMagic = 0x3143555254544d54ull;  // "TMTRUNC1"

void encode_truncate_marker(uint8_t* out, uint64_t last_index);
bool decode_truncate_marker(const uint8_t* data, size_t size, uint64_t* last_index);

struct RecoveryOptions {
  std::string dir;
  uint32_t block = 4096;   // block size of the coming writes (alignment of the write offset)
  // Read-only (Wal.open readOnly, `tidemark wal verify`): nothing is written,
  // removed or repaired; a torn tail is reported (torn_*) and left in place;
  // damage (TM_CORRUPTION) does not fail recovery: it is returned in `damage`
  // and the log is what precedes it (the damaged segment's records up to it).
  bool read_only = false;
  // Read-only: a writer holds the lock, so a damaged-looking last batch may be a
  // write in flight: the scan is repeated, and damage in the last segment is
  // reported only when two scans in a row find it at the same place.
  bool live_writer = false;
  uint64_t from_segment = 0;  // ignore segment files whose first index is below this
  // The operator's way out of rows Q and R (damage in the last batch that the
  // rules cannot tell from a tear): drop that batch instead of refusing, and say so
  // in Recovered::tail_repair. Never applies to any other row.
  bool repair_tail = false;
};

// What repair_tail dropped: the last batch of `path`, from `offset`, holding
// records first_index..last_index (last_index 0: its header is unreadable, so
// from first_index on), and the verdict that would have refused the open.
struct TailRepair {
  bool dropped = false;
  std::string path;
  uint64_t offset = 0;
  uint64_t first_index = 0;
  uint64_t last_index = 0;
  std::string reason;
};

struct Recovered {
  std::vector<std::shared_ptr<Segment>> segments;  // by first index; the last one is active (no File opened)
  uint64_t first_index = 1;
  uint64_t last_index = 0;
  bool repaired = false;           // a torn tail was dropped or a truncation finished
  // Read-only results.
  Status damage;                   // TM_CORRUPTION with path and offset, or Ok
  std::string torn_path;           // a torn tail left in place: [torn_offset, torn_end) of torn_path
  uint64_t torn_offset = 0, torn_end = 0;
  // The segment being scanned and how far its records verified (for `damage`).
  std::shared_ptr<Segment> scanning;
  uint64_t scan_last = 0;
  std::vector<SparseEntry> scan_sparse;  // sparse entries of records after its committed end
  TailRepair tail_repair;          // repair_tail dropped a damaged last batch
};

Status recover(const RecoveryOptions& options, Recovered* out);

// Promise 2 for a cut inside a block that holds kept records (truncateAfter, row H):
// instead of rewriting that block in place, the segment at `path` is rebuilt in
// `tmp`, a zero-filled file of the segment's size: bytes [0, cut) copied, a padding
// frame (chained from `seed`, carrying `next_index`) from `cut` to the next `block`
// boundary, synced; then `tmp` is renamed over `path` and `dir` synced. No byte of
// the old file is written. `*new_end`, `*new_tail_crc`: as cut_segment_tail's.
Status rebuild_segment_with_cut(const std::string& dir, const std::string& path, const std::string& tmp, uint64_t cut,
                                uint64_t next_index, uint32_t seed, uint32_t block, uint64_t* new_end,
                                uint32_t* new_tail_crc);

// The name rebuild_segment_with_cut's file has while it is built (a *.tmp, removed by recovery).
constexpr const char* kCutTmpName = "cut.wal.tmp";

}  // namespace tidemark
