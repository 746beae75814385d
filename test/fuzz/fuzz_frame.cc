// Fuzz target: the record frame decoder (check_frame, record.h).
//
// Input: mode u8 | seed u32 | expected index u64 | max length u32 | rest...
//   mode % 3 == 0: `rest` is a frame as found on disk, any bytes, checked with avail = its size
//   mode % 3 == 1: a record is encoded from `rest` and sealed, then checked, then damaged
//   mode % 3 == 2: a padding frame is encoded, then checked, then damaged
// Properties: no read outside [p, p + avail) (ASan), no UB (UBSan), and what check_frame
// reports is consistent with the bytes: a record or padding frame fits in avail, carries
// the expected index and its stored CRC is the chained CRC of its covered bytes; a kBad
// frame's size is 0 or a plausible frame size; an encoded frame verifies; a single-bit
// flip in the CRC, index or payload of a valid frame makes it kBad.
#include <algorithm>
#include <cstring>
#include <vector>

#include "crc32c.h"
#include "fuzz_check.h"
#include "limits.h"
#include "record.h"

namespace {

using namespace tidemark;
using tidemark_fuzz::Reader;

void check_consistent(const uint8_t* p, size_t avail, uint32_t seed, uint64_t expected, uint32_t max_length,
                      const FrameCheck& f) {
  const FrameCheck again = check_frame(p, avail, seed, expected, max_length);
  FUZZ_CHECK(again.kind == f.kind && again.size == f.size && again.crc == f.crc, "check_frame is not deterministic");
  FUZZ_CHECK(f.size <= avail || f.kind == FrameKind::kBad, "frame of %zu bytes in %zu available", f.size, avail);
  if (avail < kFrameHeaderBytes) {
    FUZZ_CHECK(f.kind == FrameKind::kBad && f.size == 0, "short input (%zu bytes) not kBad/0", avail);
    return;
  }
  const bool zero_header = load32(p) == 0 && load32(p + 4) == 0 && load64(p + 8) == 0;
  FUZZ_CHECK((f.kind == FrameKind::kZero) == zero_header, "kZero iff the 16 header bytes are zero");
  const uint32_t length = load32(p + 4);
  switch (f.kind) {
    case FrameKind::kZero:
      break;
    case FrameKind::kRecord: {
      FUZZ_CHECK((length & kPadFlag) == 0 && length <= max_length, "record length %u (max %u)", length, max_length);
      FUZZ_CHECK(f.length == length && f.size == frame_bytes(length) && f.size <= avail, "record size");
      FUZZ_CHECK(f.size % kFrameAlignBytes == 0, "record size %zu not 8-aligned", f.size);
      FUZZ_CHECK(f.index == expected && f.index == load64(p + 8), "record index");
      FUZZ_CHECK(f.crc == load32(p) && f.crc == crc32c_extend(seed, p + 4, 12 + static_cast<size_t>(length)),
                 "record CRC not the chained CRC of its bytes");
      // Re-encoding the record gives the same covered bytes and CRC.
      std::vector<uint8_t> out(f.size);
      encode_record(out.data(), f.index, p + kFrameHeaderBytes, length);
      FUZZ_CHECK(seal_record(out.data(), seed) == f.crc, "re-encoded record CRC differs");
      FUZZ_CHECK(std::memcmp(out.data(), p, kFrameHeaderBytes + length) == 0, "re-encoded record bytes differ");
      break;
    }
    case FrameKind::kPadding: {
      const size_t total = length & ~kPadFlag;
      FUZZ_CHECK((length & kPadFlag) != 0 && total == f.size, "padding size");
      FUZZ_CHECK(total >= kPadFrameMinBytes && total % kFrameAlignBytes == 0 && total <= avail, "padding size %zu", total);
      FUZZ_CHECK(f.index == expected, "padding next index");
      FUZZ_CHECK(f.crc == load32(p) && f.crc == crc32c_extend(seed, p + 4, 12), "padding CRC");
      break;
    }
    case FrameKind::kBad:
      FUZZ_CHECK(f.size == 0 || (f.size >= kFrameHeaderBytes && f.size % kFrameAlignBytes == 0 && f.size <= avail),
                 "kBad with claimed size %zu (avail %zu)", f.size, avail);
      break;
  }
}

// Flips one bit of a valid frame in a byte the CRC protects with a fixed span (CRC,
// index, payload): the frame must no longer verify. CRC-32C detects every 1-bit error.
void check_flip(std::vector<uint8_t> frame, size_t covered_end, uint32_t seed, uint64_t expected, uint32_t max_length,
                uint32_t pick) {
  std::vector<size_t> positions;
  for (size_t i = 0; i < covered_end; i++) {
    if (i >= 4 && i < 8) continue;  // the length field changes the span: not a fixed-span flip
    positions.push_back(i);
  }
  const size_t byte = positions[pick % positions.size()];
  frame[byte] ^= static_cast<uint8_t>(1u << ((pick >> 16) % 8));
  const FrameCheck f = check_frame(frame.data(), frame.size(), seed, expected, max_length);
  FUZZ_CHECK(f.kind == FrameKind::kBad, "a bit flip at byte %zu still verifies (kind %d)", byte, static_cast<int>(f.kind));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* input, size_t input_size) {
  Reader r(input, input_size);
  const uint8_t mode = r.u8();
  const uint32_t seed = r.u32();
  const uint64_t expected = r.u64();
  const uint32_t max_raw = r.u32();
  // Mostly the real ceiling, sometimes a small limit (a log's maxRecordBytes).
  const uint32_t max_length = (max_raw & 1) != 0 ? kRecordBytesMax : max_raw % (kRecordBytesMax + 1);

  switch (mode % 3) {
    case 0: {
      std::vector<uint8_t> bytes(r.rest(), r.rest() + r.remaining());  // exact size: ASan sees any overread
      const FrameCheck f = check_frame(bytes.data(), bytes.size(), seed, expected, max_length);
      check_consistent(bytes.data(), bytes.size(), seed, expected, max_length, f);
      break;
    }
    case 1: {
      const uint32_t pick = r.u32();
      const uint32_t length = static_cast<uint32_t>(std::min<size_t>(r.remaining(), max_length));
      std::vector<uint8_t> frame(frame_bytes(length));
      encode_record(frame.data(), expected, r.rest(), length);
      const uint32_t crc = seal_record(frame.data(), seed);
      FrameCheck f = check_frame(frame.data(), frame.size(), seed, expected, max_length);
      FUZZ_CHECK(f.kind == FrameKind::kRecord && f.crc == crc && f.size == frame.size() && f.length == length,
                 "an encoded record does not verify (length %u)", length);
      check_consistent(frame.data(), frame.size(), seed, expected, max_length, f);
      // One byte short of its frame: never a record.
      f = check_frame(frame.data(), frame.size() - 1, seed, expected, max_length);
      FUZZ_CHECK(f.kind == FrameKind::kBad, "a record verified with one byte missing");
      // Chained from another seed, or expected at another index: never a record.
      FUZZ_CHECK(check_frame(frame.data(), frame.size(), seed ^ (pick | 1), expected, max_length).kind == FrameKind::kBad,
                 "a record verified from another seed");
      FUZZ_CHECK(check_frame(frame.data(), frame.size(), seed, expected + 1, max_length).kind == FrameKind::kBad,
                 "a record verified at another index");
      check_flip(frame, kFrameHeaderBytes + length, seed, expected, max_length, pick);
      break;
    }
    case 2: {
      const uint32_t pick = r.u32();
      const size_t bytes = kPadFrameMinBytes + kFrameAlignBytes * (r.u16() % 1024);
      std::vector<uint8_t> frame(bytes);
      const uint32_t crc = encode_padding(frame.data(), bytes, expected, seed);
      FrameCheck f = check_frame(frame.data(), frame.size(), seed, expected, max_length);
      FUZZ_CHECK(f.kind == FrameKind::kPadding && f.crc == crc && f.size == bytes, "an encoded padding frame does not verify");
      FUZZ_CHECK(load32(frame.data() + bytes - 8) == crc && load32(frame.data() + bytes - 4) == kPadMagic, "padding trailer");
      check_consistent(frame.data(), frame.size(), seed, expected, max_length, f);
      f = check_frame(frame.data(), frame.size() - 8, seed, expected, max_length);
      FUZZ_CHECK(f.kind == FrameKind::kBad, "a padding frame verified past the available bytes");
      check_flip(frame, kFrameHeaderBytes, seed, expected, max_length, pick);
      break;
    }
  }
  return 0;
}
