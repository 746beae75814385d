#include "record.h"

#include <algorithm>
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

size_t batch_header_bytes(uint64_t batch_bytes) {
  uint64_t sectors = batch_bytes / kSectorBytes;
  uint64_t entries = sectors > 0 ? sectors - 1 : 0;
  return static_cast<size_t>((kBatchHeaderFixedBytes + 4 * entries + kFrameAlignBytes - 1) & ~uint64_t{kFrameAlignBytes - 1});
}

uint64_t batch_fits_surely(uint64_t off, bool with_header, uint32_t block, uint64_t cap) {
  // The layout's header is batch_header_bytes of a batch no larger than the
  // room, so at most header_max (batch_header_bytes grows with the batch), and
  // its padding frame is at most block + 16 bytes (a gap below 24 gets one more
  // block). When records and those bounds fit, the fixed point the layout
  // settles on fits too (each step's batch stays within the room, by induction).
  if (off >= cap) return 0;
  const uint64_t room = cap - off;
  const uint64_t bounds = (with_header ? batch_header_bytes(room) : 0) + block + kPadFrameMinBytes;
  return room > bounds ? room - bounds : 0;
}

bool batch_fits(uint64_t off, size_t records, bool with_header, uint32_t block, uint64_t cap) {
  if (records <= batch_fits_surely(off, with_header, block, cap)) return true;
  size_t header = 0, pad = 0;
  return off + batch_layout(off, records, with_header, block, &header, &pad) <= cap;
}

uint64_t batch_layout(uint64_t off, size_t records, bool with_header, uint32_t block, size_t* header, size_t* pad) {
  if (!with_header) {
    *header = 0;
    *pad = padding_bytes(off + records, block);
    return records + *pad;
  }
  // The header's size depends on the batch's, which depends on the header's:
  // start from the smallest and grow to the fixed point (both grow monotonically).
  size_t h = batch_header_bytes(block);
  while (true) {
    size_t p = padding_bytes(off + h + records, block);
    uint64_t total = h + records + p;
    size_t h2 = batch_header_bytes(total);
    if (h2 == h) {
      *header = h;
      *pad = p;
      return total;
    }
    assert(h2 > h);
    h = h2;
  }
}

void encode_batch_header(uint8_t* out, size_t header_bytes, uint64_t first_index, uint32_t batch_bytes, uint32_t count,
                         uint32_t prev_crc) {
  assert(header_bytes == batch_header_bytes(batch_bytes) && header_bytes < (size_t{1} << 30));
  memset(out, 0, header_bytes);
  store32(out + 4, kBatchHeaderFlag | static_cast<uint32_t>(header_bytes));
  store64(out + 8, first_index);
  store32(out + 16, batch_bytes);
  store32(out + 20, count);
  store32(out + 24, prev_crc);
}

uint32_t zero_sector_crc() {
  static const uint32_t value = [] {
    uint8_t zeros[kSectorBytes] = {};
    return crc32c(zeros, kSectorBytes);
  }();
  return value;
}

uint32_t seal_batch_header(uint8_t* header, const ByteSpan* rest, size_t n, uint32_t segment_seed, uint64_t zero_from,
                           uint64_t zero_to) {
  size_t h = load32(header + 4) & ~kFrameFlagMask;
  uint64_t total = load32(header + 16);
  // CRC-32C of batch bytes [a, a + len), gathered over the header and `rest`.
  auto crc_range = [&](uint64_t a, uint64_t len) {
    uint32_t c = 0;
    uint64_t pos = 0;
    for (size_t i = 0; i <= n; i++) {
      const uint8_t* data = i == 0 ? header : rest[i - 1].data;
      uint64_t size = i == 0 ? h : rest[i - 1].size;
      if (a < pos + size && a + len > pos) {
        uint64_t lo = std::max(a, pos), hi = std::min(a + len, pos + size);
        c = crc32c_extend(c, data + (lo - pos), static_cast<size_t>(hi - lo));
      }
      pos += size;
      if (pos >= a + len) break;
    }
    return c;
  };
  uint64_t sectors = total / kSectorBytes;
  // Backwards: sector k's CRC entry lies in an earlier sector, whose own CRC must include it.
  for (uint64_t k = sectors; k-- > 1;) {
    uint64_t a = k * kSectorBytes;
    uint32_t c = a >= zero_from && a + kSectorBytes <= zero_to ? zero_sector_crc() : crc_range(a, kSectorBytes);
    store32(header + kBatchHeaderFixedBytes + 4 * (k - 1), c);
  }
  store32(header + 28, h < kSectorBytes ? crc_range(h, kSectorBytes - h) : 0);
  uint32_t crc = crc32c_extend(segment_seed, header + 4, std::min(h, kSectorBytes) - 4);
  store32(header, crc);
  return crc;
}

bool check_batch_header(const uint8_t* p, size_t avail, uint64_t room, uint32_t segment_seed, BatchHeader* out) {
  if (avail < kFrameHeaderBytes) return false;
  uint32_t length = load32(p + 4);
  if ((length & kFrameFlagMask) != kBatchHeaderFlag) return false;
  size_t h = length & ~kFrameFlagMask;
  if (h < kBatchHeaderFixedBytes || h % kFrameAlignBytes != 0 || avail < std::min(h, kSectorBytes)) return false;
  uint32_t total = load32(p + 16);
  if (total % kSectorBytes != 0 || total < h + kPadFrameMinBytes || total > room || batch_header_bytes(total) != h) {
    return false;
  }
  if (crc32c_extend(segment_seed, p + 4, std::min(h, kSectorBytes) - 4) != load32(p)) return false;
  out->header_bytes = static_cast<uint32_t>(h);
  out->first_index = load64(p + 8);
  out->batch_bytes = total;
  out->count = load32(p + 20);
  out->prev_crc = load32(p + 24);
  out->tail_crc = load32(p + 28);
  return true;
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
  if ((length & kFrameFlagMask) == kBatchHeaderFlag) {
    // A batch header: not a link of the chain (check_batch_header).
    size_t h = length & ~kFrameFlagMask;
    if (h >= kBatchHeaderFixedBytes && h % kFrameAlignBytes == 0 && h <= avail) f.size = h;
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
