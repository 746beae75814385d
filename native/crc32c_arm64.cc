// CRC-32C on arm64 with the ARMv8 CRC32 extension (crc32cx and friends).
//
// Same shape as the x86-64 version: large inputs run as three independent chains
// over streams A|B|C of L bytes, merged as reg = Shift(Shift(a, L) ^ b, L) ^ c
// (see crc32c_internal.h). Shift by a fixed L is linear in the register, so it is four
// lookups in a 4 x 256 table built at compile time: no PMULL needed.
//
// Only functions carry the "+crc" target attribute; the dispatcher in crc32c.cc calls in
// only after getauxval(AT_HWCAP) reported HWCAP_CRC32.
#if defined(__aarch64__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__

#include <arm_acle.h>

#include <array>
#include <cstring>

#include "crc32c_internal.h"

#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif

#define TM_CRC_TARGET __attribute__((target("+crc")))

namespace tidemark {
namespace crc32c_internal {
namespace {

using ShiftTable = std::array<std::array<uint32_t, 256>, 4>;

// table[j][v] = Shift(v << 8j, bytes).
constexpr ShiftTable MakeShiftTable(uint64_t bytes) {
  ShiftTable t{};
  const uint32_t factor = XPowMod(8 * bytes);
  for (uint32_t j = 0; j < 4; j++) {
    for (uint32_t v = 0; v < 256; v++) t[j][v] = MultiplyMod(v << (8 * j), factor);
  }
  return t;
}

constexpr size_t kLongStream = 8192;
constexpr size_t kShortStream = 256;
constexpr ShiftTable kShiftLong = MakeShiftTable(kLongStream);
constexpr ShiftTable kShiftShort = MakeShiftTable(kShortStream);

inline uint32_t Shift(const ShiftTable& t, uint32_t reg) {
  return t[0][reg & 0xFFu] ^ t[1][(reg >> 8) & 0xFFu] ^ t[2][(reg >> 16) & 0xFFu] ^ t[3][reg >> 24];
}

inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Three chains over stream-sized thirds while at least one block remains.
TM_CRC_TARGET inline uint32_t Blocks(uint32_t reg, const uint8_t*& data, size_t& size, size_t stream,
                                     const ShiftTable& shift) {
  while (size >= 3 * stream) {
    uint32_t b_reg = 0;
    uint32_t c_reg = 0;
    const uint8_t* const end = data + stream;
    for (const uint8_t* a = data; a < end; a += 8) {
      reg = __crc32cd(reg, Load64(a));
      b_reg = __crc32cd(b_reg, Load64(a + stream));
      c_reg = __crc32cd(c_reg, Load64(a + 2 * stream));
    }
    reg = Shift(shift, Shift(shift, reg) ^ b_reg) ^ c_reg;
    data += 3 * stream;
    size -= 3 * stream;
  }
  return reg;
}

}  // namespace

bool Arm64Supported() {
#if defined(__linux__)
  return (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
#else
  return false;
#endif
}

TM_CRC_TARGET uint32_t ExtendArm64(uint32_t crc, const uint8_t* data, size_t size) {
  uint32_t reg = ~crc;
  if (size >= 3 * kShortStream) {
    while ((reinterpret_cast<uintptr_t>(data) & 7u) != 0) {
      reg = __crc32cb(reg, *data++);
      size--;
    }
    reg = Blocks(reg, data, size, kLongStream, kShiftLong);
    reg = Blocks(reg, data, size, kShortStream, kShiftShort);
  }
  while (size >= 8) {
    reg = __crc32cd(reg, Load64(data));
    data += 8;
    size -= 8;
  }
  if (size >= 4) {
    uint32_t word;
    std::memcpy(&word, data, sizeof word);
    reg = __crc32cw(reg, word);
    data += 4;
    size -= 4;
  }
  while (size != 0) {
    reg = __crc32cb(reg, *data++);
    size--;
  }
  return ~reg;
}

}  // namespace crc32c_internal
}  // namespace tidemark

#endif  // defined(__aarch64__)
