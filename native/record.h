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
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "limits.h"

namespace tidemark {

constexpr uint32_t kPadFlag = 0x80000000u;
constexpr uint32_t kPadMagic = 0x44504d54u;  // "TMPD"

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

enum class FrameKind { kZero, kRecord, kPadding, kBad };

struct FrameCheck {
  FrameKind kind = FrameKind::kBad;
  uint32_t length = 0;     // payload bytes of a record
  uint64_t index = 0;      // record index, or next index of a padding frame
  uint32_t crc = 0;        // stored CRC field
  size_t size = 0;         // bytes the frame occupies; for kBad, its claimed size if plausible, else 0
};

// Checks the frame at `p`, with `avail` bytes up to the end of the segment.
// `seed`: chain seed; `expected_index`: the index the next record must carry;
// `max_length`: the largest payload accepted.
FrameCheck check_frame(const uint8_t* p, size_t avail, uint32_t seed, uint64_t expected_index, uint32_t max_length);

}  // namespace tidemark
