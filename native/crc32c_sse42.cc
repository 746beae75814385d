// CRC-32C on x86-64 with the SSE4.2 crc32 instruction and a PCLMULQDQ merge.
//
// The crc32 instruction has a latency of ~3 cycles and a throughput of one per cycle,
// so a single dependent chain runs at a third of the machine's speed. Large inputs are
// cut into blocks of three equal streams A|B|C of L bytes each, run as three
// independent chains (A from the running register, B and C from 0), then merged:
//   reg = Shift(a, 2L) ^ Shift(b, L) ^ c       (see crc32c_internal.h)
// Shift(r, n) is a carry-less multiply of r by the constant K(n) = x^(8n-33) mod P
// followed by a crc32 of the 64-bit product, which reduces it mod P and supplies the
// missing x^32 (the product of two reflected 32-bit values carries one extra x).
// That reducing crc32 is folded into C's last word: crc32(c, w ^ t) = crc32(c, w) ^ crc32(0, t).
//
// Only functions carry target attributes, so the object can be linked into a binary
// that runs on any x86-64; the dispatcher in crc32c.cc calls in only after cpuid said yes.
#if defined(__x86_64__)

#include <cpuid.h>
#include <immintrin.h>

#include <array>
#include <cstring>

#include "crc32c_internal.h"

#define TM_CRC_TARGET __attribute__((target("sse4.2,pclmul")))

namespace tidemark {
namespace crc32c_internal {
namespace {

// Stream lengths are multiples of kStep bytes, at most kMaxStream: a block covers up to
// 3 * kMaxStream bytes and costs one merge (a handful of cycles) on top of the chains.
constexpr size_t kStep = 64;
constexpr size_t kMaxStream = 16384;
constexpr size_t kStreamSizes = kMaxStream / kStep;

struct MergeConstants {
  uint32_t shift_l[kStreamSizes];   // K(L)  for L = kStep * (i + 1)
  uint32_t shift_2l[kStreamSizes];  // K(2L)
};

constexpr MergeConstants MakeMergeConstants() {
  MergeConstants m{};
  const uint32_t x_step = XPowMod(8 * kStep);      // multiplying by this adds kStep bytes
  const uint32_t x_2step = XPowMod(16 * kStep);
  uint32_t k_l = XPowMod(8 * kStep - 33);
  uint32_t k_2l = XPowMod(16 * kStep - 33);
  for (size_t i = 0; i < kStreamSizes; i++) {
    m.shift_l[i] = k_l;
    m.shift_2l[i] = k_2l;
    k_l = MultiplyMod(k_l, x_step);
    k_2l = MultiplyMod(k_2l, x_2step);
  }
  return m;
}

constexpr MergeConstants kMerge = MakeMergeConstants();
static_assert(kMerge.shift_l[0] == XPowMod(8 * kStep - 33), "merge table start");
static_assert(kMerge.shift_l[kStreamSizes - 1] == XPowMod(8 * kMaxStream - 33), "merge table end (L)");
static_assert(kMerge.shift_2l[kStreamSizes - 1] == XPowMod(16 * kMaxStream - 33), "merge table end (2L)");

inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline uint32_t Load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Carry-less product of two 32-bit values (63 bits).
TM_CRC_TARGET inline uint64_t Clmul32(uint32_t a, uint32_t b) {
  const __m128i product = _mm_clmulepi64_si128(_mm_cvtsi32_si128(static_cast<int>(a)),
                                               _mm_cvtsi32_si128(static_cast<int>(b)), 0x00);
  return static_cast<uint64_t>(_mm_cvtsi128_si64(product));
}

// One chain, 8 bytes at a time, then the tail.
TM_CRC_TARGET inline uint64_t Single(uint64_t reg, const uint8_t* p, size_t size) {
  while (size >= 8) {
    reg = _mm_crc32_u64(reg, Load64(p));
    p += 8;
    size -= 8;
  }
  if (size >= 4) {
    reg = _mm_crc32_u32(static_cast<uint32_t>(reg), Load32(p));
    p += 4;
    size -= 4;
  }
  while (size != 0) {
    reg = _mm_crc32_u8(static_cast<uint32_t>(reg), *p++);
    size--;
  }
  return reg;
}

}  // namespace

bool Sse42Supported() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (ecx & bit_SSE4_2) != 0 && (ecx & bit_PCLMUL) != 0;
}

TM_CRC_TARGET uint32_t ExtendSse42(uint32_t crc, const uint8_t* data, size_t size) {
  uint64_t reg = static_cast<uint32_t>(~crc);
  if (size >= 3 * kStep) {
    // Align to 8 so every word load of the three streams is aligned.
    while ((reinterpret_cast<uintptr_t>(data) & 7u) != 0) {
      reg = _mm_crc32_u8(static_cast<uint32_t>(reg), *data++);
      size--;
    }
    while (size >= 3 * kStep) {
      size_t stream = (size / 3) / kStep * kStep;
      if (stream > kMaxStream) stream = kMaxStream;
      const size_t index = stream / kStep - 1;
      const uint8_t* a = data;
      const uint8_t* const a_end = data + stream - 8;  // C's last word is done with the merge
      uint64_t b_reg = 0;
      uint64_t c_reg = 0;
      for (; a < a_end; a += 8) {
        reg = _mm_crc32_u64(reg, Load64(a));
        b_reg = _mm_crc32_u64(b_reg, Load64(a + stream));
        c_reg = _mm_crc32_u64(c_reg, Load64(a + 2 * stream));
      }
      reg = _mm_crc32_u64(reg, Load64(a));
      b_reg = _mm_crc32_u64(b_reg, Load64(a + stream));
      const uint64_t shifted = Clmul32(static_cast<uint32_t>(reg), kMerge.shift_2l[index]) ^
                               Clmul32(static_cast<uint32_t>(b_reg), kMerge.shift_l[index]);
      reg = _mm_crc32_u64(c_reg, Load64(a + 2 * stream) ^ shifted);
      data += 3 * stream;
      size -= 3 * stream;
    }
  }
  reg = Single(reg, data, size);
  return ~static_cast<uint32_t>(reg);
}

}  // namespace crc32c_internal
}  // namespace tidemark

#endif  // defined(__x86_64__)
