// Internal pieces of the CRC-32C implementation shared by crc32c*.cc. Not part of the
// library interface: use crc32c.h.
//
// Every Extend* function has the contract of crc32c_extend: it takes and returns a
// finished CRC-32C value (0 for a fresh start). Internally the "register" is the
// inverted value; all the algebra below is on registers.
//
// Register algebra (reflected bit order: bit i of a 32-bit register is the
// coefficient of x^(31-i)). Processing n bytes of data D from register r gives
//   r' = r * x^(8n) + D * x^32   (mod P),
// which is linear, so a buffer A||B can be done as two independent streams and
// merged: reg(r, A||B) = Shift(reg(r, A), |B|) ^ reg(0, B), where
// Shift(r, n) = r * x^(8n) mod P ("n zero bytes").
#pragma once

#include <cstddef>
#include <cstdint>

namespace tidemark {
namespace crc32c_internal {

constexpr uint32_t kPolyReflected = 0x82F63B78u;

// a * b mod P, both in reflected 32-bit form. Walks the terms of `a` from x^0 upward,
// multiplying `b` by x at each step.
constexpr uint32_t MultiplyMod(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t mask = 0x80000000u; mask != 0; mask >>= 1) {
    if (a & mask) product ^= b;
    b = (b >> 1) ^ ((b & 1u) ? kPolyReflected : 0u);
  }
  return product;
}

// x^e mod P in reflected form, by square-and-multiply.
constexpr uint32_t XPowMod(uint64_t e) {
  uint32_t result = 0x80000000u;  // x^0
  uint32_t square = 0x40000000u;  // x^1, then x^2, x^4, ...
  while (e != 0) {
    if (e & 1u) result = MultiplyMod(result, square);
    square = MultiplyMod(square, square);
    e >>= 1;
  }
  return result;
}

// Portable slicing-by-8 (crc32c_table.cc). Always available.
uint32_t ExtendTable(uint32_t crc, const uint8_t* data, size_t size);

#if defined(__x86_64__)
// SSE4.2 crc32 + PCLMULQDQ (crc32c_sse42.cc). Call only when Sse42Supported().
bool Sse42Supported();
uint32_t ExtendSse42(uint32_t crc, const uint8_t* data, size_t size);
#endif

#if defined(__aarch64__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
// ARMv8 CRC32 extension (crc32c_arm64.cc). Call only when Arm64Supported().
bool Arm64Supported();
uint32_t ExtendArm64(uint32_t crc, const uint8_t* data, size_t size);
#endif

}  // namespace crc32c_internal
}  // namespace tidemark
