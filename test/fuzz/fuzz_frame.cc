// Fuzz target: the record frame decoder (check_frame, record.h).
//
// Input: mode u8 | seed u32 | expected index u64 | max length u32 | rest...
//   mode % 3 == 0: `rest` is a frame as found on disk, any bytes, checked with avail = its size
//   mode % 3 == 1: a record is encoded from `rest` and sealed, then checked, then damaged
//   mode % 3 == 2: a padding frame is encoded, then checked, then damaged
//   mode >= 0xF0, even: `rest` is a batch header as found on disk (check_batch_header), any
//     bytes, with avail = its size and room = u32 from the input
//   mode >= 0xF0, odd: a version 2 batch (header, records from `rest`, padding) is laid out
//     and sealed as the writer does, then its header checked, then damaged
// Properties: no read outside [p, p + avail) (ASan), no UB (UBSan), and what check_frame
// reports is consistent with the bytes: a record or padding frame fits in avail, carries
// the expected index and its stored CRC is the chained CRC of its covered bytes; a kBad
// frame's size is 0 or a plausible frame size; an encoded frame verifies; a single-bit
// flip in the CRC, index or payload of a valid frame makes it kBad. Batch headers: an
// accepted header's fields are consistent (flag, sizes, room, CRC from the segment seed)
// and re-encoding them with the library's encoder gives the same covered bytes; a sealed
// batch's header verifies, its sector and tail CRCs match the batch's bytes, and it fails
// from another segment seed, after any single-bit flip in its covered bytes, or with
// less room than the batch; check_frame never takes a batch header for a record or padding.
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

// Properties of what check_batch_header says about `p` (`avail` readable bytes).
void check_batch_consistent(const uint8_t* p, size_t avail, uint64_t room, uint32_t seed, bool ok, const BatchHeader& h) {
  BatchHeader again;
  FUZZ_CHECK(check_batch_header(p, avail, room, seed, &again) == ok, "check_batch_header is not deterministic");
  const FrameCheck f = check_frame(p, avail, seed, 0, kRecordBytesMax);
  if (avail >= kFrameHeaderBytes && (load32(p + 4) & kFrameFlagMask) == kBatchHeaderFlag) {
    FUZZ_CHECK(f.kind == FrameKind::kBad, "check_frame took a batch header for a frame (kind %d)", static_cast<int>(f.kind));
  }
  if (!ok) return;
  const size_t hb = h.header_bytes;
  const size_t covered = std::min(hb, kSectorBytes);
  FUZZ_CHECK(avail >= covered && avail >= kBatchHeaderFixedBytes, "accepted a header of %zu bytes with %zu available", hb, avail);
  FUZZ_CHECK((load32(p + 4) & kFrameFlagMask) == kBatchHeaderFlag && (load32(p + 4) & ~kFrameFlagMask) == hb,
             "header length field");
  FUZZ_CHECK(hb >= kBatchHeaderFixedBytes && hb % kFrameAlignBytes == 0, "header size %zu", hb);
  FUZZ_CHECK(h.batch_bytes % kSectorBytes == 0 && h.batch_bytes <= room && h.batch_bytes >= hb + kPadFrameMinBytes &&
                 batch_header_bytes(h.batch_bytes) == hb,
             "batch of %u bytes, header %zu, room %llu", h.batch_bytes, hb, static_cast<unsigned long long>(room));
  FUZZ_CHECK(h.first_index == load64(p + 8) && h.batch_bytes == load32(p + 16) && h.count == load32(p + 20) &&
                 h.prev_crc == load32(p + 24) && h.tail_crc == load32(p + 28),
             "decoded fields differ from the bytes");
  FUZZ_CHECK(load32(p) == crc32c_extend(seed, p + 4, covered - 4), "accepted header CRC is not the CRC of its bytes");
  // Re-encode the fields; the CRC entries (tail, sectors) are data: copy them over.
  std::vector<uint8_t> out(hb);
  encode_batch_header(out.data(), hb, h.first_index, h.batch_bytes, h.count, h.prev_crc);
  std::memcpy(out.data() + 28, p + 28, covered - 28);
  FUZZ_CHECK(std::memcmp(out.data() + 4, p + 4, covered - 4) == 0, "re-encoded batch header differs");
  FUZZ_CHECK(crc32c_extend(seed, out.data() + 4, covered - 4) == load32(p), "re-encoded batch header CRC differs");
}

