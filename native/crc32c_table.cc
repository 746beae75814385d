// Portable CRC-32C: slicing-by-8 over eight 256-entry tables built at compile time.
// Used when the CPU has no CRC instruction (and by tests, via crc32c_force_table).
#include <array>
#include <cstring>

#include "crc32c_internal.h"

namespace tidemark {
namespace crc32c_internal {
namespace {

using Tables = std::array<std::array<uint32_t, 256>, 8>;

// tables[0][b]: the register after one byte b from register 0.
// tables[k][b]: the same followed by k zero bytes, so eight bytes can be folded at once:
// byte j of an 8-byte word still has 7 - j bytes to travel.
constexpr Tables MakeTables() {
  Tables t{};
  for (uint32_t b = 0; b < 256; b++) {
    uint32_t reg = b;
    for (int bit = 0; bit < 8; bit++) reg = (reg >> 1) ^ ((reg & 1u) ? kPolyReflected : 0u);
    t[0][b] = reg;
  }
  for (size_t k = 1; k < 8; k++) {
    for (uint32_t b = 0; b < 256; b++) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFFu];
  }
  return t;
}

constexpr Tables kTables = MakeTables();

inline uint32_t Byte(uint32_t reg, uint8_t value) { return kTables[0][(reg ^ value) & 0xFFu] ^ (reg >> 8); }

}  // namespace

uint32_t ExtendTable(uint32_t crc, const uint8_t* data, size_t size) {
  uint32_t reg = ~crc;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  // Byte-wise up to an 8-byte boundary, so the word loads below are aligned.
  while (size != 0 && (reinterpret_cast<uintptr_t>(data) & 7u) != 0) {
    reg = Byte(reg, *data++);
    size--;
  }
  while (size >= 8) {
    uint32_t lo;
    uint32_t hi;
    std::memcpy(&lo, data, 4);
    std::memcpy(&hi, data + 4, 4);
    lo ^= reg;
    reg = kTables[7][lo & 0xFFu] ^ kTables[6][(lo >> 8) & 0xFFu] ^ kTables[5][(lo >> 16) & 0xFFu] ^
          kTables[4][lo >> 24] ^ kTables[3][hi & 0xFFu] ^ kTables[2][(hi >> 8) & 0xFFu] ^
          kTables[1][(hi >> 16) & 0xFFu] ^ kTables[0][hi >> 24];
    data += 8;
    size -= 8;
  }
#endif
  while (size != 0) {
    reg = Byte(reg, *data++);
    size--;
  }
  return ~reg;
}

}  // namespace crc32c_internal
}  // namespace tidemark
