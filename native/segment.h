// Segment files: `<first index, 20 digits>.wal`, preallocated and zero-filled
// once at creation. Sizes grow: a new log's first segment is
// kSegmentBytesInitial (1 MiB, or segmentBytes when smaller), each later one
// twice the one before it, up to segmentBytes (next_segment_bytes), so a small
// log costs a few MiB of disk, not two whole segments. A record that does not
// fit the grown size gets a segment of segmentBytes. Every segment keeps the
// size it was created with; recovery reads each file's own size.
//
// Layout: a 32-byte header at offset 0 (rest of the first 4 KiB zero), frames
// from offset 4096 (record.h).
//   header: crc32c u32 | magic "TMWL" u32 | version u32 | reserved u32 | first_index u64 | nonce u64
// The header CRC covers bytes 4..32 and seeds the first frame's chained CRC; the
// random nonce makes the chain of a segment recreated under the same name
// (after truncateAfter) differ from the old one. The header is written and
// synced into the zero-filled file before it is renamed to its segment name,
// so every segment file has a valid header (an all-zero one is corruption).
//
// Versions: 1, batches of records and a padding frame; 2, every batch starts
// with a batch header frame (record.h) carrying per-sector CRCs, so recovery
// tells a torn last batch from a damaged one exactly (recovery.cc). New
// segments are written as version 2. A log written as version 1 still opens
// (read with the version 1 rules); its last segment keeps being appended in
// version 1 until it fills, and the segments after it are version 2.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "file.h"
#include "status.h"

namespace tidemark {

constexpr uint32_t kSegmentMagic = 0x4c574d54u;  // "TMWL"
constexpr uint32_t kSegmentVersion = 2;     // written by this build
constexpr uint32_t kSegmentVersionV1 = 1;   // still read (and appended to when it is the last segment)
// Version 3: version 2 with an "open" header, whose first-index field is 0. The
// preparer writes it into a spare before the segment's first index is known, so a
// rotation only renames the spare (no header write, no sync on the append path).
// The segment's first index is its file name's, or, for a spare.wal.ready that holds
// records (a rotation whose rename was not yet durable), the one after the last
// named segment's last record, which its first batch header must carry (recovery.cc
// row S). Batches and frames are as in version 2.
constexpr uint32_t kSegmentVersionOpen = 3;

// The next segment, zero-filled ahead of need: created as kSpareTmpName,
// synced, then renamed to kSpareReadyName, which survives close and reopen.
constexpr const char* kSpareTmpName = "spare.wal.tmp";
constexpr const char* kSpareReadyName = "spare.wal.ready";

std::string segment_name(uint64_t first_index);
bool parse_segment_name(const std::string& name, uint64_t* first_index);

// Writes a segment header of format `version` (kSegmentVersion for new segments).
void encode_segment_header(uint8_t* out, uint64_t first_index, uint64_t nonce, uint32_t version);
// A version 1 header (a segment without batch headers, as written before version 2;
// test generators that lay out version 1 frames use it).
inline void encode_segment_header(uint8_t* out, uint64_t first_index, uint64_t nonce) {
  encode_segment_header(out, first_index, nonce, kSegmentVersionV1);
}
uint32_t segment_header_crc(const uint8_t* header);  // CRC of bytes 4..32
// The first-index field a segment header of `version` carries: 0 for an open (version 3) header.
inline uint64_t header_first_index(uint64_t first_index, uint32_t version) {
  return version == kSegmentVersionOpen ? 0 : first_index;
}
// Does `header` (kSegmentHeaderBytes) hold a valid open (version 3) header? `*nonce`: its nonce.
bool is_open_header(const uint8_t* header, uint64_t* nonce);

// One sparse read-index entry: the frame at `offset` is record `index`, chained from `seed`.
struct SparseEntry {
  uint64_t index;
  uint64_t offset;
  uint32_t seed;
};

struct Segment {
  std::string path;
  uint64_t first_index = 0;
  uint64_t file_bytes = 0;            // size of the file (fixed at creation; segments differ)
  uint32_t version = kSegmentVersion; // format version (batch headers from 2)
  int read_fd = -1;                   // buffered, read-only; pread from any thread
  std::unique_ptr<File> file;         // writer's handle; only the writer thread uses it

  // Guarded by Log's index mutex (written by the writer, read by readers).
  uint64_t last_index = 0;            // first_index - 1 when empty
  std::vector<SparseEntry> sparse;

