#include "record.h"

#include <cassert>

#include "crc32c.h"

namespace tidemark {

void encode_record(uint8_t* out, uint64_t index, const uint8_t* payload, uint32_t size) {
  store32(out, 0);
  store32(out + 4, size);
  store64(out + 8, index);
  if (size > 0) memcpy(out + kFrameHeaderBytes, payload, size);
  size_t pad = frame_bytes(size) - kFrameHeaderBytes - size;
  if (pad > 0) memset(out + kFrameHeaderBytes + size, 0, pad);
}

uint32_t seal_record(uint8_t* frame, uint32_t seed) {
  uint32_t length = load32(frame + 4);
  assert(length < kPadFlag);
  uint32_t crc = crc32c_extend(seed, frame + 4, 12 + static_cast<size_t>(length));
  store32(frame, crc);
  return crc;
}

size_t padding_bytes(uint64_t end, uint32_t block) {
  assert(end % kFrameAlignBytes == 0);
  uint64_t boundary = (end + block - 1) / block * block;
  size_t gap = static_cast<size_t>(boundary - end);
  if (gap < kPadFrameMinBytes) gap += block;
  return gap;
}

uint32_t encode_padding(uint8_t* out, size_t bytes, uint64_t next_index, uint32_t seed) {
  assert(bytes >= kPadFrameMinBytes && bytes % kFrameAlignBytes == 0 && bytes < kPadFlag);
  memset(out, 0, bytes);
  store32(out + 4, kPadFlag | static_cast<uint32_t>(bytes));
  store64(out + 8, next_index);
  uint32_t crc = crc32c_extend(seed, out + 4, 12);
  store32(out, crc);
  store32(out + bytes - 8, crc);
  store32(out + bytes - 4, kPadMagic);
  return crc;
}

FrameCheck check_frame(const uint8_t* p, size_t avail, uint32_t seed, uint64_t expected_index, uint32_t max_length) {
  FrameCheck f;
  if (avail < kFrameHeaderBytes) {
    f.kind = FrameKind::kBad;
    return f;
  }
  f.crc = load32(p);
  uint32_t length = load32(p + 4);
  f.index = load64(p + 8);
  if (f.crc == 0 && length == 0 && f.index == 0) {
    f.kind = FrameKind::kZero;
    return f;
  }
  if ((length & kPadFlag) != 0) {
    size_t total = length & ~kPadFlag;
    if (total < kPadFrameMinBytes || total % kFrameAlignBytes != 0 || total > avail) return f;
    f.size = total;
    if (f.index != expected_index) return f;
    if (crc32c_extend(seed, p + 4, 12) != f.crc) return f;
    // The trailer is a hint for recovery's scan (row G); the header CRC decides.
    f.kind = FrameKind::kPadding;
    return f;
  }
  if (length > max_length || frame_bytes(length) > avail) return f;
  f.length = length;
  f.size = frame_bytes(length);
  if (f.index != expected_index) return f;
  if (crc32c_extend(seed, p + 4, 12 + static_cast<size_t>(length)) != f.crc) return f;
  f.kind = FrameKind::kRecord;
  return f;
}

}  // namespace tidemark
