// Record frames (pure: encode and check over byte spans; a fuzz target).
//
// Frame, little endian, 8-byte aligned:
//   crc32c u32 | length u32 | index u64 | payload[length] | zero pad to 8
// The CRC covers length, index and payload and is seeded with the CRC of the
// previous frame in the same segment (the first frame is seeded with the
// segment header's CRC, see segment.h), so a frame only verifies in its place
// in the chain.
//
// Padding frame (ends a batch on a block boundary, promise 2):
//   crc32c u32 | 0x80000000 | total_bytes u32 | next_index u64 | zeros | crc32c u32 | "TMPD" u32
// total_bytes >= 24 includes header and trailer; its CRC covers length and
// next_index, chained like a record. The trailer repeats the CRC so a scan that
// lands on the following block boundary can learn the chain seed there (a
// hint only: a padding frame is valid when its header verifies).
//
// Batch header frame (segment format v2; segment.h): the first frame of every
// batch, at the batch's start (a 4 KiB boundary), written in the same write:
//   crc32c u32 | 0xC0000000 + header_bytes u32 | first_index u64 | batch_bytes u32 |
//   count u32 | prev_crc u32 | tail_crc u32 | sector_crc u32 [batch_bytes / 512 - 1] | zero pad to 8
// batch_bytes: from the header to the end of the batch's padding frame (a
// multiple of 512). count: records in the batch. prev_crc: the chain seed of
// the batch's first record (the previous frame's CRC; the header itself is not a
// link of the chain, it is bound to it by this field). sector_crc[k - 1]:
// CRC-32C (seed 0) of the batch's 512-byte sector k, k >= 1. tail_crc: CRC-32C
// (seed 0) of the bytes of sector 0 after the header (none when the header
// fills it). The header's CRC covers its bytes 4 .. min(header_bytes, 512) and
// is seeded with the segment header's CRC: it verifies on its own, so recovery
// can recognise a later batch without the chain, and it cannot verify in
// another segment or an earlier incarnation of this one. Entry k lies in a
// sector before sector k (32 + 4(k - 1) < 512k), so the entries are filled from
// the last sector backwards, and every byte of a batch except the header's CRC
// field is covered by exactly one of: the header CRC, tail_crc, a sector CRC.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "limits.h"

namespace tidemark {

constexpr uint32_t kPadFlag = 0x80000000u;
constexpr uint32_t kPadMagic = 0x44504d54u;  // "TMPD"
constexpr uint32_t kFrameFlagMask = 0xC0000000u;   // top two bits of the length field
constexpr uint32_t kBatchHeaderFlag = 0xC0000000u; // a batch header frame (v2)
constexpr size_t kBatchHeaderFixedBytes = 32;      // before the sector CRCs
constexpr size_t kSectorBytes = 512;               // what a disk persists whole

inline size_t frame_bytes(uint32_t length) {
  return kFrameHeaderBytes + ((static_cast<size_t>(length) + kFrameAlignBytes - 1) & ~(kFrameAlignBytes - 1));
}

inline uint32_t load32(const uint8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;  // little-endian hosts only (x86-64, arm64)
}
inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}
inline void store32(uint8_t* p, uint32_t v) { memcpy(p, &v, 4); }
inline void store64(uint8_t* p, uint64_t v) { memcpy(p, &v, 8); }

// Writes the frame header (crc 0), payload and zero pad. `out` has frame_bytes(size) bytes.
void encode_record(uint8_t* out, uint64_t index, const uint8_t* payload, uint32_t size);

// Computes the chained CRC of an encoded frame at `frame`, stores it and returns it.
uint32_t seal_record(uint8_t* frame, uint32_t seed);

// Bytes of padding that end a batch ending at `end` on a block boundary: >= kPadFrameMinBytes.
size_t padding_bytes(uint64_t end, uint32_t block);

// Writes a padding frame of `bytes` (>= 24, multiple of 8) at `out`; returns its CRC.
uint32_t encode_padding(uint8_t* out, size_t bytes, uint64_t next_index, uint32_t seed);

// Bytes of the batch header of a batch of `batch_bytes` (a multiple of 512).
size_t batch_header_bytes(uint64_t batch_bytes);

// Layout of a batch starting at `off` (block aligned) with `records` bytes of
// record frames: `*header` bytes of batch header (0 when `with_header` is false,
// a v1 segment) and `*pad` bytes of padding frame. Returns the batch's bytes.
uint64_t batch_layout(uint64_t off, size_t records, bool with_header, uint32_t block, size_t* header, size_t* pad);

// Whether that batch fits in a segment of `cap` bytes: off + batch_layout(...) <= cap,
// decided without the layout's fixed-point loop unless the batch comes within a
// block or so of the segment's end (the writer asks once per record).
// `batch_fits_surely(off, with_header, block, cap)` is the most record bytes that
// fit for certain (0: none for certain); batch_fits answers yes at once up to it.
uint64_t batch_fits_surely(uint64_t off, bool with_header, uint32_t block, uint64_t cap);
bool batch_fits(uint64_t off, size_t records, bool with_header, uint32_t block, uint64_t cap);

// Writes a batch header with every CRC zero at `out` (`header_bytes` bytes).
void encode_batch_header(uint8_t* out, size_t header_bytes, uint64_t first_index, uint32_t batch_bytes, uint32_t count,
                         uint32_t prev_crc);

struct ByteSpan {
  const uint8_t* data;
  size_t size;
};

// Fills the sector CRCs, the tail CRC and the CRC of the batch header at `header`
// (from encode_batch_header), whose batch continues with `rest[0..n)` in order.
// Bytes [zero_from, zero_to) of the batch (offsets from its start) are known to
// be zero (the padding frame's interior): their sectors' CRCs are not recomputed.
// Returns the header's CRC.
uint32_t seal_batch_header(uint8_t* header, const ByteSpan* rest, size_t n, uint32_t segment_seed, uint64_t zero_from,
                           uint64_t zero_to);

struct BatchHeader {
  uint32_t header_bytes = 0;
  uint64_t first_index = 0;
  uint32_t batch_bytes = 0;
  uint32_t count = 0;
  uint32_t prev_crc = 0;
  uint32_t tail_crc = 0;
};

// Checks a batch header at `p`: `avail` bytes readable there (at least
// min(512, bytes to the end of the segment)), `room` bytes to the end of the
// segment. Verifies the flag, the sizes (header_bytes matches batch_bytes, the
// batch fits in `room`) and the CRC from `segment_seed`; not the index or chain.
bool check_batch_header(const uint8_t* p, size_t avail, uint64_t room, uint32_t segment_seed, BatchHeader* out);

// CRC-32C of one all-zero 512-byte sector.
uint32_t zero_sector_crc();

enum class FrameKind { kZero, kRecord, kPadding, kBad };

struct FrameCheck {
  FrameKind kind = FrameKind::kBad;
  uint32_t length = 0;     // payload bytes of a record
  uint64_t index = 0;      // record index, or next index of a padding frame
  uint32_t crc = 0;        // stored CRC field
  size_t size = 0;         // bytes the frame occupies; for kBad, its claimed size if plausible, else 0
};

// Checks the frame at `p`, with `avail` bytes up to the end of the segment.
// A batch header frame is kBad here (see check_batch_header).
// `seed`: chain seed; `expected_index`: the index the next record must carry;
// `max_length`: the largest payload accepted.
FrameCheck check_frame(const uint8_t* p, size_t avail, uint32_t seed, uint64_t expected_index, uint32_t max_length);

}  // namespace tidemark
