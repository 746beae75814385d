// CRC-32C (Castagnoli), reflected polynomial 0x82F63B78.
// crc32c_extend(crc32c(a), b) == crc32c(a || b); crc32c of nothing is 0.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tidemark {

// Extends `crc` (a finished CRC-32C value, 0 for a fresh start) over `size` bytes at `data`.
uint32_t crc32c_extend(uint32_t crc, const uint8_t* data, size_t size);

inline uint32_t crc32c(const uint8_t* data, size_t size) { return crc32c_extend(0, data, size); }

// Which implementation crc32c_extend dispatches to: "sse42", "arm64" or "table".
const char* crc32c_implementation();

// Forces the portable table implementation (tests), or restores run-time dispatch.
void crc32c_force_table(bool force);

}  // namespace tidemark