  // Writer-owned.
  uint64_t write_offset = 0;          // next batch starts here (block aligned)
  uint64_t dirty_end = 0;             // > write_offset: [write_offset, dirty_end) may hold frames of a
                                      // rejected batch, to be zeroed before the segment is used further
  uint32_t tail_crc = 0;              // chain seed for the next frame
  uint64_t header_nonce = 0;
  uint64_t last_sparse_index = 0;     // bookkeeping for when to add sparse entries
  uint64_t last_sparse_offset = 0;

  Segment() = default;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  // The CRC of this segment's header: the first frame's chain seed and the seed of batch header CRCs.
  uint32_t header_crc() const;

  // Records a durable record at `offset` (chained from `seed`) in the sparse index if due.
  void note_record(uint64_t index, uint64_t offset, uint32_t seed);
};

// Size of a new log's first segment: kSegmentBytesInitial, at most `max_bytes`.
uint64_t first_segment_bytes(uint64_t max_bytes);
// Size of the segment after one of `prev_bytes`: twice it, at least the first
// segment's size, at most `max_bytes` (segmentBytes).
uint64_t next_segment_bytes(uint64_t prev_bytes, uint64_t max_bytes);

// Creates `path` (must not exist) of `bytes`, reserved with fallocate (falling
// back silently when refused) and zero-written, then fdatasync'd. The caller
// fsyncs the directory after renaming it into place.
Status create_zeroed_file(const std::string& path, uint64_t bytes);

// The first half of create_zeroed_file: creates `path` (must not exist) and
// reserves `bytes` with fallocate. `*allocated`: the reservation succeeded, so
// the file is `bytes` long and reads as zeros already (fdatasync'd: the size
// and the reservation are durable); only its zero-writing is left, which makes
// later syncs of data written into it data-only (no extent conversion to
// journal). False: the filesystem refused fallocate; the file is empty and
// must be zero-written before use. On failure the file is removed.
Status create_allocated_file(const std::string& path, uint64_t bytes, bool* allocated);

// Zero-writes [from, to) of the file `path`, 256 KiB at a time (each written
// back and waited for), asking `stop()` before each chunk: when it says true
// the fill ends there (`*reached` is where), without a sync. Filled to `to`,
// the file is fdatasync'd. The preparer fills a prepared spare this way while
// no append needs it, and stops within one chunk once the writer takes it.
Status zero_fill_file(const std::string& path, uint64_t from, uint64_t to, const std::function<bool()>& stop,
                      uint64_t* reached);

// Makes the zero-filled (spare) file `path` exactly `bytes` long: shrinks it,
// or reserves and zero-writes the bytes it lacks; then fdatasync. On failure the
// file may be partly extended (the caller removes it).
Status resize_zeroed_file(const std::string& path, uint64_t bytes);

// Writes a fresh open (version 3) header (random nonce) into the zero-filled file
// `path` and fdatasyncs it: the preparer heads a spare this way before it is ready.
Status write_open_header(const std::string& path, uint64_t* nonce);
// Reads the header of `path`: `*open` when it is a valid open header (its nonce in `*nonce`).
Status read_open_header(const std::string& path, bool* open, uint64_t* nonce);

// Writes a fresh header (random nonce) into a zero-filled segment file and syncs it.
// `*nonce` and `*header_crc` describe the new chain start.
Status write_segment_header(const std::string& path, uint64_t first_index, uint64_t* nonce, uint32_t* header_crc);

// Opens a segment's read fd and, when `writable`, its write File (with `extra_flags`, e.g. kOpenDsync).
Status open_segment_files(Segment* seg, bool writable, int extra_flags);

// Drops everything in [cut, dirty_end) of a segment: when `pad_at_cut`, a padding
// frame (chained from `seed`, carrying `next_index`) fills from `cut` to the next
// block boundary; everything after is zeroed; then fdatasync. Writes whole blocks
// (reads back the bytes before `cut` in its block). `*new_end` is where the next
// batch starts.
// `*new_tail_crc` is the chain seed after the cut (the padding's CRC, or `seed`).
Status cut_segment_tail(File* file, uint64_t cut, uint64_t dirty_end, bool pad_at_cut, uint64_t next_index,
                        uint32_t seed, uint32_t block, uint64_t* new_end, uint32_t* new_tail_crc);

uint64_t random_u64();

}  // namespace tidemark