void fuzz_batch(Reader* r, uint32_t seed, uint64_t first, uint32_t pick) {
  const uint32_t block = (pick & 1) != 0 ? 512 : 4096;
  // Records: lengths from the input, payload bytes from the input.
  std::vector<uint8_t> recs;
  const size_t count = 1 + r->u8() % 8;
  uint32_t prev = r->u32(), crc = prev;
  for (size_t i = 0; i < count; i++) {
    const uint16_t len = r->u16() % 9000;  // up to ~70 KiB: headers past one sector (> 120 sectors)
    const size_t at = recs.size();
    recs.resize(at + frame_bytes(len));
    std::vector<uint8_t> payload(len);
    for (auto& b : payload) b = r->u8();
    encode_record(recs.data() + at, first + i, payload.data(), len);
    crc = seal_record(recs.data() + at, crc);
  }
  size_t header = 0, pad = 0;
  const uint64_t total = batch_layout(0, recs.size(), true, block, &header, &pad);
  FUZZ_CHECK(total % block == 0 && header == batch_header_bytes(total) && pad >= kPadFrameMinBytes, "batch layout");
  // batch_fits (the writer's per-record question) agrees with the exact layout,
  // also at offsets and segment sizes where the batch only just fits or does not.
  for (uint64_t off : {uint64_t{kSegmentDataOffset}, uint64_t{kSegmentDataOffset} + block * (1 + pick % 64)}) {
    for (uint64_t cap : {off + total, off + total - kSectorBytes, off + total + block, off + total - block,
                         off + 2 * total, off / 2, off + (pick % 3) * block + total}) {
      size_t h2 = 0, p2 = 0;
      for (const bool v2 : {true, false}) {
        const bool exact = off + batch_layout(off, recs.size(), v2, block, &h2, &p2) <= cap;
        FUZZ_CHECK(batch_fits(off, recs.size(), v2, block, cap) == exact, "batch_fits differs from batch_layout (v2 %d)", v2);
        FUZZ_CHECK(recs.size() > batch_fits_surely(off, v2, block, cap) || exact, "batch_fits_surely overstates (v2 %d)", v2);
      }
    }
  }
  std::vector<uint8_t> batch(total);
  uint8_t* padp = batch.data() + header + recs.size();
  std::memcpy(batch.data() + header, recs.data(), recs.size());
  encode_padding(padp, pad, first + count, crc);
  encode_batch_header(batch.data(), header, first, static_cast<uint32_t>(total), static_cast<uint32_t>(count), prev);
  const ByteSpan rest[2] = {{batch.data() + header, recs.size()}, {padp, pad}};
  const uint64_t pad_at = header + recs.size();
  const uint32_t hcrc = seal_batch_header(batch.data(), rest, 2, seed, pad_at + kFrameHeaderBytes, pad_at + pad - 8);
  BatchHeader h;
  const bool ok = check_batch_header(batch.data(), batch.size(), total, seed, &h);
  FUZZ_CHECK(ok && h.header_bytes == header && h.batch_bytes == total && h.count == count && h.first_index == first &&
                 h.prev_crc == prev && load32(batch.data()) == hcrc,
             "a sealed batch header does not verify (%zu records, %llu bytes)", count, static_cast<unsigned long long>(total));
  check_batch_consistent(batch.data(), batch.size(), total, seed, ok, h);
  // Every sector's CRC entry and the tail CRC describe the batch's bytes.
  for (uint64_t k = 1; k < total / kSectorBytes; k++) {
    FUZZ_CHECK(load32(batch.data() + kBatchHeaderFixedBytes + 4 * (k - 1)) == crc32c(batch.data() + k * kSectorBytes, kSectorBytes),
               "sector %llu CRC", static_cast<unsigned long long>(k));
  }
  FUZZ_CHECK(h.tail_crc == (header < kSectorBytes ? crc32c(batch.data() + header, kSectorBytes - header) : 0u), "tail CRC");
  BatchHeader other;
  FUZZ_CHECK(!check_batch_header(batch.data(), batch.size(), total, seed ^ (pick | 1), &other), "verified from another seed");
  FUZZ_CHECK(!check_batch_header(batch.data(), batch.size(), total - kSectorBytes, seed, &other), "verified without room");
  const size_t covered = std::min(header, kSectorBytes);
  std::vector<uint8_t> flipped = batch;
  const size_t byte = (pick >> 1) % covered;
  flipped[byte] ^= static_cast<uint8_t>(1u << ((pick >> 20) % 8));
  FUZZ_CHECK(!check_batch_header(flipped.data(), flipped.size(), total, seed, &other), "a bit flip at byte %zu still verifies", byte);
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

  if (mode >= 0xF0) {
    if ((mode & 1) == 0) {
      const uint64_t room = r.u32();
      std::vector<uint8_t> bytes(r.rest(), r.rest() + r.remaining());  // exact size: ASan sees any overread
      BatchHeader h;
      const bool ok = check_batch_header(bytes.data(), bytes.size(), room, seed, &h);
      if (!bytes.empty()) check_batch_consistent(bytes.data(), bytes.size(), room, seed, ok, h);
    } else {
      fuzz_batch(&r, seed, expected, max_raw);
    }
    return 0;
  }
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
